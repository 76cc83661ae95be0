// bigmodel_nn_interop DIR [KIND...]: the C++ side of tests/python/test_cpp_interop.py. For each
// module kind (Linear, Conv2d, BatchNorm2d, LayerNorm, Embedding, LSTM, GRU, MultiheadAttention)
// whose DIR/<Kind>_in.safetensors exists, it builds the C++ module from the file's metadata
// (constructor arguments), loads the "state.*" tensors strictly, runs forward in eval mode on
// the "input.*" tensors and writes DIR/<Kind>_out.safetensors holding "output.*" and the
// "state.*" state_dict of a freshly constructed module (to check names and shapes in Python).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/layers.h"
#include "nn/normalization.h"
#include "nn/rnn.h"

using namespace bigmodel;

namespace {

// The tensors and metadata of one <Kind>_in file, with typed lookups.
struct Case {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> meta;
  nn::StateDict state;

  const std::string& str(const std::string& key) const {
    auto it = meta.find(key);
    if (it == meta.end()) throw ValueError("[nn_interop] missing metadata '" + key + "'");
    return it->second;
  }
  int64_t i(const std::string& key) const { return std::stoll(str(key)); }
  int64_t i(const std::string& key, int64_t fallback) const { return meta.count(key) ? i(key) : fallback; }
  double f(const std::string& key, double fallback) const { return meta.count(key) ? std::stod(str(key)) : fallback; }
  bool b(const std::string& key, bool fallback) const { return meta.count(key) ? str(key) == "1" : fallback; }
  std::vector<int64_t> ints(const std::string& key) const {
    std::vector<int64_t> out;
    std::stringstream ss(str(key));
    for (std::string part; std::getline(ss, part, ',');) out.push_back(std::stoll(part));
    return out;
  }
  DType dtype() const { return safetensors::dtype_from_code(meta.count("dtype") ? str("dtype") : "F32"); }
  // An input tensor, or undefined when the file has none of that name.
  Tensor in(const std::string& name) const {
    auto it = tensors.find("input." + name);
    return it == tensors.end() ? Tensor() : it->second;
  }
};

Case read_case(const std::string& path) {
  safetensors::Contents c = safetensors::load(path);
  Case out;
  out.meta = c.metadata;
  for (auto& [name, t] : c.tensors) {
    if (name.rfind("state.", 0) == 0) out.state.emplace_back(name.substr(6), t);
    out.tensors[name] = t;
  }
  return out;
}

// A constructed module and how to run it on a case's inputs.
struct Built {
  std::shared_ptr<nn::Module> module;
  std::function<nn::StateDict(const Case&)> run;
};

using Factory = std::function<Built(const Case&)>;

nn::StateDict single(const Tensor& y) { return {{"output", y}}; }

const std::vector<std::pair<std::string, Factory>>& factories() {
  static const std::vector<std::pair<std::string, Factory>> table = {
      {"Linear",
       [](const Case& c) {
         auto m = std::make_shared<nn::Linear>(c.i("in_features"), c.i("out_features"), c.b("bias", true), c.dtype());
         return Built{m, [m](const Case& k) { return single((*m)(k.in("x"))); }};
       }},
      {"Conv2d",
       [](const Case& c) {
         auto m = std::make_shared<nn::Conv2d>(c.i("in_channels"), c.i("out_channels"), c.i("kernel_size"),
                                               c.i("stride", 1), c.i("padding", 0), c.i("dilation", 1),
                                               c.i("groups", 1), c.b("bias", true), c.dtype());
         return Built{m, [m](const Case& k) { return single((*m)(k.in("x"))); }};
       }},
      {"BatchNorm2d",
       [](const Case& c) {
         auto m = std::make_shared<nn::BatchNorm2d>(c.i("num_features"), c.f("eps", 1e-5), c.f("momentum", 0.1),
                                                    c.dtype());
         return Built{m, [m](const Case& k) { return single((*m)(k.in("x"))); }};
       }},
      {"LayerNorm",
       [](const Case& c) {
         auto m = std::make_shared<nn::LayerNorm>(c.ints("normalized_shape"), c.f("eps", 1e-5),
                                                  c.b("elementwise_affine", true), c.dtype(), c.b("bias", true));
         return Built{m, [m](const Case& k) { return single((*m)(k.in("x"))); }};
       }},
      {"Embedding",
       [](const Case& c) {
         std::optional<int64_t> pad;
         if (c.meta.count("padding_idx")) pad = c.i("padding_idx");
         auto m = std::make_shared<nn::Embedding>(c.i("num_embeddings"), c.i("embedding_dim"), pad, c.dtype());
         return Built{m, [m](const Case& k) { return single((*m)(k.in("x"))); }};
       }},
      {"LSTM",
       [](const Case& c) {
         auto m = std::make_shared<nn::LSTM>(c.i("input_size"), c.i("hidden_size"), c.i("num_layers", 1),
                                             c.b("bias", true), c.b("batch_first", false), c.f("dropout", 0.0),
                                             c.b("bidirectional", false), c.dtype());
         return Built{m, [m](const Case& k) {
                        auto r = m->forward_with_state(k.in("x"), k.in("h0"), k.in("c0"));
                        return nn::StateDict{{"output", r.output}, {"h_n", r.h_n}, {"c_n", r.c_n}};
                      }};
       }},
      {"GRU",
       [](const Case& c) {
         auto m = std::make_shared<nn::GRU>(c.i("input_size"), c.i("hidden_size"), c.i("num_layers", 1),
                                            c.b("bias", true), c.b("batch_first", false), c.f("dropout", 0.0),
                                            c.b("bidirectional", false), c.dtype());
         return Built{m, [m](const Case& k) {
                        auto r = m->forward_with_state(k.in("x"), k.in("h0"));
                        return nn::StateDict{{"output", r.output}, {"h_n", r.h_n}};
                      }};
       }},
      {"MultiheadAttention",
       [](const Case& c) {
         auto m = std::make_shared<nn::MultiheadAttention>(c.i("embed_dim"), c.i("num_heads"), c.f("dropout", 0.0),
                                                           c.b("bias", true), c.b("batch_first", false), c.dtype());
         return Built{m, [m](const Case& k) {
                        auto [out, w] = m->forward(k.in("query"), k.in("key"), k.in("value"),
                                                   k.in("key_padding_mask"), k.in("attn_mask"));
                        return nn::StateDict{{"output", out}, {"weights", w}};
                      }};
       }},
  };
  return table;
}

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

// Runs one kind; returns false (after printing why) on failure.
bool run_kind(const std::string& dir, const std::string& kind, const Factory& make) {
  const std::string in_path = dir + "/" + kind + "_in.safetensors";
  try {
    Case c = read_case(in_path);
    Built built = make(c);
    built.module->load_state_dict(c.state, /*strict=*/true);
    built.module->eval();
    nn::StateDict out;
    for (auto& [name, t] : built.run(c)) out.emplace_back("output." + name, t);
    Built fresh = make(c);  // its own initialisation: names, shapes and dtypes for Python to load
    for (auto& [name, t] : fresh.module->state_dict()) out.emplace_back("state." + name, t);
    safetensors::save(dir + "/" + kind + "_out.safetensors", out, {{"kind", kind}});
    std::printf("%s: ok\n", kind.c_str());
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: FAILED: %s\n", kind.c_str(), e.what());
    return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [KIND...]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  std::vector<std::string> wanted(argv + 2, argv + argc);
  int ran = 0, failed = 0;
  for (const auto& [kind, make] : factories()) {
    const bool asked = wanted.empty() || std::find(wanted.begin(), wanted.end(), kind) != wanted.end();
    if (!asked) continue;
    if (!file_exists(dir + "/" + kind + "_in.safetensors")) {
      if (!wanted.empty()) {
        std::fprintf(stderr, "%s: FAILED: no %s_in.safetensors in %s\n", kind.c_str(), kind.c_str(), dir.c_str());
        ++failed;
      }
      continue;
    }
    ++ran;
    if (!run_kind(dir, kind, make)) ++failed;
  }
  std::printf("%d run, %d failed\n", ran, failed);
  return failed ? 1 : (ran ? 0 : 3);
}
