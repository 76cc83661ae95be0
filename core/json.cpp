// The JSON reader of core/json.h: recursive descent over bytes, positions reported as line
// and column, strings decoded to UTF-8 (\u escapes with surrogate pairs).
#include "core/json.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <unordered_set>

#include "core/error.h"
#include "core/utf8.h"

namespace bigmodel::json {
namespace {

class Parser {
 public:
  Parser(const char* data, size_t size, const std::string& op, const std::string& source, const ParseOptions& options)
      : p_(data), end_(data + size), begin_(data), op_(op), source_(source), options_(options) {}

  Value document() {
    skip_ws();
    Value v = value(0);
    skip_ws();
    if (p_ != end_) error("unexpected trailing characters");
    return v;
  }

 private:
  const char* p_;
  const char* end_;
  const char* begin_;
  const std::string& op_;
  const std::string& source_;
  const ParseOptions& options_;

  [[noreturn]] void error(const std::string& what) const {
    size_t line = 1, column = 1;
    for (const char* q = begin_; q < p_; ++q) {
      if (*q == '\n') ++line, column = 1;
      else ++column;
    }
    throw ValueError(str_cat("[", op_, "] ", source_, " is not valid JSON: ", what, " at line ", line, ", column ",
                             column));
  }
  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool consume(char c) {
    if (p_ != end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  void literal(const char* lit) {
    for (const char* l = lit; *l; ++l, ++p_)
      if (p_ == end_ || *p_ != *l) error(str_cat("invalid literal (expected '", lit, "')"));
  }

  Value value(int depth) {
    if (depth > options_.max_depth) error("nesting too deep");
    if (p_ == end_) error("unexpected end of input");
    Value v;
    switch (*p_) {
      case '{': object(v, depth); break;
      case '[': array(v, depth); break;
      case '"': v.kind = Value::String; v.str = string(); break;
      case 't': literal("true"); v.kind = Value::Bool; v.boolean = true; break;
      case 'f': literal("false"); v.kind = Value::Bool; break;
      case 'n': literal("null"); break;
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) number(v);
        else error(str_cat("unexpected character '", *p_, "'"));
    }
    return v;
  }

  void object(Value& v, int depth) {
    v.kind = Value::Object;
    ++p_;
    skip_ws();
    if (consume('}')) return;
    std::unordered_set<std::string> keys;  // only filled when duplicates are refused
    while (true) {
      skip_ws();
      if (p_ == end_ || *p_ != '"') error("expected a string key");
      std::string key = string();
      if (options_.reject_duplicate_keys && !keys.insert(key).second) error(str_cat("duplicate key \"", key, "\""));
      skip_ws();
      if (!consume(':')) error("expected ':'");
      skip_ws();
      Value member = value(depth + 1);
      v.object.emplace_back(std::move(key), std::move(member));
      skip_ws();
      if (consume('}')) return;
      if (!consume(',')) error("expected ',' or '}'");
    }
  }

  void array(Value& v, int depth) {
    v.kind = Value::Array;
    ++p_;
    skip_ws();
    if (consume(']')) return;
    while (true) {
      skip_ws();
      v.array.push_back(value(depth + 1));
      skip_ws();
      if (consume(']')) return;
      if (!consume(',')) error("expected ',' or ']'");
    }
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  void number(Value& v) {
    const char* start = p_;
    v.kind = Value::Number;
    const bool negative = consume('-');
    if (p_ == end_ || !digit(*p_)) error("invalid number");
    if (*p_ == '0') ++p_;
    else
      while (p_ != end_ && digit(*p_)) ++p_;
    bool integral = true;
    if (consume('.')) {
      integral = false;
      if (p_ == end_ || !digit(*p_)) error("invalid number");
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integral = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !digit(*p_)) error("invalid number");
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    const std::string text(start, p_);
    v.number = std::strtod(text.c_str(), nullptr);  // +-inf for out-of-range magnitudes
    if (integral) {
      errno = 0;
      const long long i = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == 0) {
        v.is_int = true;
        v.int_value = static_cast<int64_t>(i);
      }
      if (!negative) {
        errno = 0;
        const unsigned long long u = std::strtoull(text.c_str(), nullptr, 10);
        if (errno == 0) {
          v.is_uint = true;
          v.uint_value = static_cast<uint64_t>(u);
        }
      }
    }
  }

  unsigned hex4() {
    unsigned cp = 0;
    for (int i = 0; i < 4; ++i) {
      if (p_ == end_) error("truncated \\u escape");
      const char c = *p_++;
      cp <<= 4;
      if (c >= '0' && c <= '9') cp |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') cp |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') cp |= static_cast<unsigned>(c - 'A' + 10);
      else error("invalid \\u escape");
    }
    return cp;
  }

  std::string string() {
    ++p_;  // opening quote
    std::string out;
    while (true) {
      if (p_ == end_) error("unterminated string");
      const char c = *p_++;
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) error("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p_ == end_) error("unterminated escape");
      const char e = *p_++;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!consume('\\') || !consume('u')) error("unpaired surrogate in \\u escape");
            const unsigned lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) error("unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            error("unpaired surrogate in \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default: error(str_cat("invalid escape '\\", e, "'"));
      }
    }
  }
};

}  // namespace

const Value* Value::find(const std::string& key) const {
  if (kind != Object) return nullptr;
  for (auto it = object.rbegin(); it != object.rend(); ++it)
    if (it->first == key) return &it->second;
  return nullptr;
}

const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Null: return "null";
    case Value::Bool: return "a boolean";
    case Value::Number: return "a number";
    case Value::String: return "a string";
    case Value::Array: return "an array";
    case Value::Object: return "an object";
  }
  return "?";
}

Value parse(const char* data, size_t size, const std::string& op, const std::string& source,
            const ParseOptions& options) {
  return Parser(data, size, op, source, options).document();
}

Value parse_file(const std::string& path, const std::string& op) {
  std::ifstream f(path, std::ios::binary);
  BM_CHECK_VALUE(f.good(), op, "cannot open '", path, "' for reading");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  BM_CHECK_VALUE(!f.bad(), op, "reading '", path, "' failed");
  return parse(text, op, path);
}

}  // namespace bigmodel::json
