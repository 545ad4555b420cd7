/*
 * inspect.c: load a GGUF model through tern's C API and print what it holds.
 *
 *   inspect MODEL.gguf
 *
 * Shows the caller-owned buffer protocol: ask for the size first (a NULL buffer gives
 * TERN_ERR_BUFFER_TOO_SMALL and the size needed), then allocate and ask again.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tern.h"

static int fail(const char *what, tern_status st) {
    fprintf(stderr, "%s failed: %s: %s\n", what, tern_status_name(st), tern_last_error());
    return 1;
}

/* Fetches metadata pair `i` (key or value) into a freshly allocated string. */
static char *meta_text(const tern_model *model, int32_t i, int want_key) {
    size_t needed = 0;
    tern_status st = want_key ? tern_model_meta_key_by_index(model, i, NULL, 0, &needed)
                              : tern_model_meta_val_str_by_index(model, i, NULL, 0, &needed);
    if (st != TERN_ERR_BUFFER_TOO_SMALL) {
        return NULL;
    }
    char *buf = malloc(needed);
    if (buf == NULL) {
        return NULL;
    }
    st = want_key ? tern_model_meta_key_by_index(model, i, buf, needed, NULL)
                  : tern_model_meta_val_str_by_index(model, i, buf, needed, NULL);
    if (st != TERN_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    printf("tern %s (C ABI %u, header %d)\n", tern_version(), tern_abi_version(), TERN_ABI_VERSION);
    printf("%s\n", tern_system_info());

    tern_model_params params = tern_model_default_params();
    params.vocab_only = true; /* metadata is all we print */
    tern_model *model = NULL;
    tern_status st = tern_model_load(argv[1], &params, &model);
    if (st != TERN_OK) {
        return fail("tern_model_load", st);
    }

    printf("architecture: %s\n", tern_model_architecture(model));
    printf("n_vocab %d, n_ctx_train %d, n_embd %d, n_layer %d, n_head %d, n_head_kv %d, tensors %d\n",
           tern_model_n_vocab(model), tern_model_n_ctx_train(model), tern_model_n_embd(model),
           tern_model_n_layer(model), tern_model_n_head(model), tern_model_n_head_kv(model),
           tern_model_n_tensors(model));

    int32_t n = tern_model_meta_count(model);
    printf("metadata (%d pairs):\n", n);
    for (int32_t i = 0; i < n; i++) {
        char *key = meta_text(model, i, 1);
        char *val = meta_text(model, i, 0);
        if (key == NULL || val == NULL) {
            free(key);
            free(val);
            tern_model_free(model);
            return fail("reading metadata", TERN_ERR_INTERNAL);
        }
        printf("  %s = %s\n", key, val);
        free(key);
        free(val);
    }

    /* A key that is absent is reported as such, not as a crash. */
    char small[4];
    size_t needed = 0;
    st = tern_model_meta_val_str(model, "no.such.key", small, sizeof small, &needed);
    if (st != TERN_ERR_NOT_FOUND) {
        tern_model_free(model);
        return fail("looking up a missing key", st);
    }

    tern_model_free(model);
    return 0;
}
