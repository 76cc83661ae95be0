// BertConfig, the BERT modules and BertModel::from_pretrained (see bert.h), written with the
// ops of core/ops so autograd and every device work as for any other layer.
#include "nn/models/bert.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/attention.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"
#include "core/safetensors.h"
#include "core/shape.h"

namespace bigmodel::models {
namespace {

constexpr const char* kModel = "BertModel";

bool known_activation(const std::string& act) {
  return act == "gelu" || act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "relu";
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string join(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) out += str_cat(i ? ", '" : "'", names[i], "'");
  return out + "]";
}

}  // namespace

// ------------------------------------------------------------------------------ config
void BertConfig::validate() const {
  const char* op = "BertConfig";
  BM_CHECK_VALUE(vocab_size > 0 && hidden_size > 0 && num_hidden_layers >= 0 && num_attention_heads > 0 &&
                     intermediate_size > 0 && max_position_embeddings > 0 && type_vocab_size > 0,
                 op, "sizes must be positive (vocab_size ", vocab_size, ", hidden_size ", hidden_size,
                 ", num_hidden_layers ", num_hidden_layers, ", num_attention_heads ", num_attention_heads,
                 ", intermediate_size ", intermediate_size, ", max_position_embeddings ", max_position_embeddings,
                 ", type_vocab_size ", type_vocab_size, ")");
  BM_CHECK_VALUE(hidden_size % num_attention_heads == 0, op, "hidden_size ", hidden_size,
                 " is not a multiple of num_attention_heads ", num_attention_heads);
  BM_CHECK_VALUE(known_activation(hidden_act), op, "hidden_act '", hidden_act,
                 "' is not one of gelu, gelu_new, gelu_pytorch_tanh, relu");
  BM_CHECK_VALUE(layer_norm_eps >= 0, op, "layer_norm_eps must be >= 0, got ", layer_norm_eps);
  BM_CHECK_VALUE(hidden_dropout_prob >= 0 && hidden_dropout_prob <= 1 && attention_probs_dropout_prob >= 0 &&
                     attention_probs_dropout_prob <= 1,
                 op, "dropout probabilities must lie in [0, 1]");
}

BertConfig BertConfig::from_json(const json::Value& root, const std::string& source) {
  const char* op = "BertConfig";
  BM_CHECK_VALUE(root.kind == json::Value::Object, op, source, " must hold a JSON object, got ",
                 json::kind_name(root.kind));
  BertConfig c;
  auto integer = [&](const char* key, int64_t& out) {
    if (const json::Value* v = root.find(key)) {
      BM_CHECK_VALUE(v->kind == json::Value::Number && v->is_int, op, source, ": ", key, " must be an integer");
      out = v->int_value;
    }
  };
  auto real = [&](const char* key, double& out) {
    if (const json::Value* v = root.find(key)) {
      BM_CHECK_VALUE(v->kind == json::Value::Number, op, source, ": ", key, " must be a number");
      out = v->number;
    }
  };
  integer("vocab_size", c.vocab_size);
  integer("hidden_size", c.hidden_size);
  integer("num_hidden_layers", c.num_hidden_layers);
  integer("num_attention_heads", c.num_attention_heads);
  integer("intermediate_size", c.intermediate_size);
  integer("max_position_embeddings", c.max_position_embeddings);
  integer("type_vocab_size", c.type_vocab_size);
  real("hidden_dropout_prob", c.hidden_dropout_prob);
  real("attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  real("initializer_range", c.initializer_range);
  real("layer_norm_eps", c.layer_norm_eps);
  if (const json::Value* v = root.find("pad_token_id"); v && !v->is_null()) integer("pad_token_id", c.pad_token_id);
  if (const json::Value* v = root.find("hidden_act")) {
    BM_CHECK_VALUE(v->kind == json::Value::String, op, source, ": hidden_act must be a string");
    c.hidden_act = v->str;
  }
  if (const json::Value* v = root.find("position_embedding_type")) {
    BM_CHECK_VALUE(v->kind == json::Value::String && v->str == "absolute", op, source,
                   ": only absolute position embeddings are supported");
  }
  c.validate();
  return c;
}

BertConfig BertConfig::from_json_file(const std::string& path) {
  std::error_code ec;
  BM_CHECK_VALUE(std::filesystem::is_regular_file(path, ec), "BertConfig", "config file not found: ", path);
  return from_json(json::parse_file(path, "BertConfig"), path);
}

// ------------------------------------------------------------------------------ modules
BertEmbeddings::BertEmbeddings(const BertConfig& c) {
  word_embeddings = register_module("word_embeddings", std::make_shared<nn::Embedding>(c.vocab_size, c.hidden_size));
  position_embeddings = register_module("position_embeddings",
                                        std::make_shared<nn::Embedding>(c.max_position_embeddings, c.hidden_size));
  token_type_embeddings =
      register_module("token_type_embeddings", std::make_shared<nn::Embedding>(c.type_vocab_size, c.hidden_size));
  LayerNorm = register_module("LayerNorm", std::make_shared<nn::LayerNorm>(c.hidden_size, c.layer_norm_eps));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.hidden_dropout_prob));
}

