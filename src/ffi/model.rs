//! C entry points for models: load, free, and read-only accessors.

use std::ffi::{c_char, CString};
use std::sync::Arc;

use super::{
    c_str, copy_text_out, guard, guard_value, is_live_handle, out_ptr, register_handle,
    tern_status, unregister_handle, HandleKind,
};
use crate::error::{Error, Result};
use crate::model::{LoadParams, Model, ModelInfo};

const MODEL_MAGIC: u64 = 0x6c64_6f6d_6e72_6574; // "ternmodl"
const FREED_MAGIC: u64 = 0xdead_dead_dead_dead;
/// Arrays are printed with at most this many items by the metadata accessors.
const META_ARRAY_ITEMS: usize = 16;

/// A loaded model. Opaque; immutable after load and safe to share between threads.
pub struct tern_model {
    magic: u64,
    pub(crate) model: Arc<Model>,
    architecture: CString,
}

/// How to load a model. Get the defaults from `tern_model_default_params()` and change
/// the fields you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tern_model_params {
    /// Read only the metadata and tokenizer; weights are neither checked nor usable.
    pub vocab_only: bool,
    /// Memory-map the file (true, the default) or read it into memory.
    pub use_mmap: bool,
}

/// Checks a model handle: not null, a live handle from `tern_model_load` (the handle
/// registry), with its magic intact.
pub(crate) fn model_ref<'a>(p: *const tern_model) -> Result<&'a tern_model> {
    if p.is_null() {
        return Err(Error::invalid("model is NULL"));
    }
    if !is_live_handle(p, HandleKind::Model) {
        return Err(Error::invalid(
            "model is not a live tern_model handle (freed, or not from tern_model_load)",
        ));
    }
    // SAFETY: the registry says p came from tern_model_load and was not freed since, so
    // it points to a live tern_model.
    let m = unsafe { &*p };
    if m.magic != MODEL_MAGIC {
        return Err(Error::invalid(
            "model is not a live tern_model handle (freed or corrupt)",
        ));
    }
    Ok(m)
}

/// The default load parameters: memory-mapped, full model.
#[no_mangle]
pub extern "C" fn tern_model_default_params() -> tern_model_params {
    tern_model_params {
        vocab_only: false,
        use_mmap: true,
    }
}

/// Loads the GGUF model at `path` (NUL-terminated UTF-8). On success stores a new handle
/// in `*out_model`, which the caller frees with `tern_model_free`. `params` may be NULL
/// for the defaults. On failure `*out_model` is set to NULL and `tern_last_error()` says
/// what was wrong (for a bad file: what and at which byte offset).
#[no_mangle]
pub extern "C" fn tern_model_load(
    path: *const c_char,
    params: *const tern_model_params,
    out_model: *mut *mut tern_model,
) -> tern_status {
    guard("tern_model_load", || {
        let out = out_ptr(out_model, "out_model")?;
        *out = std::ptr::null_mut();
        let path = c_str(path, "path")?;
        // SAFETY: a non-null params points to a tern_model_params (caller's contract).
        let p = unsafe { params.as_ref() }
            .copied()
            .unwrap_or_else(|| tern_model_default_params());
        let model = Model::load(
            path,
            &LoadParams {
                vocab_only: p.vocab_only,
                use_mmap: p.use_mmap,
            },
        )?;
        let architecture = CString::new(model.info().architecture.clone())
            .map_err(|_| Error::model("general.architecture contains a NUL byte"))?;
        let handle = Box::into_raw(Box::new(tern_model {
            magic: MODEL_MAGIC,
            model: Arc::new(model),
            architecture,
        }));
        register_handle(handle, HandleKind::Model);
        *out = handle;
        Ok(())
    })
}

/// Frees a model. NULL is accepted and ignored. Contexts created from the model keep
/// their own reference, so the model may be freed before them.
#[no_mangle]
pub extern "C" fn tern_model_free(model: *mut tern_model) {
    guard("tern_model_free", || {
        if model.is_null() {
            return Ok(());
        }
        model_ref(model)?;
        unregister_handle(model, HandleKind::Model);
        // SAFETY: the handle was live (checked above) and came from Box::into_raw in
        // tern_model_load; it is out of the registry, so a second free is detected.
        unsafe {
            (*model).magic = FREED_MAGIC;
            drop(Box::from_raw(model));
        }
        Ok(())
    });
}

/// The model's `general.architecture` (e.g. "bitnet-b1.58"). Owned by the model; valid
/// until it is freed. NULL if `model` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_model_architecture(model: *const tern_model) -> *const c_char {
    guard_value("tern_model_architecture", std::ptr::null(), || {
        Ok(model_ref(model)?.architecture.as_ptr())
    })
}

/// Reads one hyper-parameter for the accessors below (cbindgen does not expand macros,
/// so each accessor is written out).
fn model_u32(name: &str, model: *const tern_model, field: fn(&ModelInfo) -> u32) -> i32 {
    guard_value(name, -1, || {
        Ok(i32::try_from(field(model_ref(model)?.model.info())).unwrap_or(i32::MAX))
    })
}

