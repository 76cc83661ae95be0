// safetensors files: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw bytes. Reading validates everything
// (sizes, offsets, dtypes) and throws ValueError "[safetensors] ..." on a malformed file.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace bigmodel::safetensors {

// Tensors in file order plus the free-form string metadata ("__metadata__").
struct Contents {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;
};

// Headers larger than this are refused before anything is allocated for them.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;

// The whole file as bytes. Tensors may live on any device (copied to the host).
std::string serialize(const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Parses bytes produced by serialize (or any conforming writer). Tensors come back on the CPU.
Contents deserialize(const char* data, size_t size);
inline Contents deserialize(const std::string& bytes) { return deserialize(bytes.data(), bytes.size()); }

// File forms. save() writes `path` directly (callers wanting atomicity write a temporary
// file and rename it); load() reads the file and validates it as deserialize does.
void save(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
          const std::map<std::string, std::string>& metadata = {});
Contents load(const std::string& path);

// "F32", "BF16", ... and back; dtype_from_code throws ValueError for unknown codes.
const char* dtype_code(DType t);
DType dtype_from_code(const std::string& code);

}  // namespace bigmodel::safetensors
