// The IDX parser and writer (see idx.h). Every size is checked before it is used, with
// overflow-safe arithmetic, because the input is untrusted (tests/fuzz/fuzz_idx.cpp).
#include "core/data/idx.h"

#include <cstdio>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace bigmodel::data {
namespace {

constexpr const char* kOp = "idx";

bool valid_type(uint8_t code) {
  switch (code) {
    case 0x08: case 0x09: case 0x0B: case 0x0C: case 0x0D: case 0x0E: return true;
    default: return false;
  }
}

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string hex(uint64_t v, int width) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%0*llx", width, static_cast<unsigned long long>(v));
  return buf;
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// prod(dims) * elem_size, or false when it does not fit in int64 (a zero dim makes it 0).
bool payload_bytes(const std::vector<int64_t>& dims, size_t elem_size, uint64_t& out) {
  for (int64_t d : dims) {
    if (d == 0) {
      out = 0;
      return true;
    }
  }
  const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t n = elem_size;
  for (int64_t d : dims) {
    if (n > limit / static_cast<uint64_t>(d)) return false;
    n *= static_cast<uint64_t>(d);
  }
  out = n;
  return true;
}

template <class T, class U>
T bit_cast_from(U u) {
  static_assert(sizeof(T) == sizeof(U));
  T t;
  std::memcpy(&t, &u, sizeof t);
  return t;
}

}  // namespace

const char* idx_type_name(IdxType t) {
  switch (t) {
    case IdxType::UInt8: return "uint8";
    case IdxType::Int8: return "int8";
    case IdxType::Int16: return "int16";
    case IdxType::Int32: return "int32";
    case IdxType::Float32: return "float32";
    case IdxType::Float64: return "float64";
  }
  return "unknown";
}

size_t idx_type_size(IdxType t) {
  switch (t) {
    case IdxType::UInt8: case IdxType::Int8: return 1;
    case IdxType::Int16: return 2;
    case IdxType::Int32: case IdxType::Float32: return 4;
    case IdxType::Float64: return 8;
  }
  return 0;
}

int64_t IdxArray::numel() const {
  // A zero anywhere makes the product 0 even when the other dims alone would overflow.
  for (int64_t d : dims)
    if (d == 0) return 0;
  int64_t n = 1;
  for (int64_t d : dims)
    BM_CHECK_VALUE(d > 0 && !__builtin_mul_overflow(n, d, &n), kOp, "dims ", dims_str(dims), " overflow int64");
  return n;
}

double IdxArray::value(int64_t i) const {
  const uint8_t* p = data.data() + static_cast<size_t>(i) * idx_type_size(type);
  switch (type) {
    case IdxType::UInt8: return p[0];
    case IdxType::Int8: return static_cast<int8_t>(p[0]);
    case IdxType::Int16: return static_cast<int16_t>(static_cast<uint16_t>((p[0] << 8) | p[1]));
    case IdxType::Int32: return static_cast<int32_t>(read_be32(p));
    case IdxType::Float32: return bit_cast_from<float>(read_be32(p));
    case IdxType::Float64:
      return bit_cast_from<double>((uint64_t{read_be32(p)} << 32) | uint64_t{read_be32(p + 4)});
  }
  return 0.0;
}

IdxArray parse_idx(const uint8_t* data, size_t size) {
  BM_CHECK_VALUE(data != nullptr || size == 0, kOp, "null input");
  BM_CHECK_VALUE(size >= 4, kOp, "input is too short for an IDX header: ", size, " bytes, need at least 4");
  const uint32_t magic = read_be32(data);
  BM_CHECK_VALUE(data[0] == 0 && data[1] == 0, kOp, "bad magic number ", hex(magic, 8),
                 ": an IDX file starts with two zero bytes");
  BM_CHECK_VALUE(valid_type(data[2]), kOp, "unknown element type code ", hex(data[2], 2), " in magic number ",
                 hex(magic, 8), " (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)");
  const size_t ndim = data[3];
  BM_CHECK_VALUE(ndim > 0, kOp, "magic number ", hex(magic, 8), " declares 0 dimensions");
  const size_t header = 4 + 4 * ndim;
  BM_CHECK_VALUE(size >= header, kOp, "truncated header: ", ndim, " dims need ", header, " header bytes, input has ",
                 size);
  IdxArray out;
  out.type = static_cast<IdxType>(data[2]);
  out.dims.reserve(ndim);
  for (size_t d = 0; d < ndim; ++d) out.dims.push_back(static_cast<int64_t>(read_be32(data + 4 + 4 * d)));
  const size_t elem = idx_type_size(out.type);
  uint64_t need = 0;
  BM_CHECK_VALUE(payload_bytes(out.dims, elem, need), kOp, "dims ", dims_str(out.dims), " of ",
                 idx_type_name(out.type), " overflow: their byte count exceeds 2^63");
  const uint64_t have = size - header;
  BM_CHECK_VALUE(need == have, kOp, "size mismatch: dims ", dims_str(out.dims), " of ", idx_type_name(out.type),
                 " need ", need, " data bytes, input has ", have, need > have ? " (truncated)" : " (trailing bytes)");
  out.data.assign(data + header, data + size);
  return out;
}

std::vector<uint8_t> serialize_idx(const IdxArray& a) {
  BM_CHECK_VALUE(valid_type(static_cast<uint8_t>(a.type)), kOp, "unknown element type ",
                 static_cast<int>(a.type));
  BM_CHECK_VALUE(!a.dims.empty() && a.dims.size() <= 255, kOp, "an IDX array has 1 to 255 dims, got ", a.dims.size());
  for (int64_t d : a.dims)
    BM_CHECK_VALUE(d >= 0 && d <= int64_t{0xFFFFFFFF}, kOp, "dim ", d, " does not fit in 32 bits");
  uint64_t need = 0;
  BM_CHECK_VALUE(payload_bytes(a.dims, idx_type_size(a.type), need) && need == a.data.size(), kOp, "dims ",
                 dims_str(a.dims), " of ", idx_type_name(a.type), " do not match ", a.data.size(), " data bytes");
  std::vector<uint8_t> out{0, 0, static_cast<uint8_t>(a.type), static_cast<uint8_t>(a.dims.size())};
  for (int64_t d : a.dims) {
    const uint32_t v = static_cast<uint32_t>(d);
    out.insert(out.end(), {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
                           static_cast<uint8_t>(v)});
  }
  out.insert(out.end(), a.data.begin(), a.data.end());
  return out;
}

}  // namespace bigmodel::data