Tensor BertEmbeddings::forward(const Tensor& input_ids, const Tensor& token_type_ids) {
  const int64_t length = input_ids.size(1);
  BM_CHECK_VALUE(length <= position_embeddings->num_embeddings, kModel, "sequence length ", length,
                 " exceeds max_position_embeddings ", position_embeddings->num_embeddings);
  const Tensor positions = arange(Scalar(length), DType::Int64, input_ids.device());
  Tensor x = add(add((*word_embeddings)(input_ids), (*position_embeddings)(positions)),
                 (*token_type_embeddings)(token_type_ids));
  return (*dropout)((*LayerNorm)(x));
}

BertSelfAttention::BertSelfAttention(const BertConfig& c)
    : num_heads(c.num_attention_heads),
      head_dim(c.hidden_size / c.num_attention_heads),
      dropout_p(c.attention_probs_dropout_prob) {
  query = register_module("query", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
  key = register_module("key", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
  value = register_module("value", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
}

Tensor BertSelfAttention::forward(const Tensor& hidden, const Tensor& mask_bias) {
  const int64_t b = hidden.size(0), t = hidden.size(1);
  auto heads = [&](const Tensor& x) { return permute(reshape(x, {b, t, num_heads, head_dim}), {0, 2, 1, 3}); };
  const Tensor ctx = scaled_dot_product_attention(heads((*query)(hidden)), heads((*key)(hidden)),
                                                  heads((*value)(hidden)), mask_bias,
                                                  is_training() ? dropout_p : 0.0);
  return reshape(permute(ctx, {0, 2, 1, 3}), {b, t, num_heads * head_dim});
}

BertSelfOutput::BertSelfOutput(const BertConfig& c, int64_t in_features) {
  dense = register_module("dense", std::make_shared<nn::Linear>(in_features, c.hidden_size));
  LayerNorm = register_module("LayerNorm", std::make_shared<nn::LayerNorm>(c.hidden_size, c.layer_norm_eps));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.hidden_dropout_prob));
}

Tensor BertSelfOutput::forward(const Tensor& x, const Tensor& residual) {
  return (*LayerNorm)(add((*dropout)((*dense)(x)), residual));
}

BertAttention::BertAttention(const BertConfig& c) {
  self = register_module("self", std::make_shared<BertSelfAttention>(c));
  output = register_module("output", std::make_shared<BertSelfOutput>(c, c.hidden_size));
}

Tensor BertAttention::forward(const Tensor& hidden, const Tensor& mask_bias) {
  return output->forward(self->forward(hidden, mask_bias), hidden);
}

BertIntermediate::BertIntermediate(const BertConfig& c) : act(c.hidden_act) {
  dense = register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, c.intermediate_size));
}

