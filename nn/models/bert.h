// bigmodel::models::BertModel, BERT's encoder in C++ (mirrors python/bigmodel/models/bert.py):
// BertConfig from a Hugging Face config.json, modules whose parameter names equal HF's
// ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight", ...,
// "pooler.dense.weight") so a model.safetensors from the Hub loads strictly, and the
// sentence-transformers pooling (mean over the attention mask, then L2 normalisation).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "nn/embedding.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "nn/normalization.h"

namespace bigmodel::models {

// The fields of config.json the model uses; BERT-base defaults.
struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";  // gelu (erf), gelu_new / gelu_pytorch_tanh (tanh), relu
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double initializer_range = 0.02;
  double layer_norm_eps = 1e-12;
  int64_t pad_token_id = 0;

  // ValueError "[BertConfig] ..." for inconsistent values (hidden_size not a multiple of
  // num_attention_heads, unknown hidden_act, non-positive sizes).
  void validate() const;
  // Unknown keys are ignored; known keys of the wrong type, non-absolute
  // position_embedding_type and invalid values raise ValueError naming `source`.
  static BertConfig from_json(const json::Value& root, const std::string& source = "config.json");
  static BertConfig from_json_file(const std::string& path);
};

// word + position + token type embeddings, LayerNorm, dropout.
class BertEmbeddings : public nn::Module {
 public:
  explicit BertEmbeddings(const BertConfig& config);
  Tensor forward(const Tensor& input_ids, const Tensor& token_type_ids);
  std::string type_name() const override { return "BertEmbeddings"; }
  std::shared_ptr<nn::Embedding> word_embeddings, position_embeddings, token_type_embeddings;
  std::shared_ptr<nn::LayerNorm> LayerNorm;  // NOLINT: HF's name
  std::shared_ptr<nn::Dropout> dropout;
};

// Multi-head self-attention: query/key/value projections and scaled_dot_product_attention.
class BertSelfAttention : public nn::Module {
 public:
  explicit BertSelfAttention(const BertConfig& config);
  // mask_bias: undefined or additive [B, 1, 1, T].
  Tensor forward(const Tensor& hidden, const Tensor& mask_bias);
  std::string type_name() const override { return "BertSelfAttention"; }
  int64_t num_heads, head_dim;
  double dropout_p;
  std::shared_ptr<nn::Linear> query, key, value;
};

// dense -> dropout -> LayerNorm(x + residual); after attention and after the MLP.
class BertSelfOutput : public nn::Module {
 public:
  BertSelfOutput(const BertConfig& config, int64_t in_features);
  Tensor forward(const Tensor& x, const Tensor& residual);
  std::string type_name() const override { return "BertSelfOutput"; }
  std::shared_ptr<nn::Linear> dense;
  std::shared_ptr<nn::LayerNorm> LayerNorm;  // NOLINT: HF's name
  std::shared_ptr<nn::Dropout> dropout;
};

class BertAttention : public nn::Module {
 public:
  explicit BertAttention(const BertConfig& config);
  Tensor forward(const Tensor& hidden, const Tensor& mask_bias);
  std::string type_name() const override { return "BertAttention"; }
  std::shared_ptr<BertSelfAttention> self;
  std::shared_ptr<BertSelfOutput> output;
};

class BertIntermediate : public nn::Module {
 public:
  explicit BertIntermediate(const BertConfig& config);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BertIntermediate"; }
  std::string act;
  std::shared_ptr<nn::Linear> dense;
};

class BertLayer : public nn::Module {
 public:
  explicit BertLayer(const BertConfig& config);
  Tensor forward(const Tensor& hidden, const Tensor& mask_bias);
  std::string type_name() const override { return "BertLayer"; }
  std::shared_ptr<BertAttention> attention;
  std::shared_ptr<BertIntermediate> intermediate;
  std::shared_ptr<BertSelfOutput> output;
};

// "encoder.layer.<i>": a list of layers named "0", "1", ...
class BertEncoder : public nn::Module {
 public:
  explicit BertEncoder(const BertConfig& config);
  Tensor forward(const Tensor& hidden, const Tensor& mask_bias);
  std::string type_name() const override { return "BertEncoder"; }
  std::vector<std::shared_ptr<BertLayer>> layers;
};

// tanh(dense(hidden state of [CLS])).
class BertPooler : public nn::Module {
 public:
  explicit BertPooler(const BertConfig& config);
  Tensor forward(const Tensor& hidden) override;
  std::string type_name() const override { return "BertPooler"; }
  std::shared_ptr<nn::Linear> dense;
};

struct BertOutput {
  Tensor last_hidden_state;  // [B, T, hidden]
  Tensor pooler_output;      // [B, hidden]; undefined for a model without pooler
};

class BertModel : public nn::Module {
 public:
  explicit BertModel(const BertConfig& config, bool add_pooling_layer = true);
  // BERT's initialisation: N(0, initializer_range) weights, zero biases, unit LayerNorm.
  void reset_parameters();

  // input_ids int64 [B, T]; attention_mask ([B, T], 1 = token, 0 = padding) and
  // token_type_ids ([B, T]) may be undefined (no mask; all type 0). The argument order is
  // Python's and Hugging Face's.
  BertOutput forward(const Tensor& input_ids, const Tensor& attention_mask, const Tensor& token_type_ids = Tensor());
  // nn::Module's one-tensor form: last_hidden_state without mask or types.
  Tensor forward(const Tensor& input_ids) override;
  BertOutput operator()(const Tensor& input_ids, const Tensor& attention_mask,
                        const Tensor& token_type_ids = Tensor()) {
    return forward(input_ids, attention_mask, token_type_ids);
  }
  std::string type_name() const override { return "BertModel"; }

  // directory/config.json + directory/model.safetensors (Hugging Face layout), in eval mode.
  // Beyond exact key matches: a "bert." prefix is dropped (task-head keys outside it are
  // ignored), "embeddings.position_ids" is dropped, LayerNorm gamma/beta read as weight/bias,
  // and a file without "pooler.*" gives a model without pooler. Anything else missing or
  // unexpected raises ValueError listing the keys; nothing is half-loaded.
  static std::shared_ptr<BertModel> from_pretrained(const std::string& directory);

  BertConfig config;
  std::shared_ptr<BertEmbeddings> embeddings;
  std::shared_ptr<BertEncoder> encoder;
  std::shared_ptr<BertPooler> pooler;  // null without pooling layer
};

// [B, T] mask of 1 / 0 -> additive [B, 1, 1, T] bias of `dtype` (0 / large negative; not
// -inf, so a fully padded row gives a uniform softmax instead of NaN).
Tensor attention_mask_bias(const Tensor& attention_mask, DType dtype);
// Average of the token vectors where attention_mask is 1: [B, T, H] -> [B, H].
Tensor mean_pool(const Tensor& last_hidden_state, const Tensor& attention_mask);
// x / max(||x||, eps) over the last dim.
Tensor l2_normalize(const Tensor& x, double eps = 1e-12);

}  // namespace bigmodel::models
