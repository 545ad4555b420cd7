#!/usr/bin/env python3
"""Dump a GGUF file's metadata and tensor directory as JSON, for comparison with tern.

Uses gguf-py's GGUFReader when it can read the file. gguf-py rejects the type ids that
bitnet.cpp's fork added (36-39), so for those files this falls back to a small header walk
written independently of tern's Rust reader. Strings are emitted as hex so that bytes that
are not UTF-8 compare exactly.

usage: gguf_dump.py FILE  -> JSON on stdout: {"reader", "version", "metadata", "tensors"}
"""
import json
import struct
import sys

SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
           10: "<Q", 11: "<q", 12: "<d"}
TYPE_NAMES = {0: "UINT8", 1: "INT8", 2: "UINT16", 3: "INT16", 4: "UINT32", 5: "INT32",
              6: "FLOAT32", 7: "BOOL", 8: "STRING", 9: "ARRAY", 10: "UINT64", 11: "INT64",
              12: "FLOAT64"}


def walk(path):
    """Reads the header with struct, independently of tern's parser."""
    buf = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, buf, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    def string():
        nonlocal pos
        n = take("<Q")
        s = buf[pos:pos + n]
        if len(s) != n:
            raise ValueError("truncated string")
        pos += n
        return s

    def value(t):
        if t in SCALARS:
            v = take(SCALARS[t])
            return bool(v) if t == 7 else v
        if t == 8:
            return {"hex": string().hex()}
        if t == 9:
            et = take("<I")
            n = take("<Q")
            return {"elem_type": TYPE_NAMES[et], "items": [value(et) for _ in range(n)]}
        raise ValueError(f"unknown value type {t}")

    assert take("<I") == 0x46554747, "bad magic"
    version = take("<I")
    n_tensors = take("<Q")
    n_kv = take("<Q")
    metadata = {}
    for _ in range(n_kv):
        key = string().decode("utf-8")
        t = take("<I")
        metadata[key] = {"type": TYPE_NAMES[t], "value": value(t)}
    tensors = []
    for _ in range(n_tensors):
        name = string().decode("utf-8")
        nd = take("<I")
        dims = [take("<Q") for _ in range(nd)]
        tid = take("<I")
        off = take("<Q")
        tensors.append({"name": name, "shape": dims, "type_id": tid, "type": None, "offset": off})
    return {"reader": "walk", "version": version, "metadata": metadata, "tensors": tensors}


def with_gguf_py(path):
    import gguf  # noqa: deferred so the walk works without it

    r = gguf.GGUFReader(path)
    metadata = {}
    version = None
    for key, f in r.fields.items():
        if key.startswith("GGUF."):
            if key == "GGUF.version":
                version = int(f.parts[f.data[0]][0])
            continue
        t = f.types[0]
        if t == gguf.GGUFValueType.ARRAY:
            et = f.types[1] if len(f.types) > 1 else None
            if et == gguf.GGUFValueType.ARRAY:
                raise ValueError("nested arrays: use the walk")
            if et == gguf.GGUFValueType.STRING:
                items = [{"hex": bytes(f.parts[idx]).hex()} for idx in f.data]
            elif not f.data:
                items = []
            else:
                import numpy as np
                flat = np.concatenate([f.parts[idx] for idx in f.data]).tolist()
                items = [bool(x) for x in flat] if et == gguf.GGUFValueType.BOOL else flat
            metadata[key] = {"type": "ARRAY",
                             "value": {"elem_type": TYPE_NAMES[int(et)] if et is not None else "UINT8",
                                       "items": items}}
        elif t == gguf.GGUFValueType.STRING:
            metadata[key] = {"type": "STRING", "value": {"hex": bytes(f.parts[f.data[0]]).hex()}}
        else:
            v = f.parts[f.data[0]][0].item()
            if t == gguf.GGUFValueType.BOOL:
                v = bool(v)
            metadata[key] = {"type": TYPE_NAMES[int(t)], "value": v}
    tensors = []
    for t in r.tensors:
        # gguf-py reverses nothing in `shape` for the directory order: it reports ne as stored.
        tensors.append({"name": t.name, "shape": [int(d) for d in t.shape],
                        "type_id": int(t.tensor_type), "type": t.tensor_type.name,
                        "offset": int(t.data_offset - r.data_offset)})
    return {"reader": "gguf-py", "version": version, "metadata": metadata, "tensors": tensors}


# Arrays longer than this are emitted as their length plus their first and last items, to
# keep the JSON small for 250k-token vocabularies (the reader's work is the same).
FULL_ITEMS = 4096
EDGE_ITEMS = 64


def shorten(md):
    for entry in md.values():
        v = entry["value"]
        if entry["type"] == "ARRAY" and len(v["items"]) > FULL_ITEMS:
            items = v["items"]
            v["len"] = len(items)
            v["items"] = items[:EDGE_ITEMS] + items[-EDGE_ITEMS:]


def main():
    path = sys.argv[1]
    try:
        out = with_gguf_py(path)
    except ImportError:
        raise
    except Exception as e:  # gguf-py cannot read bitnet.cpp's type ids
        out = walk(path)
        out["gguf_py_error"] = str(e)
    shorten(out["metadata"])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