Tensor BertIntermediate::forward(const Tensor& x) {
  // One GEMM with the activation in its epilogue. "gelu" is the exact (erf) GELU BERT was
  // trained with; gelu_new / gelu_pytorch_tanh are the tanh form.
  const char* fused = act == "relu" ? "relu" : act == "gelu" ? "gelu" : "gelu_tanh";
  return linear_act(x, dense->weight, dense->bias, fused);
}

BertLayer::BertLayer(const BertConfig& c) {
  attention = register_module("attention", std::make_shared<BertAttention>(c));
  intermediate = register_module("intermediate", std::make_shared<BertIntermediate>(c));
  output = register_module("output", std::make_shared<BertSelfOutput>(c, c.intermediate_size));
}

Tensor BertLayer::forward(const Tensor& hidden, const Tensor& mask_bias) {
  const Tensor x = attention->forward(hidden, mask_bias);
  return output->forward(intermediate->forward(x), x);
}

BertEncoder::BertEncoder(const BertConfig& c) {
  // An nn::ModuleList names its entries "0", "1", ...: encoder.layer.<i>.<...> as in HF.
  auto list = register_module("layer", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layers.push_back(std::make_shared<BertLayer>(c));
    list->push_back(layers.back());
  }
}

Tensor BertEncoder::forward(const Tensor& hidden, const Tensor& mask_bias) {
  Tensor x = hidden;
  for (const auto& layer : layers) x = layer->forward(x, mask_bias);
  return x;
}

BertPooler::BertPooler(const BertConfig& c) {
  dense = register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
}

Tensor BertPooler::forward(const Tensor& hidden) { return tanh((*dense)(select(hidden, 1, 0))); }

// ------------------------------------------------------------------------------ BertModel
BertModel::BertModel(const BertConfig& c, bool add_pooling_layer) : config(c) {
  config.validate();
  embeddings = register_module("embeddings", std::make_shared<BertEmbeddings>(config));
  encoder = register_module("encoder", std::make_shared<BertEncoder>(config));
  if (add_pooling_layer) pooler = register_module("pooler", std::make_shared<BertPooler>(config));
  reset_parameters();
}

void BertModel::reset_parameters() {
  NoGradGuard no_grad;
  for (auto& [name, p] : named_parameters()) {
    Tensor t = p;
    if (name.find("LayerNorm.") != std::string::npos) {
      fill_(t, Scalar(ends_with(name, "weight") ? 1.0 : 0.0));
    } else if (ends_with(name, "bias")) {
      zero_(t);
    } else {
      normal_(t, 0.0, config.initializer_range);
    }
  }
}

BertOutput BertModel::forward(const Tensor& input_ids, const Tensor& attention_mask, const Tensor& token_type_ids) {
  BM_CHECK_VALUE(input_ids.defined() && input_ids.dim() == 2 &&
                     (input_ids.dtype() == DType::Int64 || input_ids.dtype() == DType::Int32),
                 kModel, "input_ids must be an integer tensor [batch, seq], got ",
                 input_ids.defined() ? str_cat(dtype_name(input_ids.dtype()), " tensor of shape ",
                                               shape_str(input_ids.sizes()))
                                     : std::string("an undefined tensor"));
  const Shape& shape = input_ids.sizes();
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"attention_mask", &attention_mask},
                                {"token_type_ids", &token_type_ids}}) {
    BM_CHECK_VALUE(!t->defined() || t->sizes() == shape, kModel, name, " has shape ", shape_str(t->sizes()),
                   ", input_ids has ", shape_str(shape));
  }
  const Tensor types = token_type_ids.defined() ? token_type_ids : zeros(shape, DType::Int64, input_ids.device());
  Tensor hidden = embeddings->forward(input_ids, types);
  const Tensor bias = attention_mask.defined() ? attention_mask_bias(attention_mask, hidden.dtype()) : Tensor();
  hidden = encoder->forward(hidden, bias);
  BertOutput out;
  out.last_hidden_state = hidden;
  if (pooler) out.pooler_output = pooler->forward(hidden);
  return out;
}

Tensor BertModel::forward(const Tensor& input_ids) { return forward(input_ids, Tensor(), Tensor()).last_hidden_state; }

