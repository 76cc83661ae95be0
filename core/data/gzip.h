// Whole-file reading and gzip decompression for the data layer (zlib). Without zlib at build
// time (BIGMODEL_WITH_ZLIB unset) gunzip throws an error naming zlib1g-dev.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bigmodel::data {

// Decompressed sizes above this are refused (a gzip bomb cannot exhaust memory).
constexpr uint64_t kMaxGunzipBytes = 4ull << 30;

// The whole file; Error "[op] cannot open <path>: <reason>" when it cannot be read.
std::vector<uint8_t> read_file(const std::string& path, const std::string& op = "data");
// Whether the bytes start with the gzip magic (1f 8b).
bool is_gzip(const uint8_t* data, size_t size);
// Decompresses gzip data (concatenated members too). `source` names the input in errors:
// ValueError "[gzip] corrupt gzip data in <source>: ..." or "... is truncated".
std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& source,
                            uint64_t max_bytes = kMaxGunzipBytes);
// A file's content, decompressed when it is gzip data (whatever its name).
std::vector<uint8_t> read_maybe_gzip(const std::string& path, const std::string& op = "data");

}  // namespace bigmodel::data
