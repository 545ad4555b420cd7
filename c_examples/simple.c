/*
 * simple.c: the whole generation loop through tern's C API: load a model, tokenize a
 * prompt, evaluate it, sample tokens one at a time, print their text, free everything.
 *
 *   simple MODEL.gguf [PROMPT] [N_PREDICT] [SEED]
 *
 * Prints the prompt and the generated text, then a line `ids: ...` with the generated
 * token ids (the tests compare it with `tern generate --ids` and the Rust API), then the
 * performance counters on standard error. The sampler uses the default chain
 * (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05) with the given seed (default 42).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

#define CHECK(call)                                                                     \
    do {                                                                                \
        tern_status st_ = (call);                                                       \
        if (st_ != TERN_OK) {                                                           \
            fprintf(stderr, "%s failed: %s: %s\n", #call, tern_status_name(st_),        \
                    tern_last_error());                                                 \
            goto done;                                                                  \
        }                                                                               \
    } while (0)

/* Prints the text of one token (its bytes as they are). */
static int print_piece(const tern_model *model, tern_token token) {
    char buf[256];
    size_t len = 0;
    tern_status st = tern_token_to_piece(model, token, false, buf, sizeof buf, &len);
    if (st != TERN_OK) {
        fprintf(stderr, "tern_token_to_piece: %s\n", tern_last_error());
        return -1;
    }
    fwrite(buf, 1, len, stdout);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: %s MODEL.gguf [PROMPT] [N_PREDICT] [SEED]\n", argv[0]);
        return 2;
    }
    const char *prompt = argc > 2 ? argv[2] : "Once upon a time";
    int n_predict = argc > 3 ? atoi(argv[3]) : 32;
    unsigned long long seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 42;

    int rc = 1;
    tern_model *model = NULL;
    tern_context *ctx = NULL;
    tern_sampler *smpl = NULL;
    tern_token *tokens = NULL;
    tern_token *generated = NULL;
    int n_generated = 0;

    CHECK(tern_model_load(argv[1], NULL, &model));

    /* Tokenize: ask for the size first, then fill. */
    size_t n_prompt = 0;
    tern_status st = tern_tokenize(model, prompt, strlen(prompt), true, false, NULL, 0, &n_prompt);
    if (st != TERN_ERR_BUFFER_TOO_SMALL && st != TERN_OK) {
        fprintf(stderr, "tern_tokenize: %s\n", tern_last_error());
        goto done;
    }
    tokens = malloc((n_prompt > 0 ? n_prompt : 1) * sizeof *tokens);
    generated = malloc((n_predict > 0 ? (size_t)n_predict : 1) * sizeof *generated);
    if (tokens == NULL || generated == NULL) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    CHECK(tern_tokenize(model, prompt, strlen(prompt), true, false, tokens, n_prompt, &n_prompt));
    if (n_prompt == 0) {
        fprintf(stderr, "the prompt gives no tokens\n");
        goto done;
    }

    /* A context just big enough for the prompt and the answer, the prompt in one batch. */
    tern_context_params cparams = tern_context_default_params();
    cparams.n_ctx = (uint32_t)(n_prompt + (size_t)n_predict);
    cparams.n_batch = (uint32_t)n_prompt;
    cparams.n_threads = 1;
    cparams.n_threads_batch = 1;
    CHECK(tern_context_new(model, &cparams, &ctx));

    tern_sampler_params sparams = tern_sampler_default_params();
    sparams.seed = seed;
    CHECK(tern_sampler_new(&sparams, &smpl));

    printf("%s", prompt);
    CHECK(tern_eval(ctx, tokens, (int32_t)n_prompt));
    for (size_t i = 0; i < n_prompt; i++) {
        CHECK(tern_sampler_accept(smpl, tokens[i]));
    }
    while (n_generated < n_predict) {
        tern_token next = -1;
        CHECK(tern_sample(smpl, ctx, -1, &next));
        if (tern_token_is_eog(model, next)) {
            break;
        }
        CHECK(tern_sampler_accept(smpl, next));
        generated[n_generated++] = next;
        if (print_piece(model, next) != 0) {
            goto done;
        }
        if (n_generated == n_predict) {
            break;
        }
        CHECK(tern_eval(ctx, &next, 1));
    }
    printf("\nids:");
    for (int i = 0; i < n_generated; i++) {
        printf(" %d", generated[i]);
    }
    printf("\n");

    tern_perf_data perf;
    CHECK(tern_perf(ctx, &perf));
    fprintf(stderr,
            "load %.1f ms | prompt %lld tokens %.1f ms | generation %lld evals %.1f ms | "
            "sampling %lld tokens %.1f ms | n_past %d | memory %zu bytes\n",
            perf.t_load_ms, (long long)perf.n_p_eval, perf.t_p_eval_ms, (long long)perf.n_eval,
            perf.t_eval_ms, (long long)perf.n_sample, perf.t_sample_ms, tern_n_past(ctx),
            tern_context_memory_bytes(ctx));
    rc = 0;

done:
    free(generated);
    free(tokens);
    tern_sampler_free(smpl);
    tern_context_free(ctx);
    tern_model_free(model);
    return rc;
}
