// IDX arrays as tensors, and IDX files (plain or gzip) from disk.
#pragma once
#include <string>

#include "core/data/idx.h"
#include "core/tensor.h"

namespace bigmodel::data {

// The array as a CPU tensor of shape dims and dtype `dtype` (each element converted, as
// static_cast would; a float that does not fit an integer dtype is a ValueError). uint8
// pixels to float32 is the common case and is fast.
Tensor idx_to_tensor(const IdxArray& array, DType dtype);
// Reads `path` (decompressing gzip data, whatever the file's name) and parses it; errors
// name the file: ValueError "[idx] <path>: ..." for a malformed file.
IdxArray read_idx_file(const std::string& path);

}  // namespace bigmodel::data