std::shared_ptr<BertModel> BertModel::from_pretrained(const std::string& directory) {
  const char* op = "BertModel.from_pretrained";
  std::error_code ec;
  BM_CHECK_VALUE(std::filesystem::is_directory(directory, ec), op, "not a directory: ", directory);
  const std::string dir = directory.back() == '/' ? directory : directory + "/";
  const BertConfig config = BertConfig::from_json_file(dir + "config.json");
  const std::string weights = dir + "model.safetensors";
  BM_CHECK_VALUE(std::filesystem::is_regular_file(weights, ec), op, "weights file not found: ", weights);
  safetensors::Contents contents;
  try {
    contents = safetensors::load(weights);
  } catch (const ValueError& e) {
    throw ValueError(str_cat("[", op, "] cannot read ", weights, ": ", e.what()));
  }
  // Key normalisation (see bert.h).
  const bool prefixed = std::any_of(contents.tensors.begin(), contents.tensors.end(),
                                    [](const auto& kv) { return starts_with(kv.first, "bert."); });
  nn::StateDict state;
  bool has_pooler = false;
  for (auto& [name, tensor] : contents.tensors) {
    std::string key = name;
    if (prefixed) {
      if (!starts_with(key, "bert.")) continue;  // a task head
      key = key.substr(5);
    }
    if (key == "embeddings.position_ids") continue;
    if (ends_with(key, "LayerNorm.gamma")) key = key.substr(0, key.size() - 5) + "weight";
    else if (ends_with(key, "LayerNorm.beta")) key = key.substr(0, key.size() - 4) + "bias";
    has_pooler = has_pooler || starts_with(key, "pooler.");
    state.emplace_back(std::move(key), tensor);
  }
  auto model = std::make_shared<BertModel>(config, has_pooler);
  std::vector<std::string> missing, unexpected;
  const nn::StateDict own = model->state_dict();
  auto in = [](const nn::StateDict& d, const std::string& k) {
    return std::any_of(d.begin(), d.end(), [&](const auto& kv) { return kv.first == k; });
  };
  for (const auto& kv : own)
    if (!in(state, kv.first)) missing.push_back(kv.first);
  for (const auto& kv : state)
    if (!in(own, kv.first)) unexpected.push_back(kv.first);
  BM_CHECK_VALUE(missing.empty() && unexpected.empty(), op, weights, " does not match BertModel(",
                 config.num_hidden_layers, " layers): missing keys ", join(missing), "; unexpected keys ",
                 join(unexpected));
  model->load_state_dict(state, /*strict=*/true);
  model->eval();
  return model;
}

// ------------------------------------------------------------------------------ pooling
Tensor attention_mask_bias(const Tensor& attention_mask, DType dtype) {
  const double big = dtype == DType::Float16 ? 6.0e4 : 1.0e9;
  const Tensor keep = to(attention_mask, dtype);
  return unsqueeze(unsqueeze(mul(sub(keep, Scalar(1.0)), Scalar(big)), 1), 1);
}

Tensor mean_pool(const Tensor& last_hidden_state, const Tensor& attention_mask) {
  BM_CHECK_SHAPE(last_hidden_state.dim() == 3 && attention_mask.dim() == 2 &&
                     attention_mask.size(0) == last_hidden_state.size(0) &&
                     attention_mask.size(1) == last_hidden_state.size(1),
                 "mean_pool", "expected hidden [B, T, H] and mask [B, T], got ", shape_str(last_hidden_state.sizes()),
                 " and ", shape_str(attention_mask.sizes()));
  const Tensor mask = unsqueeze(to(attention_mask, last_hidden_state.dtype()), -1);
  const Tensor total = sum(mul(last_hidden_state, mask), {1});
  const Tensor count = clamp_min(sum(mask, {1}), Scalar(1e-9));
  return div(total, count);
}

Tensor l2_normalize(const Tensor& x, double eps) {
  return div(x, clamp_min(norm(x, 2.0, {-1}, /*keepdim=*/true), Scalar(eps)));
}

}  // namespace bigmodel::models
