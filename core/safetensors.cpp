// safetensors reader and writer, with the JSON printer its header needs (the header is
// read by core/json with duplicate keys refused and nesting bounded).
// The reader trusts nothing in the file: every length, offset, shape and dtype is checked
// before memory is touched, and each failure is a ValueError starting "[safetensors] ".
#include "core/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include "core/error.h"
#include "core/json.h"
#include "core/ops/creation.h"
#include "core/ops/view.h"

namespace bigmodel::safetensors {
namespace {

constexpr const char* kOp = "safetensors";
// Deeper nesting is not a safetensors header; a repeated tensor name is ambiguous.
constexpr json::ParseOptions kHeaderJson{/*max_depth=*/64, /*reject_duplicate_keys=*/true};

[[noreturn]] void fail(const std::string& msg) { throw ValueError(std::string("[safetensors] ") + msg); }

// Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF): names and
// metadata become Python str, and the format requires UTF-8 anyway.
bool valid_utf8(const char* data, size_t size) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  size_t i = 0;
  while (i < size) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= size) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const unsigned cc = p[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const bool overlong = (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000);
    if (overlong || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += extra + 1;
  }
  return true;
}

void print_json_string(std::string& out, const std::string& s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (u < 0x20) {
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 0xF];
    } else {
      out += c;  // UTF-8 bytes pass through unchanged
    }
  }
  out += '"';
}

// ------------------------------------------------------------------------------ layout
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void write_u64_le(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

uint64_t json_uint(const json::Value& v, const std::string& what) {
  if (v.kind != json::Value::Number || !v.is_uint) fail(str_cat(what, " must be a non-negative integer"));
  return v.uint_value;
}

Entry parse_entry(const std::string& name, const json::Value& v) {
  if (v.kind != json::Value::Object)
    fail(str_cat("tensor '", name, "': expected an object, got ", json::kind_name(v.kind)));
  const json::Value* dtype = nullptr;
  const json::Value* shape = nullptr;
  const json::Value* offsets = nullptr;
  for (const auto& [key, val] : v.object) {
    if (key == "dtype") dtype = &val;
    else if (key == "shape") shape = &val;
    else if (key == "data_offsets") offsets = &val;
    else fail(str_cat("tensor '", name, "': unexpected field \"", key, "\""));
  }
  if (!dtype || !shape || !offsets)
    fail(str_cat("tensor '", name, "': needs \"dtype\", \"shape\" and \"data_offsets\""));
  if (dtype->kind != json::Value::String) fail(str_cat("tensor '", name, "': dtype must be a string"));
  Entry e;
  e.name = name;
  try {
    e.dtype = dtype_from_code(dtype->str);
  } catch (const ValueError&) {
    fail(str_cat("tensor '", name, "': unsupported dtype '", dtype->str, "'"));
  }
  if (shape->kind != json::Value::Array) fail(str_cat("tensor '", name, "': shape must be an array"));
  // numel * itemsize must fit int64 (shape products are what overflow in hostile files).
  const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  // The product with zero dims counted as 1 must fit as well: it is the tensor's outermost
  // stride span, so [0, 2^40, 2^40] (no bytes at all) is still refused.
  uint64_t nbytes = itemsize(e.dtype), span = nbytes;
  for (const json::Value& d : shape->array) {
    const uint64_t n = json_uint(d, str_cat("tensor '", name, "': shape entries"));
    if (n > limit) fail(str_cat("tensor '", name, "': shape entry ", n, " is too large"));
    const uint64_t m = std::max<uint64_t>(n, 1);
    if (span > limit / m) fail(str_cat("tensor '", name, "': shape product overflows"));
    span *= m;
    nbytes *= n;  // nbytes <= span, so this cannot overflow
    e.shape.push_back(static_cast<int64_t>(n));
  }
  if (offsets->kind != json::Value::Array || offsets->array.size() != 2)
    fail(str_cat("tensor '", name, "': data_offsets must be [begin, end]"));
  e.begin = json_uint(offsets->array[0], str_cat("tensor '", name, "': data_offsets"));
  e.end = json_uint(offsets->array[1], str_cat("tensor '", name, "': data_offsets"));
  if (e.end < e.begin) fail(str_cat("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] are reversed"));
  if (e.end - e.begin != nbytes) {
    fail(str_cat("tensor '", name, "': shape ", shape_str(e.shape), " of ", dtype->str, " needs ", nbytes,
                 " bytes but data_offsets span ", e.end - e.begin));
  }
  return e;
}

}  // namespace

const char* dtype_code(DType t) {
  switch (t) {
    case DType::Bool: return "BOOL";
    case DType::Int32: return "I32";
    case DType::Int64: return "I64";
    case DType::Float16: return "F16";
    case DType::BFloat16: return "BF16";
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
  }
  fail("unknown dtype");
}

DType dtype_from_code(const std::string& code) {
  static const std::pair<const char*, DType> table[] = {
      {"BOOL", DType::Bool},     {"I32", DType::Int32},  {"I64", DType::Int64},   {"F16", DType::Float16},
      {"BF16", DType::BFloat16}, {"F32", DType::Float32}, {"F64", DType::Float64}};
  for (const auto& [name, t] : table)
    if (code == name) return t;
  fail(str_cat("unsupported dtype '", code, "'"));
}

