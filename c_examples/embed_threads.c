/*
 * embed_threads.c: one model shared by several contexts on several threads (pthreads).
 * A model is immutable after load and may be used by any number of threads at once; a
 * context and a sampler belong to one thread at a time.
 *
 *   embed_threads MODEL.gguf [N_THREADS] [N_PREDICT]
 *
 * Runs the same prompt and seed once on the main thread, then on N_THREADS threads at
 * once (default 4), each with its own context and sampler, and checks that every thread
 * produced the same tokens and the same final logits as the single-threaded run.
 * Exits 0 and prints "all N threads match" when they do.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

#define MAX_PREDICT 64
#define MAX_THREADS 16
#define PROMPT "The quick brown fox"

typedef struct {
    const tern_model *model;
    int n_predict;
    tern_token tokens[MAX_PREDICT];
    int n_tokens;
    float *last_logits; /* n_vocab floats: the logits after the last evaluation */
    tern_status status;
    char error[256];
} job;

/* The whole generation on one thread: its own context and sampler. */
static void *run_job(void *arg) {
    job *j = arg;
    tern_context *ctx = NULL;
    tern_sampler *smpl = NULL;
    tern_token prompt[64];
    size_t n_prompt = 0;
    j->n_tokens = 0;

    tern_status st = tern_tokenize(j->model, PROMPT, strlen(PROMPT), true, false, prompt,
                                   sizeof prompt / sizeof prompt[0], &n_prompt);
    tern_context_params cparams = tern_context_default_params();
    cparams.n_ctx = 128;
    cparams.n_threads = 1;
    cparams.n_threads_batch = 1;
    if (st == TERN_OK) {
        st = tern_context_new(j->model, &cparams, &ctx);
    }
    tern_sampler_params sparams = tern_sampler_default_params();
    sparams.seed = 1234;
    if (st == TERN_OK) {
        st = tern_sampler_new(&sparams, &smpl);
    }
    if (st == TERN_OK) {
        st = tern_eval(ctx, prompt, (int32_t)n_prompt);
    }
    while (st == TERN_OK && j->n_tokens < j->n_predict) {
        tern_token next = -1;
        st = tern_sample(smpl, ctx, -1, &next);
        if (st == TERN_OK) {
            st = tern_sampler_accept(smpl, next);
        }
        if (st == TERN_OK) {
            j->tokens[j->n_tokens++] = next;
            st = tern_eval(ctx, &next, 1);
        }
    }
    if (st == TERN_OK) {
        const float *logits = tern_get_logits_ith(ctx, -1);
        size_t n_vocab = (size_t)tern_model_n_vocab(j->model);
        if (logits == NULL || (j->last_logits = malloc(n_vocab * sizeof(float))) == NULL) {
            st = TERN_ERR_INTERNAL;
        } else {
            memcpy(j->last_logits, logits, n_vocab * sizeof(float));
        }
    }
    j->status = st;
    if (st != TERN_OK) {
        snprintf(j->error, sizeof j->error, "%s: %s", tern_status_name(st), tern_last_error());
    }
    tern_sampler_free(smpl);
    tern_context_free(ctx);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s MODEL.gguf [N_THREADS] [N_PREDICT]\n", argv[0]);
        return 2;
    }
    int n_threads = argc > 2 ? atoi(argv[2]) : 4;
    int n_predict = argc > 3 ? atoi(argv[3]) : 16;
    if (n_threads < 1 || n_threads > MAX_THREADS || n_predict < 1 || n_predict > MAX_PREDICT) {
        fprintf(stderr, "N_THREADS must be 1..%d and N_PREDICT 1..%d\n", MAX_THREADS,
                MAX_PREDICT);
        return 2;
    }
    tern_model *model = NULL;
    tern_status st = tern_model_load(argv[1], NULL, &model);
    if (st != TERN_OK) {
        fprintf(stderr, "tern_model_load: %s: %s\n", tern_status_name(st), tern_last_error());
        return 1;
    }
    size_t n_vocab = (size_t)tern_model_n_vocab(model);

    job reference;
    memset(&reference, 0, sizeof reference);
    reference.model = model;
    reference.n_predict = n_predict;
    run_job(&reference);
    if (reference.status != TERN_OK) {
        fprintf(stderr, "single-threaded run: %s\n", reference.error);
        tern_model_free(model);
        return 1;
    }
    printf("single thread:");
    for (int i = 0; i < reference.n_tokens; i++) {
        printf(" %d", reference.tokens[i]);
    }
    printf("\n");

    job jobs[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    memset(jobs, 0, sizeof jobs);
    int started = 0;
    for (int t = 0; t < n_threads; t++) {
        jobs[t].model = model;
        jobs[t].n_predict = n_predict;
        if (pthread_create(&threads[t], NULL, run_job, &jobs[t]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            break;
        }
        started++;
    }
    int mismatches = started == n_threads ? 0 : 1;
    for (int t = 0; t < started; t++) {
        pthread_join(threads[t], NULL);
        if (jobs[t].status != TERN_OK) {
            fprintf(stderr, "thread %d: %s\n", t, jobs[t].error);
            mismatches++;
        } else if (jobs[t].n_tokens != reference.n_tokens ||
                   memcmp(jobs[t].tokens, reference.tokens,
                          (size_t)reference.n_tokens * sizeof(tern_token)) != 0 ||
                   memcmp(jobs[t].last_logits, reference.last_logits,
                          n_vocab * sizeof(float)) != 0) {
            fprintf(stderr, "thread %d differs from the single-threaded run\n", t);
            mismatches++;
        }
        free(jobs[t].last_logits);
    }
    free(reference.last_logits);
    tern_model_free(model);
    if (mismatches != 0) {
        fprintf(stderr, "%d of %d threads failed or differ\n", mismatches, n_threads);
        return 1;
    }
    printf("all %d threads match the single-threaded run (%d tokens, final logits bitwise)\n",
           n_threads, reference.n_tokens);
    return 0;
}
