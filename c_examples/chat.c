/*
 * chat.c: a multi-turn chat over standard input through tern's C API. Each line read is
 * a user message; the reply streams to standard output. The KV cache is kept across
 * turns: each turn evaluates only the text the chat template adds since the previous
 * turn, on top of what the cache already holds.
 *
 *   chat MODEL.gguf [TEMPLATE] [N_PREDICT] [SEED]
 *
 * TEMPLATE is a format name (chatml, llama3, bitnet, ...) or "model" (the default: the
 * model's own template, else chatml). N_PREDICT caps each reply (default 24).
 * Standard error gets one line per turn: the tokens evaluated for the turn and those the
 * cache already held (reused).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

#define N_CTX 2048
#define MAX_MESSAGES 256

static void report(const char *what, tern_status st) {
    fprintf(stderr, "%s failed: %s: %s\n", what, tern_status_name(st), tern_last_error());
}

/* Formats `n` messages with the template into a new string (NULL on failure). */
static char *format_chat(const tern_model *model, const char *tmpl, const tern_chat_message *msgs,
                         size_t n, bool add_generation_prompt) {
    size_t needed = 0;
    tern_status st = tern_chat_apply_template(model, tmpl, msgs, n, add_generation_prompt, NULL,
                                              0, &needed);
    if (st != TERN_ERR_BUFFER_TOO_SMALL) {
        report("tern_chat_apply_template", st);
        return NULL;
    }
    char *buf = malloc(needed);
    if (buf == NULL) {
        return NULL;
    }
    st = tern_chat_apply_template(model, tmpl, msgs, n, add_generation_prompt, buf, needed, NULL);
    if (st != TERN_OK) {
        report("tern_chat_apply_template", st);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Tokenizes `text` and evaluates it in batches of at most n_batch tokens. */
static tern_status eval_text(tern_model *model, tern_context *ctx, tern_sampler *smpl,
                             const char *text, bool add_special) {
    size_t n = 0;
    tern_status st = tern_tokenize(model, text, strlen(text), add_special, true, NULL, 0, &n);
    if (st != TERN_ERR_BUFFER_TOO_SMALL && st != TERN_OK) {
        return st;
    }
    if (n == 0) {
        return TERN_OK;
    }
    tern_token *tokens = malloc(n * sizeof *tokens);
    if (tokens == NULL) {
        return TERN_ERR_OUT_OF_MEMORY;
    }
    st = tern_tokenize(model, text, strlen(text), add_special, true, tokens, n, &n);
    int32_t n_batch = tern_n_batch(ctx);
    for (size_t i = 0; st == TERN_OK && i < n; i += (size_t)n_batch) {
        size_t len = n - i < (size_t)n_batch ? n - i : (size_t)n_batch;
        st = tern_eval(ctx, tokens + i, (int32_t)len);
    }
    for (size_t i = 0; st == TERN_OK && i < n; i++) {
        st = tern_sampler_accept(smpl, tokens[i]);
    }
    free(tokens);
    return st;
}

/* The chat template takes UTF-8 text, but a reply is raw token bytes: it may stop inside
 * a character (at n_predict), and a small or random model may produce any bytes. Replaces
 * each byte that does not belong to a valid UTF-8 sequence with '?', in place. */
static void make_utf8(char *text) {
    unsigned char *s = (unsigned char *)text;
    while (*s != 0) {
        int len = *s < 0x80 ? 1 : (*s & 0xE0) == 0xC0 ? 2 : (*s & 0xF0) == 0xE0 ? 3
                : (*s & 0xF8) == 0xF0 ? 4 : 0;
        int ok = len > 0 && !(len == 2 && *s < 0xC2) && !(len == 4 && *s > 0xF4);
        for (int i = 1; ok && i < len; i++) {
            ok = (s[i] & 0xC0) == 0x80;
        }
        if (ok && len == 3) { /* no overlong forms, no surrogates */
            ok = !(*s == 0xE0 && s[1] < 0xA0) && !(*s == 0xED && s[1] >= 0xA0);
        }
        if (ok && len == 4) {
            ok = !(*s == 0xF0 && s[1] < 0x90) && !(*s == 0xF4 && s[1] >= 0x90);
        }
        if (!ok) {
            *s++ = '?';
        } else {
            s += len;
        }
    }
}

/* Samples a reply of at most n_predict tokens, streaming it; returns it (malloc'd). */
static char *generate_reply(tern_model *model, tern_context *ctx, tern_sampler *smpl,
                            int n_predict, tern_status *st) {
    size_t cap = 256, len = 0;
    char *reply = malloc(cap);
    if (reply == NULL) {
        *st = TERN_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    reply[0] = '\0';
    for (int i = 0; i < n_predict; i++) {
        tern_token next = -1;
        *st = tern_sample(smpl, ctx, -1, &next);
        if (*st != TERN_OK || tern_token_is_eog(model, next)) {
            break;
        }
        char piece[256];
        size_t piece_len = 0;
        *st = tern_token_to_piece(model, next, false, piece, sizeof piece, &piece_len);
        if (*st != TERN_OK) {
            break;
        }
        if (len + piece_len + 1 > cap) {
            cap = 2 * (len + piece_len + 1);
            char *bigger = realloc(reply, cap);
            if (bigger == NULL) {
                *st = TERN_ERR_OUT_OF_MEMORY;
                break;
            }
            reply = bigger;
        }
        memcpy(reply + len, piece, piece_len);
        len += piece_len;
        reply[len] = '\0';
        fwrite(piece, 1, piece_len, stdout);
        fflush(stdout);
        *st = tern_sampler_accept(smpl, next);
        if (*st == TERN_OK) {
            *st = tern_eval(ctx, &next, 1);
        }
        if (*st != TERN_OK) {
            break;
        }
    }
    printf("\n");
    return reply;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: %s MODEL.gguf [TEMPLATE|model] [N_PREDICT] [SEED]\n", argv[0]);
        return 2;
    }
    const char *tmpl = argc > 2 && strcmp(argv[2], "model") != 0 ? argv[2] : NULL;
    int n_predict = argc > 3 ? atoi(argv[3]) : 24;
    unsigned long long seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 7;

    int rc = 1;
    tern_model *model = NULL;
    tern_context *ctx = NULL;
    tern_sampler *smpl = NULL;
    tern_chat_message msgs[MAX_MESSAGES];
    char *owned[MAX_MESSAGES]; /* the content strings we allocated */
    size_t n_msgs = 0;
    size_t prev_len = 0; /* length of the formatted history the cache holds */
    char line[4096];
    tern_status st;

    if ((st = tern_model_load(argv[1], NULL, &model)) != TERN_OK) {
        report("tern_model_load", st);
        return 1;
    }
    if (tmpl == NULL) {
        /* The model's template if it has one, else chatml. */
        tern_chat_message probe = {"user", "x"};
        size_t needed = 0;
        if (tern_chat_apply_template(model, NULL, &probe, 1, true, NULL, 0, &needed) ==
            TERN_ERR_NOT_FOUND) {
            tmpl = "chatml";
        }
    }
    tern_context_params cparams = tern_context_default_params();
    cparams.n_ctx = N_CTX;
    cparams.n_threads = 1;
    cparams.n_threads_batch = 1;
    if ((st = tern_context_new(model, &cparams, &ctx)) != TERN_OK) {
        report("tern_context_new", st);
        goto done;
    }
    tern_sampler_params sparams = tern_sampler_default_params();
    sparams.seed = seed;
    sparams.penalty_last_n = -1; /* the whole context */
    sparams.penalty_repeat = 1.1f;
    if ((st = tern_sampler_new(&sparams, &smpl)) != TERN_OK) {
        report("tern_sampler_new", st);
        goto done;
    }

    int turn = 0;
    while (n_msgs + 2 <= MAX_MESSAGES && fgets(line, sizeof line, stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') {
            continue;
        }
        owned[n_msgs] = strdup(line);
        if (owned[n_msgs] == NULL) {
            goto done;
        }
        msgs[n_msgs].role = "user";
        msgs[n_msgs].content = owned[n_msgs];
        n_msgs++;

        char *formatted = format_chat(model, tmpl, msgs, n_msgs, true);
        if (formatted == NULL) {
            goto done;
        }
        int32_t reused = tern_n_past(ctx);
        printf("> %s\n", line);
        st = eval_text(model, ctx, smpl, formatted + prev_len, prev_len == 0);
        free(formatted);
        if (st == TERN_ERR_CONTEXT_FULL) {
            printf("(the context is full: ending the chat)\n");
            break;
        }
        if (st != TERN_OK) {
            report("evaluating the prompt", st);
            goto done;
        }
        int32_t after_prompt = tern_n_past(ctx);
        char *reply = generate_reply(model, ctx, smpl, n_predict, &st);
        if (reply == NULL) {
            goto done;
        }
        make_utf8(reply);
        owned[n_msgs] = reply;
        msgs[n_msgs].role = "assistant";
        msgs[n_msgs].content = reply;
        n_msgs++;
        turn++;
        fprintf(stderr, "turn %d: evaluated %d prompt tokens, reused %d, n_past %d\n", turn,
                after_prompt - reused, reused, tern_n_past(ctx));
        if (st == TERN_ERR_CONTEXT_FULL) {
            printf("(the context is full: ending the chat)\n");
            break;
        }
        if (st != TERN_OK) {
            report("generating", st);
            goto done;
        }
        /* What the cache holds now, as the template writes it. */
        char *history = format_chat(model, tmpl, msgs, n_msgs, false);
        if (history == NULL) {
            goto done;
        }
        prev_len = strlen(history);
        free(history);
    }
    rc = 0;

done:
    for (size_t i = 0; i < n_msgs; i++) {
        free(owned[i]);
    }
    tern_sampler_free(smpl);
    tern_context_free(ctx);
    tern_model_free(model);
    return rc;
}
