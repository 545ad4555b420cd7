/*
 * tern_jni.c: the JNI shim behind TernSmoke.java. Each native method loads the model,
 * does its work through tern's C API and frees everything before returning; a failure
 * becomes a java.lang.RuntimeException carrying tern_last_error().
 */
#include <jni.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

static void throw_tern(JNIEnv *env, const char *what, tern_status st) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: %s: %s", what, tern_status_name(st), tern_last_error());
    jclass cls = (*env)->FindClass(env, "java/lang/RuntimeException");
    if (cls != NULL) {
        (*env)->ThrowNew(env, cls, msg);
    }
}

static tern_model *load(JNIEnv *env, jstring path) {
    const char *p = (*env)->GetStringUTFChars(env, path, NULL);
    if (p == NULL) {
        return NULL;
    }
    tern_model *model = NULL;
    tern_status st = tern_model_load(p, NULL, &model);
    (*env)->ReleaseStringUTFChars(env, path, p);
    if (st != TERN_OK) {
        throw_tern(env, "tern_model_load", st);
        return NULL;
    }
    return model;
}

JNIEXPORT jintArray JNICALL Java_TernSmoke_generate(JNIEnv *env, jclass cls, jstring path,
                                                    jstring prompt, jint n_predict,
                                                    jlong seed) {
    (void)cls;
    jintArray result = NULL;
    tern_context *ctx = NULL;
    tern_sampler *smpl = NULL;
    tern_token *tokens = NULL;
    tern_token *out = NULL;
    const char *text = NULL;
    tern_status st = TERN_OK;
    const char *what = "";
    jint n_out = 0;

    tern_model *model = load(env, path);
    if (model == NULL || n_predict < 0) {
        goto done;
    }
    text = (*env)->GetStringUTFChars(env, prompt, NULL);
    if (text == NULL) {
        goto done;
    }
    size_t n_prompt = 0;
    st = tern_tokenize(model, text, strlen(text), true, false, NULL, 0, &n_prompt);
    if (st != TERN_ERR_BUFFER_TOO_SMALL && st != TERN_OK) {
        what = "tern_tokenize";
        goto done;
    }
    tokens = malloc((n_prompt + 1) * sizeof *tokens);
    out = malloc(((size_t)n_predict + 1) * sizeof *out);
    if (tokens == NULL || out == NULL) {
        st = TERN_ERR_OUT_OF_MEMORY;
        what = "malloc";
        goto done;
    }
    what = "tern_tokenize";
    if ((st = tern_tokenize(model, text, strlen(text), true, false, tokens, n_prompt,
                            &n_prompt)) != TERN_OK) {
        goto done;
    }
    tern_context_params cp = tern_context_default_params();
    cp.n_ctx = (uint32_t)(n_prompt + (size_t)n_predict + 1);
    cp.n_batch = (uint32_t)(n_prompt > 0 ? n_prompt : 1);
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    what = "tern_context_new";
    if ((st = tern_context_new(model, &cp, &ctx)) != TERN_OK) {
        goto done;
    }
    tern_sampler_params sp = tern_sampler_default_params();
    sp.seed = (uint64_t)seed;
    what = "tern_sampler_new";
    if ((st = tern_sampler_new(&sp, &smpl)) != TERN_OK) {
        goto done;
    }
    what = "tern_eval";
    if ((st = tern_eval(ctx, tokens, (int32_t)n_prompt)) != TERN_OK) {
        goto done;
    }
    for (size_t i = 0; i < n_prompt; i++) {
        tern_sampler_accept(smpl, tokens[i]);
    }
    while (n_out < n_predict) {
        tern_token next = -1;
        what = "tern_sample";
        if ((st = tern_sample(smpl, ctx, -1, &next)) != TERN_OK) {
            goto done;
        }
        if (tern_token_is_eog(model, next)) {
            break;
        }
        tern_sampler_accept(smpl, next);
        out[n_out++] = next;
        what = "tern_eval";
        if (n_out < n_predict && (st = tern_eval(ctx, &next, 1)) != TERN_OK) {
            goto done;
        }
    }
    result = (*env)->NewIntArray(env, n_out);
    if (result != NULL) {
        (*env)->SetIntArrayRegion(env, result, 0, n_out, (const jint *)out);
    }

done:
    if (st != TERN_OK) {
        throw_tern(env, what, st);
    }
    if (text != NULL) {
        (*env)->ReleaseStringUTFChars(env, prompt, text);
    }
    free(out);
    free(tokens);
    tern_sampler_free(smpl);
    tern_context_free(ctx);
    tern_model_free(model);
    return result;
}

JNIEXPORT jstring JNICALL Java_TernSmoke_detokenize(JNIEnv *env, jclass cls, jstring path,
                                                    jintArray ids) {
    (void)cls;
    jstring result = NULL;
    tern_model *model = load(env, path);
    if (model == NULL) {
        return NULL;
    }
    jsize n = (*env)->GetArrayLength(env, ids);
    jint *elems = (*env)->GetIntArrayElements(env, ids, NULL);
    if (elems == NULL) {
        tern_model_free(model);
        return NULL;
    }
    size_t needed = 0;
    tern_status st = tern_detokenize(model, (const tern_token *)elems, (size_t)n, false, false,
                                     NULL, 0, &needed);
    char *buf = NULL;
    if (st == TERN_ERR_BUFFER_TOO_SMALL && (buf = malloc(needed)) != NULL) {
        st = tern_detokenize(model, (const tern_token *)elems, (size_t)n, false, false, buf,
                             needed, NULL);
    }
    (*env)->ReleaseIntArrayElements(env, ids, elems, JNI_ABORT);
    if (st == TERN_OK && buf != NULL) {
        /* Modified UTF-8 differs from UTF-8 only for NUL and supplementary characters;
           the smoke test's text has neither. */
        result = (*env)->NewStringUTF(env, buf);
    } else {
        throw_tern(env, "tern_detokenize", st);
    }
    free(buf);
    tern_model_free(model);
    return result;
}
