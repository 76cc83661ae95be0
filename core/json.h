// A small, strict JSON reader (RFC 8259) for configuration files such as a model's
// config.json or tokenizer_config.json, and for safetensors headers. Malformed input raises ValueError
// "[op] <source> is not valid JSON: <what> at line L, column C"; nesting depth is bounded,
// so hostile input cannot exhaust the stack.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bigmodel::json {

struct Value {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool boolean = false;
  double number = 0.0;
  bool is_int = false;  // a number written without fraction or exponent that fits int64
  int64_t int_value = 0;
  bool is_uint = false;  // written without sign, fraction or exponent, and fits uint64
  uint64_t uint_value = 0;
  std::string str;  // UTF-8
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // file order; duplicate keys kept

  // The member named `key` (the last one, as Python's json does with duplicates), or nullptr.
  const Value* find(const std::string& key) const;
  bool is_null() const { return kind == Null; }
};

// "null", "a boolean", "a number", ... for error messages.
const char* kind_name(Value::Kind kind);

constexpr int kMaxDepth = 512;

struct ParseOptions {
  int max_depth = kMaxDepth;           // deeper nesting raises "nesting too deep"
  bool reject_duplicate_keys = false;  // a key repeated in one object raises "duplicate key"
};

// Parses a whole document; `op` and `source` (a file name, say) go into error messages.
Value parse(const char* data, size_t size, const std::string& op, const std::string& source,
            const ParseOptions& options = {});
inline Value parse(const std::string& text, const std::string& op, const std::string& source,
                   const ParseOptions& options = {}) {
  return parse(text.data(), text.size(), op, source, options);
}
// Reads and parses `path`; a missing or unreadable file raises ValueError naming it.
Value parse_file(const std::string& path, const std::string& op);

}  // namespace bigmodel::json
