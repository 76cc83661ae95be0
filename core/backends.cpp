// The per-family backend registry of backends.h: a fixed table of families and accepted
// names, each current choice read lazily from the environment and kept under a mutex.
#include "core/backends.h"

#include <cctype>
#include <cstdlib>
#include <map>
#include <mutex>

#include "core/error.h"

namespace bigmodel {
namespace {

const std::map<std::string, std::vector<std::string>>& table() {
  static const std::map<std::string, std::vector<std::string>> t = {
      {"gemm", {"ours", "cublas"}},
      {"conv", {"ours", "cudnn"}},
      {"attention", {"ours", "cudnn"}},
      {"rnn", {"ours", "cudnn"}},
  };
  return t;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "'" : ", '") + n + "'";
  return s;
}

const std::vector<std::string>& choices_of(const std::string& family) {
  auto it = table().find(family);
  if (it == table().end())
    throw ValueError(str_cat("[backends] unknown kernel family '", family, "' (known: ", joined(backend_families()),
                             ")"));
  return it->second;
}

void check_name(const std::string& family, const std::string& name, const char* source) {
  const auto& names = choices_of(family);
  for (const auto& n : names)
    if (n == name) return;
  throw ValueError(str_cat("[backends] unknown ", family, " backend '", name, "'", source, " (expected ",
                           joined(names), ")"));
}

std::mutex g_mutex;
std::map<std::string, std::string> g_choice;  // families read or set so far

}  // namespace

const std::vector<std::string>& backend_families() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& kv : table()) v.push_back(kv.first);
    return v;
  }();
  return names;
}

const std::vector<std::string>& backend_choices(const std::string& family) { return choices_of(family); }

std::string backend(const std::string& family) {
  const auto& names = choices_of(family);
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_choice.find(family);
  if (it != g_choice.end()) return it->second;
  std::string var = "BIGMODEL_";
  for (char ch : family) var += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const char* env = std::getenv(var.c_str());
  std::string name = (env && *env) ? std::string(env) : names.front();
  check_name(family, name, str_cat(" from ", var).c_str());
  g_choice[family] = name;
  return name;
}

void set_backend(const std::string& family, const std::string& name) {
  check_name(family, name, "");
  std::lock_guard<std::mutex> lock(g_mutex);
  g_choice[family] = name;
}

bool uses_vendor_backend(const std::string& family) { return backend(family) != "ours"; }

}  // namespace bigmodel