/// Number of tokens in the vocabulary; -1 if `model` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_model_n_vocab(model: *const tern_model) -> i32 {
    model_u32("tern_model_n_vocab", model, |i| i.n_vocab)
}

/// Context length the model was trained with; -1 if `model` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_model_n_ctx_train(model: *const tern_model) -> i32 {
    model_u32("tern_model_n_ctx_train", model, |i| i.n_ctx_train)
}

/// Hidden size; -1 if `model` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_model_n_embd(model: *const tern_model) -> i32 {
    model_u32("tern_model_n_embd", model, |i| i.n_embd)
}

/// Number of transformer blocks; -1 if `model` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_model_n_layer(model: *const tern_model) -> i32 {
    model_u32("tern_model_n_layer", model, |i| i.n_layer)
}

/// Number of attention heads; -1 if `model` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_model_n_head(model: *const tern_model) -> i32 {
    model_u32("tern_model_n_head", model, |i| i.n_head)
}

/// Number of key/value heads (GQA); -1 if `model` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_model_n_head_kv(model: *const tern_model) -> i32 {
    model_u32("tern_model_n_head_kv", model, |i| i.n_head_kv)
}

/// Number of metadata key/value pairs in the model's file; -1 if `model` is invalid.
#[no_mangle]
pub extern "C" fn tern_model_meta_count(model: *const tern_model) -> i32 {
    guard_value("tern_model_meta_count", -1, || {
        Ok(i32::try_from(model_ref(model)?.model.file().metadata().len()).unwrap_or(i32::MAX))
    })
}

fn meta_pair(model: *const tern_model, index: i32) -> Result<(String, String)> {
    let m = model_ref(model)?;
    let md = m.model.file().metadata();
    let (k, v) = usize::try_from(index)
        .ok()
        .and_then(|i| md.get(i))
        .ok_or_else(|| {
            Error::invalid(format!(
                "index {index} is out of range (the model has {} metadata pairs)",
                md.len()
            ))
        })?;
    Ok((k.clone(), v.to_text_short(META_ARRAY_ITEMS)))
}

/// Writes the key of metadata pair `index` into `buf` (NUL-terminated). `*needed`
/// (if not NULL) receives the bytes needed including the NUL; when `buf_size` is smaller
/// the call fails with TERN_ERR_BUFFER_TOO_SMALL and writes nothing.
#[no_mangle]
pub extern "C" fn tern_model_meta_key_by_index(
    model: *const tern_model,
    index: i32,
    buf: *mut c_char,
    buf_size: usize,
    needed: *mut usize,
) -> tern_status {
    guard("tern_model_meta_key_by_index", || {
        let (k, _) = meta_pair(model, index)?;
        copy_text_out(&k, buf, buf_size, needed)
    })
}

/// Writes the value of metadata pair `index` as text into `buf` (as
/// `tern_model_meta_val_str`).
#[no_mangle]
pub extern "C" fn tern_model_meta_val_str_by_index(
    model: *const tern_model,
    index: i32,
    buf: *mut c_char,
    buf_size: usize,
    needed: *mut usize,
) -> tern_status {
    guard("tern_model_meta_val_str_by_index", || {
        let (_, v) = meta_pair(model, index)?;
        copy_text_out(&v, buf, buf_size, needed)
    })
}

/// Writes the metadata value under `key` as text into `buf` (NUL-terminated): strings as
/// they are, numbers in decimal, arrays as `[a, b, ... (N items)]` with at most 16 items.
/// `*needed` (if not NULL) receives the bytes needed including the NUL. Fails with
/// TERN_ERR_NOT_FOUND when the key is absent and TERN_ERR_BUFFER_TOO_SMALL when `buf_size`
/// is too small (nothing is written then).
#[no_mangle]
pub extern "C" fn tern_model_meta_val_str(
    model: *const tern_model,
    key: *const c_char,
    buf: *mut c_char,
    buf_size: usize,
    needed: *mut usize,
) -> tern_status {
    guard("tern_model_meta_val_str", || {
        let m = model_ref(model)?;
        let key = c_str(key, "key")?;
        let v =
            m.model.file().get(key).ok_or_else(|| {
                Error::NotFound(format!("metadata key '{key}' is not in the model"))
            })?;
        copy_text_out(&v.to_text_short(META_ARRAY_ITEMS), buf, buf_size, needed)
    })
}

/// Number of tensors in the model's file; -1 if `model` is invalid.
#[no_mangle]
pub extern "C" fn tern_model_n_tensors(model: *const tern_model) -> i32 {
    guard_value("tern_model_n_tensors", -1, || {
        Ok(i32::try_from(model_ref(model)?.model.file().tensors().len()).unwrap_or(i32::MAX))
    })
}
