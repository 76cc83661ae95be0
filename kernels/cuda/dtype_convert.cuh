// Device-side storage types and conversions for every DType, matching the CPU's rules
// (kernels/cpu/copy.cpp): half types convert through float with round-to-nearest-even,
// bool is `value != 0`, everything else is a C++ static_cast.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "core/half.h"

namespace bigmodel::cuda {

// DeviceType<T>: the host element type (bigmodel::Half, ...) as the kernel stores it, and
// the "wide" type values are computed in.
template <typename T>
struct ElemTraits {
  using storage = T;
  using wide = T;
  static __device__ __forceinline__ wide load(storage v) { return v; }
  template <typename W>
  static __device__ __forceinline__ storage store(W w) {
    if constexpr (std::is_same_v<T, bool>) return w != W(0);
    else return static_cast<T>(w);
  }
};

template <>
struct ElemTraits<Half> {
  using storage = uint16_t;
  using wide = float;
  static __device__ __forceinline__ float load(uint16_t v) { return __half2float(__ushort_as_half(v)); }
  template <typename W>
  static __device__ __forceinline__ uint16_t store(W w) {
    return __half_as_ushort(__float2half_rn(static_cast<float>(w)));
  }
};

template <>
struct ElemTraits<BFloat16> {
  using storage = uint16_t;
  using wide = float;
  static __device__ __forceinline__ float load(uint16_t v) { return __uint_as_float(static_cast<uint32_t>(v) << 16); }
  template <typename W>
  static __device__ __forceinline__ uint16_t store(W w) {
    // Same bits as BFloat16::from_float on the host: quiet NaN, else round to nearest even.
    const uint32_t x = __float_as_uint(static_cast<float>(w));
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
    const uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>((x + rounding) >> 16);
  }
};

// dst element from src element, as the CPU's convert<To, From>.
template <typename To, typename From>
__device__ __forceinline__ typename ElemTraits<To>::storage convert_elem(typename ElemTraits<From>::storage v) {
  auto w = ElemTraits<From>::load(v);
  if constexpr (std::is_same_v<To, bool>) {
    return w != decltype(w)(0);
  } else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) {
    return ElemTraits<To>::store(static_cast<float>(w));
  } else {
    return static_cast<To>(w);
  }
}

}  // namespace bigmodel::cuda
