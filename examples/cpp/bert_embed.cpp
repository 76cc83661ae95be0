// Sentence embeddings with the pretrained all-MiniLM-L6-v2 (a 6-layer BERT) from C++ alone,
// the twin of examples/bert_embed.py:
//   scripts/fetch_minilm.sh                      # once: fetches the model (about 90 MB)
//   build/examples/cpp/bert_embed [--model DIR] "A man is eating food." "Someone eats a meal."
// Tokenises the sentences (data::BertTokenizer), runs models::BertModel, mean-pools the token
// vectors over the attention mask, L2-normalises them and prints each embedding's first
// values and the cosine similarity matrix. DIR defaults to $BIGMODEL_MINILM_DIR, else
// ~/.cache/bigmodel/minilm.
#include "core/bigmodel.h"  // <bigmodel/bigmodel.h> when built against an installed bigmodel

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

using namespace bigmodel;

namespace {

const std::vector<std::string> kDefaults = {
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A cheetah is running behind its prey.",
};

std::string default_model_dir() {
  if (const char* env = std::getenv("BIGMODEL_MINILM_DIR")) return env;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/bigmodel/minilm";
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir = default_model_dir();
  std::vector<std::string> sentences;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--model" && i + 1 < argc) {
      model_dir = argv[++i];
    } else if (arg == "-h" || arg == "--help") {
      std::printf("usage: %s [--model DIR] [sentence ...]\n", argv[0]);
      return 0;
    } else {
      sentences.push_back(arg);
    }
  }
  if (sentences.empty()) sentences = kDefaults;
  if (!std::filesystem::is_regular_file(model_dir + "/model.safetensors")) {
    std::fprintf(stderr, "no model in %s: run scripts/fetch_minilm.sh first (or pass --model DIR)\n",
                 model_dir.c_str());
    return 1;
  }
  try {
    const auto start = std::chrono::steady_clock::now();
    const auto tokenizer = data::BertTokenizer::from_pretrained(model_dir);
    const auto model = models::BertModel::from_pretrained(model_dir);
    const double load_s = seconds_since(start);
    const auto t0 = std::chrono::steady_clock::now();
    const data::BatchEncoding batch = tokenizer(sentences, data::Padding::Longest, true, 256);
    NoGradGuard no_grad;
    const models::BertOutput out = (*model)(batch.input_ids, batch.attention_mask, batch.token_type_ids);
    const Tensor emb = contiguous(models::l2_normalize(models::mean_pool(out.last_hidden_state, batch.attention_mask)));
    const Tensor sim = contiguous(matmul(emb, transpose(emb, 0, 1)));
    const double run_s = seconds_since(t0);

    const int64_t n = emb.size(0), dim = emb.size(1);
    std::printf("model loaded in %.2f s; %lld sentences embedded in %.2f s (dim %lld)\n", load_s,
                static_cast<long long>(n), run_s, static_cast<long long>(dim));
    const float* e = emb.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      std::printf("[%lld] %s\n     [", static_cast<long long>(i), sentences[static_cast<size_t>(i)].c_str());
      for (int64_t j = 0; j < 6; ++j) std::printf("%s%.4f", j ? ", " : "", e[i * dim + j]);
      std::printf(", ...]\n");
    }
    std::printf("cosine similarity:\n     ");
    for (int64_t j = 0; j < n; ++j) std::printf("%7lld", static_cast<long long>(j));
    std::printf("\n");
    const float* s = sim.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      std::printf("[%2lld] ", static_cast<long long>(i));
      for (int64_t j = 0; j < n; ++j) std::printf("%7.3f", s[i * n + j]);
      std::printf("\n");
    }
  } catch (const std::exception& err) {
    std::fprintf(stderr, "bert_embed: %s\n", err.what());
    return 1;
  }
  return 0;
}
