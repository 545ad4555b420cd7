// greedy.cpp: tern's C API from C++ (the header compiles as C++ with -Wall -Wextra
// -Werror): RAII handles with std::unique_ptr, errors as exceptions, greedy decoding.
//
//   greedy MODEL.gguf [PROMPT] [N_PREDICT]
//
// Prints the prompt and the generated text, then `ids: ...`.
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tern.h"

namespace {

struct ModelFree {
    void operator()(tern_model *m) const { tern_model_free(m); }
};
struct ContextFree {
    void operator()(tern_context *c) const { tern_context_free(c); }
};
struct SamplerFree {
    void operator()(tern_sampler *s) const { tern_sampler_free(s); }
};
using Model = std::unique_ptr<tern_model, ModelFree>;
using Context = std::unique_ptr<tern_context, ContextFree>;
using Sampler = std::unique_ptr<tern_sampler, SamplerFree>;

void check(tern_status st, const char *what) {
    if (st != TERN_OK) {
        throw std::runtime_error(std::string(what) + ": " + tern_status_name(st) + ": " +
                                 tern_last_error());
    }
}

std::vector<tern_token> tokenize(const tern_model *model, const std::string &text) {
    size_t n = 0;
    tern_status st = tern_tokenize(model, text.data(), text.size(), true, false, nullptr, 0, &n);
    if (st != TERN_ERR_BUFFER_TOO_SMALL && st != TERN_OK) {
        check(st, "tern_tokenize");
    }
    std::vector<tern_token> tokens(n);
    check(tern_tokenize(model, text.data(), text.size(), true, false, tokens.data(),
                        tokens.size(), &n),
          "tern_tokenize");
    return tokens;
}

std::string piece(const tern_model *model, tern_token token) {
    std::string out(64, '\0');
    size_t len = 0;
    tern_status st = tern_token_to_piece(model, token, false, &out[0], out.size(), &len);
    if (st == TERN_ERR_BUFFER_TOO_SMALL) {
        out.resize(len);
        st = tern_token_to_piece(model, token, false, &out[0], out.size(), &len);
    }
    check(st, "tern_token_to_piece");
    out.resize(len);
    return out;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        std::fprintf(stderr, "usage: %s MODEL.gguf [PROMPT] [N_PREDICT]\n", argv[0]);
        return 2;
    }
    const std::string prompt = argc > 2 ? argv[2] : "Hello";
    const int n_predict = argc > 3 ? std::stoi(argv[3]) : 16;
    try {
        tern_model *raw_model = nullptr;
        check(tern_model_load(argv[1], nullptr, &raw_model), "tern_model_load");
        Model model(raw_model);

        std::vector<tern_token> tokens = tokenize(model.get(), prompt);
        tern_context_params cparams = tern_context_default_params();
        cparams.n_ctx = static_cast<uint32_t>(tokens.size()) + static_cast<uint32_t>(n_predict);
        cparams.n_threads = 1;
        cparams.n_threads_batch = 1;
        tern_context *raw_ctx = nullptr;
        check(tern_context_new(model.get(), &cparams, &raw_ctx), "tern_context_new");
        Context ctx(raw_ctx);

        tern_sampler_params sparams = tern_sampler_default_params();
        sparams.temperature = 0.0f;  // greedy
        tern_sampler *raw_smpl = nullptr;
        check(tern_sampler_new(&sparams, &raw_smpl), "tern_sampler_new");
        Sampler smpl(raw_smpl);

        std::printf("%s", prompt.c_str());
        check(tern_eval(ctx.get(), tokens.data(), static_cast<int32_t>(tokens.size())),
              "tern_eval");
        std::vector<tern_token> generated;
        for (int i = 0; i < n_predict; i++) {
            tern_token next = -1;
            check(tern_sample(smpl.get(), ctx.get(), -1, &next), "tern_sample");
            if (tern_token_is_eog(model.get(), next)) {
                break;
            }
            generated.push_back(next);
            std::printf("%s", piece(model.get(), next).c_str());
            if (i + 1 < n_predict) {
                check(tern_eval(ctx.get(), &next, 1), "tern_eval");
            }
        }
        std::printf("\nids:");
        for (tern_token t : generated) {
            std::printf(" %d", t);
        }
        std::printf("\n");
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
