/*
 * bad_args.c: the C API's boundary under misuse. Every call below gets a wrong argument
 * (NULL pointers, freed handles, handles of the wrong kind, zero-size buffers, empty and
 * oversized batches, token ids out of range, a full context, an abort) and must answer
 * with a status or a documented sentinel, never a crash, and leave the context usable.
 * CTest also runs it under valgrind and AddressSanitizer.
 *
 *   bad_args MODEL.gguf
 *
 * Prints "bad_args: N checks passed" and exits 0, or lists the failed checks and exits 1.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

static int n_checks = 0;
static int n_failed = 0;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        n_checks++;                                                                     \
        if (!(cond)) {                                                                  \
            n_failed++;                                                                 \
            fprintf(stderr, "FAILED line %d: %s (last error: %s)\n", __LINE__, #cond,   \
                    tern_last_error());                                                 \
        }                                                                               \
    } while (0)

#define EXPECT(call, status) CHECK((call) == (status))

static int abort_calls = 0;
/* Stops an evaluation at its `*limit`-th question (a counter in user_data). */
static bool abort_after(void *user_data) {
    int *limit = user_data;
    abort_calls++;
    return abort_calls >= *limit;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    tern_model *model = NULL;
    tern_status st = tern_model_load(argv[1], NULL, &model);
    if (st != TERN_OK) {
        fprintf(stderr, "tern_model_load: %s\n", tern_last_error());
        return 1;
    }
    int32_t n_vocab = tern_model_n_vocab(model);

    /* ---- contexts ---- */
    tern_context *ctx = (tern_context *)&n_checks; /* must be overwritten with NULL */
    tern_context_params cp = tern_context_default_params();
    CHECK(cp.n_ctx == 0 && cp.n_batch == 0 && cp.kv_type == TERN_KV_F16 && !cp.logits_all);
    EXPECT(tern_context_new(NULL, &cp, &ctx), TERN_ERR_INVALID_ARGUMENT);
    CHECK(ctx == NULL);
    EXPECT(tern_context_new(model, &cp, NULL), TERN_ERR_INVALID_ARGUMENT);
    cp.kv_type = 7;
    EXPECT(tern_context_new(model, &cp, &ctx), TERN_ERR_INVALID_ARGUMENT);
    cp.kv_type = TERN_KV_F32;
    cp.n_threads = -2;
    EXPECT(tern_context_new(model, &cp, &ctx), TERN_ERR_INVALID_ARGUMENT);
    cp.n_threads = 0;
    /* A handle of another kind is not a model. */
    EXPECT(tern_context_new((const tern_model *)&cp, &cp, &ctx), TERN_ERR_INVALID_ARGUMENT);
    CHECK(strstr(tern_last_error(), "not a live tern_model") != NULL);

    tern_model_params vp = tern_model_default_params();
    vp.vocab_only = true;
    tern_model *vocab_only = NULL;
    EXPECT(tern_model_load(argv[1], &vp, &vocab_only), TERN_OK);
    EXPECT(tern_context_new(vocab_only, NULL, &ctx), TERN_ERR_INVALID_ARGUMENT);
    tern_model_free(vocab_only);

    cp.n_ctx = 16;
    cp.n_batch = 8;
    cp.n_threads = 1;
    cp.n_threads_batch = 2;
    EXPECT(tern_context_new(model, &cp, &ctx), TERN_OK);
    CHECK(tern_n_ctx(ctx) == 16 && tern_n_batch(ctx) == 8 && tern_n_past(ctx) == 0);
    CHECK(tern_n_threads(ctx) == 1 && tern_n_threads_batch(ctx) == 2);
    CHECK(tern_context_memory_bytes(ctx) > 0);
    CHECK(tern_context_memory_bytes(NULL) == 0);
    CHECK(tern_n_past(NULL) == -1 && tern_n_ctx(NULL) == -1 && tern_n_outputs(NULL) == -1);

    /* ---- eval ---- */
    tern_token toks[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CHECK(tern_get_logits(ctx) == NULL);
    CHECK(tern_get_logits_ith(ctx, -1) == NULL);
    EXPECT(tern_eval(NULL, toks, 3), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_eval(ctx, NULL, 3), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_eval(ctx, toks, 0), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_eval(ctx, toks, -1), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_eval(ctx, toks, 9), TERN_ERR_INVALID_ARGUMENT); /* > n_batch */
    tern_token bad_low[3] = {1, -1, 2};
    tern_token bad_high[3] = {1, 2, 0};
    bad_high[2] = n_vocab;
    EXPECT(tern_eval(ctx, bad_low, 3), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_eval(ctx, bad_high, 3), TERN_ERR_INVALID_ARGUMENT);
    CHECK(tern_n_past(ctx) == 0);

    EXPECT(tern_eval(ctx, toks, 6), TERN_OK);
    CHECK(tern_n_past(ctx) == 6 && tern_n_outputs(ctx) == 1);
    const float *last = tern_get_logits_ith(ctx, -1);
    CHECK(last != NULL && last == tern_get_logits(ctx) && last == tern_get_logits_ith(ctx, 5));
    CHECK(tern_get_logits_ith(ctx, 0) == NULL); /* no logits_all */
    CHECK(tern_get_logits_ith(ctx, 6) == NULL);
    CHECK(tern_get_logits_ith(ctx, -7) == NULL);
    float saved[8];
    memcpy(saved, last, sizeof saved);

    /* A batch that does not fit is refused and changes nothing. */
    EXPECT(tern_eval(ctx, toks, 8), TERN_OK); /* 14 of 16 */
    EXPECT(tern_eval(ctx, toks, 3), TERN_ERR_CONTEXT_FULL);
    CHECK(strstr(tern_last_error(), "14 positions") != NULL);
    CHECK(tern_n_past(ctx) == 14);
    CHECK(tern_get_logits_ith(ctx, -1) != NULL);

    /* Rewind: truncating to 6 and evaluating the same tokens gives the same logits. */
    EXPECT(tern_kv_truncate(ctx, -1), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_kv_truncate(ctx, 15), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_kv_truncate(NULL, 0), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_kv_truncate(ctx, 0), TERN_OK);
    EXPECT(tern_eval(ctx, toks, 6), TERN_OK);
    CHECK(memcmp(saved, tern_get_logits_ith(ctx, -1), sizeof saved) == 0);

    /* The abort callback: stop before the first block, then before the second. */
    int limit = 1;
    EXPECT(tern_set_abort_callback(NULL, abort_after, &limit), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_set_abort_callback(ctx, abort_after, &limit), TERN_OK);
    EXPECT(tern_eval(ctx, toks, 2), TERN_ERR_ABORTED);
    CHECK(tern_n_past(ctx) == 6 && abort_calls == 1);
    CHECK(tern_get_logits(ctx) == NULL);
    abort_calls = 0;
    limit = 2;
    EXPECT(tern_eval(ctx, toks, 1), TERN_ERR_ABORTED);
    CHECK(tern_n_past(ctx) == 6 && abort_calls == 2);
    EXPECT(tern_set_abort_callback(ctx, NULL, NULL), TERN_OK);
    EXPECT(tern_eval(ctx, toks, 1), TERN_OK);
    CHECK(tern_n_past(ctx) == 7);
    EXPECT(tern_kv_clear(ctx), TERN_OK);
    CHECK(tern_n_past(ctx) == 0 && tern_get_logits(ctx) == NULL);
    EXPECT(tern_kv_clear(NULL), TERN_ERR_INVALID_ARGUMENT);

    /* ---- performance counters ---- */
    tern_perf_data perf;
    EXPECT(tern_perf(ctx, NULL), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_perf(NULL, &perf), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_perf(ctx, &perf), TERN_OK);
    CHECK(perf.n_p_eval == 6 + 8 + 6 && perf.n_eval == 1 && perf.t_load_ms > 0);
    EXPECT(tern_perf_reset(ctx), TERN_OK);
    EXPECT(tern_perf(ctx, &perf), TERN_OK);
    CHECK(perf.n_p_eval == 0 && perf.n_eval == 0 && perf.t_p_eval_ms == 0 && perf.t_load_ms > 0);

    /* ---- sampling from a context ---- */
    tern_sampler_params sp = tern_sampler_default_params();
    sp.seed = 5;
    sp.penalty_last_n = -2;
    tern_sampler *smpl = NULL;
    EXPECT(tern_sampler_new(&sp, &smpl), TERN_ERR_INVALID_ARGUMENT);
    sp.penalty_last_n = -1; /* the context's size */
    sp.penalty_repeat = 1.2f;
    EXPECT(tern_sampler_new(&sp, &smpl), TERN_OK);
    tern_token tok = 0;
    EXPECT(tern_sample(smpl, ctx, -1, &tok), TERN_ERR_INVALID_ARGUMENT); /* no logits */
    CHECK(tok == -1);
    EXPECT(tern_eval(ctx, toks, 3), TERN_OK);
    EXPECT(tern_sample(NULL, ctx, -1, &tok), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_sample(smpl, NULL, -1, &tok), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_sample(smpl, ctx, -1, NULL), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_sample(smpl, ctx, 0, &tok), TERN_ERR_INVALID_ARGUMENT); /* no logits_all */
    EXPECT(tern_sample(smpl, ctx, 3, &tok), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_sample((tern_sampler *)ctx, ctx, -1, &tok), TERN_ERR_INVALID_ARGUMENT);
    for (int i = 0; i < 20; i++) {
        EXPECT(tern_sampler_accept(smpl, i), TERN_OK);
    }
    EXPECT(tern_sample(smpl, ctx, -1, &tok), TERN_OK);
    CHECK(tok >= 0 && tok < n_vocab);
    CHECK(tern_sampler_window_len(smpl) == 16); /* bound to n_ctx: the newest 16 kept */
    EXPECT(tern_perf(ctx, &perf), TERN_OK);
    CHECK(perf.n_sample == 1);

    /* ---- zero-size buffers ---- */
    size_t needed = 0;
    EXPECT(tern_token_to_piece(model, 65, false, NULL, 0, &needed), TERN_ERR_BUFFER_TOO_SMALL);
    CHECK(needed > 0);
    EXPECT(tern_token_to_piece(model, n_vocab, false, NULL, 0, &needed),
           TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_token_to_piece(model, -3, false, NULL, 0, &needed), TERN_ERR_INVALID_ARGUMENT);
    EXPECT(tern_tokenize(model, "hello", 5, false, false, NULL, 0, &needed),
           TERN_ERR_BUFFER_TOO_SMALL);
    CHECK(needed > 0);
    EXPECT(tern_tokenize(model, NULL, 0, false, false, NULL, 0, &needed), TERN_OK);
    CHECK(needed == 0);
    EXPECT(tern_sampler_sample_logits(smpl, tern_get_logits_ith(ctx, -1), 0, &tok),
           TERN_ERR_INVALID_ARGUMENT);

    /* ---- freed handles ---- */
    tern_context_free(ctx);
    CHECK(tern_n_past(ctx) == -1);
    CHECK(strstr(tern_last_error(), "not a live tern_context") != NULL);
    EXPECT(tern_eval(ctx, toks, 1), TERN_ERR_INVALID_ARGUMENT);
    CHECK(tern_get_logits(ctx) == NULL);
    tern_context_free(ctx); /* a double free is reported, not performed */
    CHECK(strstr(tern_last_error(), "not a live tern_context") != NULL);
    tern_sampler_free(smpl);
    EXPECT(tern_sampler_accept(smpl, 1), TERN_ERR_INVALID_ARGUMENT);
    tern_sampler_free(smpl);
    tern_context_free(NULL);
    tern_sampler_free(NULL);

    /* A context outlives its model's handle. */
    cp = tern_context_default_params();
    cp.n_ctx = 8;
    EXPECT(tern_context_new(model, &cp, &ctx), TERN_OK);
    tern_model_free(model);
    CHECK(tern_model_n_vocab(model) == -1);
    EXPECT(tern_eval(ctx, toks, 2), TERN_OK);
    CHECK(tern_get_logits_ith(ctx, -1) != NULL && !isnan(tern_get_logits_ith(ctx, -1)[0]));
    tern_context_free(ctx);
    tern_model_free(model); /* double free of the model: reported */

    if (n_failed != 0) {
        fprintf(stderr, "bad_args: %d of %d checks failed\n", n_failed, n_checks);
        return 1;
    }
    printf("bad_args: %d checks passed\n", n_checks);
    return 0;
}
