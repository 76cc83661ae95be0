// The C++ BertModel (nn/models/bert.h): Hugging Face parameter names, forward shapes and
// padding invariance on a tiny random model against an attention written with plain ops,
// config and from_pretrained errors, and (when all-MiniLM-L6-v2 has been fetched by
// scripts/fetch_minilm.sh) sentence embeddings equal to tests/fixtures/minilm_embeddings.json.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/data/tokenizer.h"
#include "core/error.h"
#include "core/json.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/index.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"
#include "core/ops/norm.h"
#include "core/ops/softmax.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "nn/models/bert.h"

namespace bigmodel::models {
namespace {

BertConfig tiny_config() {
  BertConfig c;
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 24;
  c.max_position_embeddings = 12;
  return c;
}

std::shared_ptr<BertModel> tiny_model() {
  manual_seed(0);
  auto m = std::make_shared<BertModel>(tiny_config());
  m->eval();
  return m;
}

std::string minilm_dir() {
  if (const char* env = std::getenv("BIGMODEL_MINILM_DIR")) return env;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/bigmodel/minilm";
}

std::vector<float> values(const Tensor& t) {
  const Tensor c = contiguous(to(t, DType::Float32));
  const float* p = c.data<float>();
  return std::vector<float>(p, p + c.numel());
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = values(a), y = values(b);
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::fabs(double(x[i]) - y[i]));
  return m;
}

Tensor ids_tensor(const std::vector<int64_t>& v, int64_t rows) {
  return from_vector(v, {rows, static_cast<int64_t>(v.size()) / rows});
}

TEST(BertCpp, ParameterNamesEqualHuggingFace) {
  const auto model = tiny_model();
  std::vector<std::string> names;
  for (const auto& kv : model->state_dict()) names.push_back(kv.first);
  std::vector<std::string> expected = {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                                       "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                                       "embeddings.LayerNorm.bias"};
  const char* layer[] = {"attention.self.query.weight",       "attention.self.query.bias",
                         "attention.self.key.weight",         "attention.self.key.bias",
                         "attention.self.value.weight",       "attention.self.value.bias",
                         "attention.output.dense.weight",     "attention.output.dense.bias",
                         "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
                         "intermediate.dense.weight",         "intermediate.dense.bias",
                         "output.dense.weight",               "output.dense.bias",
                         "output.LayerNorm.weight",           "output.LayerNorm.bias"};
  for (int i = 0; i < 2; ++i)
    for (const char* n : layer) expected.push_back("encoder.layer." + std::to_string(i) + "." + n);
  expected.push_back("pooler.dense.weight");
  expected.push_back("pooler.dense.bias");
  EXPECT_EQ(names, expected);
  // BERT's init: unit LayerNorm weights, zero biases, small normal weights.
  const auto sd = model->state_dict();
  EXPECT_EQ(values(sd[3].second), std::vector<float>(16, 1.0f));
  EXPECT_EQ(values(sd[4].second), std::vector<float>(16, 0.0f));
  const auto w = values(sd[0].second);
  double sq = 0;
  for (float v : w) sq += double(v) * v;
  EXPECT_NEAR(std::sqrt(sq / w.size()), 0.02, 0.004);
}

// One encoder layer written out with matmul + softmax on the model's own weights.
Tensor reference_forward(BertModel& m, const Tensor& ids, const Tensor& mask) {
  const auto& c = m.config;
  const int64_t b = ids.size(0), t = ids.size(1), h = c.num_attention_heads, d = c.hidden_size / h;
  auto ln = [&](const Tensor& x, const nn::LayerNorm& l) { return layer_norm(x, {c.hidden_size}, l.weight, l.bias, c.layer_norm_eps); };
  auto lin = [](const Tensor& x, const nn::Linear& l) { return add(matmul(x, transpose(l.weight, 0, 1)), l.bias); };
  Tensor x = add(add(embedding(m.embeddings->word_embeddings->weight, ids),
                     embedding(m.embeddings->position_embeddings->weight, arange(Scalar(t)))),
                 select(m.embeddings->token_type_embeddings->weight, 0, 0));
  x = ln(x, *m.embeddings->LayerNorm);
  const Tensor bias = unsqueeze(unsqueeze(mul(sub(to(mask, DType::Float32), Scalar(1.0)), Scalar(1e9)), 1), 1);
  for (const auto& layer : m.encoder->layers) {
    const auto& sa = *layer->attention->self;
    auto heads = [&](const Tensor& y) { return permute(reshape(y, {b, t, h, d}), {0, 2, 1, 3}); };
    const Tensor q = heads(lin(x, *sa.query)), k = heads(lin(x, *sa.key)), v = heads(lin(x, *sa.value));
    Tensor s = add(mul(matmul(q, transpose(k, -1, -2)), Scalar(1.0 / std::sqrt(double(d)))), bias);
    const Tensor ctx = reshape(permute(matmul(softmax(s, -1), v), {0, 2, 1, 3}), {b, t, h * d});
    x = ln(add(lin(ctx, *layer->attention->output->dense), x), *layer->attention->output->LayerNorm);
    const Tensor inner = gelu(lin(x, *layer->intermediate->dense));
    x = ln(add(lin(inner, *layer->output->dense), x), *layer->output->LayerNorm);
  }
  return x;
}

TEST(BertCpp, ForwardMatchesReferenceAndIgnoresPadding) {
  const auto model = tiny_model();
  NoGradGuard no_grad;
  const Tensor ids = ids_tensor({2, 5, 9, 13, 3, 0, 2, 7, 3, 0, 0, 0}, 2);
  const Tensor mask = ids_tensor({1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0}, 2);
  const BertOutput out = (*model)(ids, mask);
  EXPECT_EQ(out.last_hidden_state.sizes(), (Shape{2, 6, 16}));
  EXPECT_EQ(out.pooler_output.sizes(), (Shape{2, 16}));
  EXPECT_LT(max_abs_diff(out.last_hidden_state, reference_forward(*model, ids, mask)), 2e-5);
  // The padded row's real tokens equal the same row run alone.
  const Tensor alone = model->forward(ids_tensor({2, 7, 3}, 1));
  EXPECT_LT(max_abs_diff(narrow(select(out.last_hidden_state, 0, 1), 0, 0, 3), select(alone, 0, 0)), 2e-5);
  const Tensor emb = l2_normalize(mean_pool(out.last_hidden_state, mask));
  for (float n : values(norm(emb, 2.0, {-1}))) EXPECT_NEAR(n, 1.0f, 1e-5);
  // The pooler is tanh(dense(hidden[:, 0])).
  const auto& dense = *model->pooler->dense;
  const Tensor pooled = tanh(add(matmul(select(out.last_hidden_state, 1, 0), transpose(dense.weight, 0, 1)), dense.bias));
  EXPECT_LT(max_abs_diff(out.pooler_output, pooled), 1e-6);
  // token_type_ids select the type embedding.
  const Tensor types = ids_tensor({0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, 2);
  EXPECT_GT(max_abs_diff(model->forward(ids, mask, types).last_hidden_state, out.last_hidden_state), 1e-3);
}

TEST(BertCpp, BadInputsAndGradients) {
  const auto model = tiny_model();
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("(no ValueError)");
  };
  EXPECT_NE(message([&] { model->forward(from_vector<int64_t>({1, 2, 3}, {3})); }).find("[BertModel] input_ids"),
            std::string::npos);
  EXPECT_NE(message([&] { (*model)(ids_tensor({1, 2, 3}, 1), ids_tensor({1, 1}, 1)); }).find("attention_mask"),
            std::string::npos);
  EXPECT_NE(message([&] { model->forward(ids_tensor(std::vector<int64_t>(13, 1), 1)); })
                .find("max_position_embeddings"),
            std::string::npos);
  BertConfig bad = tiny_config();
  bad.hidden_size = 10;
  EXPECT_NE(message([&] { BertModel m(bad); }).find("num_attention_heads"), std::string::npos);
  bad = tiny_config();
  bad.hidden_act = "swish2";
  EXPECT_NE(message([&] { BertModel m(bad); }).find("hidden_act"), std::string::npos);
  // Gradients reach every weight through the pooled output.
  model->train();
  const BertOutput out = (*model)(ids_tensor({2, 5, 9, 3, 2, 6, 3, 0}, 2), ids_tensor({1, 1, 1, 1, 1, 1, 1, 0}, 2));
  sum(mul(out.pooler_output, out.pooler_output)).backward();
  for (const auto& [name, p] : model->named_parameters()) {
    if (name.find("token_type") != std::string::npos) continue;  // type 1 is never used
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_GT(sum(abs(p.grad())).item().to<double>(), 0.0) << name;
  }
}

TEST(BertCpp, FromPretrainedRoundTripKeyVariantsAndErrors) {
  const auto model = tiny_model();
  const auto dir = std::filesystem::temp_directory_path() / ("bm_bert_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto& c = model->config;
  {
    std::ofstream f(dir / "config.json");
    f << "{\"vocab_size\": " << c.vocab_size << ", \"hidden_size\": 16, \"num_hidden_layers\": 2, "
      << "\"num_attention_heads\": 4, \"intermediate_size\": 24, \"max_position_embeddings\": 12, "
      << "\"model_type\": \"bert\", \"hidden_act\": \"gelu\", \"position_embedding_type\": \"absolute\"}";
  }
  const Tensor ids = ids_tensor({2, 5, 9, 3}, 1);
  NoGradGuard no_grad;
  const Tensor want = model->forward(ids);
  // "bert." prefix, a task head, legacy gamma/beta and position_ids all load.
  nn::StateDict renamed;
  for (const auto& [k, v] : model->state_dict()) {
    std::string key = "bert." + k;
    if (key.size() > 16 && key.compare(key.size() - 16, 16, "LayerNorm.weight") == 0)
      key = key.substr(0, key.size() - 6) + "gamma";
    renamed.emplace_back(key, v);
  }
  renamed.emplace_back("classifier.weight", ones({2, 16}));
  renamed.emplace_back("bert.embeddings.position_ids", arange(Scalar(12)));
  safetensors::save((dir / "model.safetensors").string(), renamed);
  const auto loaded = BertModel::from_pretrained(dir.string());
  EXPECT_FALSE(loaded->is_training());
  EXPECT_LT(max_abs_diff(loaded->forward(ids), want), 1e-7);

  nn::StateDict missing;
  for (const auto& kv : model->state_dict())
    if (kv.first.rfind("encoder.layer.1.output.", 0) != 0) missing.push_back(kv);
  safetensors::save((dir / "model.safetensors").string(), missing);
  try {
    BertModel::from_pretrained(dir.string());
    ADD_FAILURE() << "missing keys were accepted";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.layer.1.output.dense.weight"), std::string::npos) << e.what();
  }
  {
    std::ofstream f(dir / "config.json");
    f << "{not json";
  }
  EXPECT_THROW(BertModel::from_pretrained(dir.string()), ValueError);
  std::filesystem::remove_all(dir);
  EXPECT_THROW(BertModel::from_pretrained(dir.string()), ValueError);
}

// all-MiniLM-L6-v2 sentence embeddings equal the plain-PyTorch fixture.
TEST(BertCpp, MiniLMEmbeddingsMatchFixture) {
  const std::string dir = minilm_dir();
  if (!std::filesystem::exists(dir + "/model.safetensors"))
    GTEST_SKIP() << "all-MiniLM-L6-v2 not fetched into " << dir << " (run scripts/fetch_minilm.sh)";
  std::string path = __FILE__;
  path = path.substr(0, path.rfind("/cpp/")) + "/fixtures/minilm_embeddings.json";
  const json::Value root = json::parse_file(path, "test");
  const auto tok = data::BertTokenizer::from_pretrained(dir);
  const auto model = BertModel::from_pretrained(dir);
  std::vector<std::string> sentences;
  std::vector<float> want;
  for (const json::Value& r : root.find("records")->array) {
    sentences.push_back(r.find("sentence")->str);
    std::vector<int64_t> ids;
    for (const json::Value& v : r.find("input_ids")->array) ids.push_back(v.int_value);
    EXPECT_EQ(tok.encode(sentences.back()), ids) << sentences.back();
    for (const json::Value& v : r.find("embedding")->array) want.push_back(static_cast<float>(v.number));
  }
  const data::BatchEncoding batch = tok(sentences);  // padded: also checks the attention mask
  NoGradGuard no_grad;
  const BertOutput out = (*model)(batch.input_ids, batch.attention_mask, batch.token_type_ids);
  const Tensor emb = l2_normalize(mean_pool(out.last_hidden_state, batch.attention_mask));
  ASSERT_EQ(emb.sizes(), (Shape{static_cast<int64_t>(sentences.size()), 384}));
  EXPECT_EQ(out.pooler_output.sizes(), (Shape{static_cast<int64_t>(sentences.size()), 384}));
  const auto got = values(emb);
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
  std::printf("MiniLM: max |embedding - fixture| = %.3g over %zu sentences\n", worst, sentences.size());
  EXPECT_LT(worst, 1e-4);
}

}  // namespace
}  // namespace bigmodel::models
