// The IDX format (MNIST, Fashion-MNIST): a validating parser from bytes and its inverse.
// Pure byte handling with no tensor or zlib dependency, so the fuzz build compiles it alone;
// idx_file.h turns arrays into tensors and reads (gzip) files.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bigmodel::data {

// The element type: the third byte of the magic number.
enum class IdxType : uint8_t { UInt8 = 0x08, Int8 = 0x09, Int16 = 0x0B, Int32 = 0x0C, Float32 = 0x0D, Float64 = 0x0E };

const char* idx_type_name(IdxType t);  // "uint8", ...
size_t idx_type_size(IdxType t);       // bytes per element

struct IdxArray {
  IdxType type = IdxType::UInt8;
  std::vector<int64_t> dims;  // at least one; each < 2^32
  std::vector<uint8_t> data;  // the elements as stored: row-major, big-endian

  int64_t numel() const;  // ValueError if the dims are negative or their product overflows
  // Element i (row-major) as a double; no bounds check.
  double value(int64_t i) const;
};

// Parses a whole IDX file held in memory: magic (two zero bytes, a type code, the number
// of dims), the dims as big-endian uint32, then exactly prod(dims) elements. Throws
// ValueError "[idx] ..." for anything else (short header, unknown type, zero dims, a dims
// product that overflows, a payload that is shorter or longer than the dims promise).
IdxArray parse_idx(const uint8_t* data, size_t size);
inline IdxArray parse_idx(const std::vector<uint8_t>& bytes) { return parse_idx(bytes.data(), bytes.size()); }

// The file bytes of `array` (parse_idx(serialize_idx(a)) == a). ValueError if the array is
// inconsistent (no dims, a dim >= 2^32, data size not prod(dims) * element size).
std::vector<uint8_t> serialize_idx(const IdxArray& array);

}  // namespace bigmodel::data
