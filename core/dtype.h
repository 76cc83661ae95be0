// DType: the element types a tensor can hold, their sizes and names, and PyTorch's
// type-promotion rules (bool < integer < floating; dimensioned tensors outrank 0-d ones).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/half.h"

namespace bigmodel {

enum class DType : uint8_t { Bool, Int32, Int64, Float16, BFloat16, Float32, Float64 };
constexpr int kNumDTypes = 7;

size_t itemsize(DType t);
const char* dtype_name(DType t);  // "float32", ...
DType dtype_from_name(const std::string& name);  // throws ValueError for unknown names
inline bool is_floating(DType t) {
  return t == DType::Float16 || t == DType::BFloat16 || t == DType::Float32 || t == DType::Float64;
}
inline bool is_integral(DType t, bool include_bool = false) {
  return t == DType::Int32 || t == DType::Int64 || (include_bool && t == DType::Bool);
}
// Category used by promotion: 0 bool, 1 integer, 2 floating.
inline int dtype_category(DType t) { return t == DType::Bool ? 0 : (is_floating(t) ? 2 : 1); }

// The smallest type both can be represented in (float16 with bfloat16 gives float32).
DType promote_types(DType a, DType b);

constexpr DType kDefaultFloat = DType::Float32;
constexpr DType kDefaultInt = DType::Int64;

// Compile-time mapping between C++ element types and DType.
template <typename T> struct DTypeOf;
template <> struct DTypeOf<bool> { static constexpr DType value = DType::Bool; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct DTypeOf<Half> { static constexpr DType value = DType::Float16; };
template <> struct DTypeOf<BFloat16> { static constexpr DType value = DType::BFloat16; };
template <> struct DTypeOf<float> { static constexpr DType value = DType::Float32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::Float64; };

// Type in which kernels compute for an element type: half types compute in float.
template <typename T> struct ComputeType { using type = T; };
template <> struct ComputeType<Half> { using type = float; };
template <> struct ComputeType<BFloat16> { using type = float; };
template <typename T> using compute_t = typename ComputeType<T>::type;

}  // namespace bigmodel