std::string serialize(const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::set<std::string> names;
  std::vector<Tensor> host;
  host.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    BM_CHECK_VALUE(t.defined(), kOp, "tensor '", name, "' is undefined");
    BM_CHECK_VALUE(name != "__metadata__", kOp, "'__metadata__' cannot name a tensor");
    BM_CHECK_VALUE(names.insert(name).second, kOp, "duplicate tensor name '", name, "'");
    host.push_back(contiguous(to(t.detach(), Device())));
  }
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      first = false;
      print_json_string(header, k);
      header += ':';
      print_json_string(header, v);
    }
    header += '}';
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = host[i];
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * itemsize(t.dtype());
    if (header.size() > 1) header += ',';
    print_json_string(header, tensors[i].first);
    header += str_cat(":{\"dtype\":\"", dtype_code(t.dtype()), "\",\"shape\":[");
    for (int64_t d = 0; d < t.dim(); ++d) header += str_cat(d ? "," : "", t.size(d));
    header += str_cat("],\"data_offsets\":[", offset, ",", offset + nbytes, "]}");
    offset += nbytes;
  }
  header += '}';
  while ((8 + header.size()) % 8 != 0) header += ' ';  // aligns the data block, as the reference writer does
  std::string out;
  out.reserve(8 + header.size() + offset);
  write_u64_le(out, header.size());
  out += header;
  for (const Tensor& t : host) {
    const size_t nbytes = static_cast<size_t>(t.numel()) * itemsize(t.dtype());
    if (nbytes) out.append(static_cast<const char*>(t.data_ptr()), nbytes);
  }
  return out;
}

Contents deserialize(const char* data, size_t size) {
  if (size < 8) fail(str_cat("file is too short (", size, " bytes) to hold the 8-byte header length"));
  const uint64_t header_len = read_u64_le(data);
  if (header_len > kMaxHeaderBytes)
    fail(str_cat("header length ", header_len, " exceeds the limit of ", kMaxHeaderBytes, " bytes"));
  if (header_len > size - 8)
    fail(str_cat("header length ", header_len, " runs past the end of the file (", size, " bytes)"));
  const char* header = data + 8;
  if (!valid_utf8(header, static_cast<size_t>(header_len))) fail("header is not valid UTF-8");
  const json::Value root = json::parse(header, static_cast<size_t>(header_len), kOp, "header", kHeaderJson);
  if (root.kind != json::Value::Object)
    fail(str_cat("header must be a JSON object, got ", json::kind_name(root.kind)));

  Contents out;
  std::vector<Entry> entries;
  for (const auto& [key, val] : root.object) {
    if (key == "__metadata__") {
      if (val.kind != json::Value::Object) fail("__metadata__ must be an object of strings");
      for (const auto& [mk, mv] : val.object) {
        if (mv.kind != json::Value::String) fail(str_cat("__metadata__ value for '", mk, "' must be a string"));
        out.metadata[mk] = mv.str;
      }
      continue;
    }
    entries.push_back(parse_entry(key, val));
  }

  // The byte ranges must tile the data block exactly: no overlaps, no gaps, nothing past the end.
  const uint64_t data_size = size - 8 - header_len;
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expect = 0;
  for (const Entry* e : order) {
    if (e->end > data_size)
      fail(str_cat("tensor '", e->name, "': data_offsets [", e->begin, ", ", e->end, "] run past the data block of ",
                   data_size, " bytes"));
    if (e->begin < expect)
      fail(str_cat("tensor '", e->name, "': data_offsets [", e->begin, ", ", e->end, "] overlap another tensor"));
    if (e->begin > expect)
      fail(str_cat("tensor '", e->name, "': gap in the data block before offset ", e->begin));
    expect = e->end;
  }
  if (expect != data_size) fail(str_cat("data block has ", data_size - expect, " trailing bytes no tensor uses"));

  const char* block = header + header_len;
  for (const Entry& e : entries) {
    const char* src = block + e.begin;
    const size_t nbytes = static_cast<size_t>(e.end - e.begin);
    Tensor t;
    if (e.dtype == DType::Bool) {
      // Any nonzero byte is true; a raw copy could leave bool values other than 0/1.
      std::vector<uint8_t> norm(nbytes);
      for (size_t i = 0; i < nbytes; ++i) norm[i] = src[i] != 0;
      t = from_host(norm.data(), e.shape, e.dtype);
    } else if (nbytes == 0) {
      t = empty(e.shape, e.dtype);
    } else {
      t = from_host(src, e.shape, e.dtype);
    }
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

void save(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
          const std::map<std::string, std::string>& metadata) {
  const std::string bytes = serialize(tensors, metadata);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  BM_CHECK_VALUE(f.good(), kOp, "cannot open '", path, "' for writing");
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.flush();
  BM_CHECK_VALUE(f.good(), kOp, "writing '", path, "' failed");
}

Contents load(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  BM_CHECK_VALUE(f.good(), kOp, "cannot open '", path, "' for reading");
  const std::streamoff size = f.tellg();
  BM_CHECK_VALUE(size >= 0, kOp, "cannot read the size of '", path, "'");
  f.seekg(0);
  std::string bytes(static_cast<size_t>(size), '\0');
  f.read(bytes.data(), size);
  BM_CHECK_VALUE(f.good() || f.eof(), kOp, "reading '", path, "' failed");
  return deserialize(bytes);
}

}  // namespace bigmodel::safetensors
