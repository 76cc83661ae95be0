// CPU kernels of the indexing family: gather through an index tensor, scatter (assign or
// accumulate), linear offsets for multi-tensor indexing, nonzero, and integer min/max.
// Front ends (core/ops/index.cpp) validate ranges first, so these never throw.
#include <algorithm>
#include <cstring>
#include <limits>

#include "core/ops/index.h"
#include "kernels/cpu/loops.h"

namespace bigmodel::cpu {
namespace {

// Calls f.template operator()<index_t>() for an int32 or int64 index tensor.
template <typename F>
void dispatch_index(DType dt, F&& f) {
  if (dt == DType::Int32) f(int32_t{});
  else f(int64_t{});
}

inline int64_t wrap(int64_t i, int64_t size) { return (size >= 0 && i < 0) ? i + size : i; }

void index_gather_cpu(const Tensor& out, const Tensor& src, const Tensor& index, int64_t stride,
                      int64_t size) {
  BM_DISPATCH_ALL(out.dtype(), "index", [&] {
    dispatch_index(index.dtype(), [&](auto tag) {
      using index_t = decltype(tag);
      const int64_t step = stride * static_cast<int64_t>(sizeof(scalar_t));
      for_each_run<3>({&out, &src, &index}, [&](const std::array<char*, 3>& p,
                                                const std::array<int64_t, 3>& s, int64_t n) {
        if (s[2] == 0) {  // one index for the whole run (rows of embedding, index_select)
          const int64_t k = wrap(*reinterpret_cast<const index_t*>(p[2]), size);
          const char* from = p[1] + k * step;
          if (s[0] == static_cast<int64_t>(sizeof(scalar_t)) && s[1] == s[0]) {
            std::memcpy(p[0], from, n * sizeof(scalar_t));
          } else {
            for (int64_t i = 0; i < n; ++i)
              *reinterpret_cast<scalar_t*>(p[0] + i * s[0]) = *reinterpret_cast<const scalar_t*>(from + i * s[1]);
          }
          return;
        }
        for (int64_t i = 0; i < n; ++i) {
          const int64_t k = wrap(*reinterpret_cast<const index_t*>(p[2] + i * s[2]), size);
          *reinterpret_cast<scalar_t*>(p[0] + i * s[0]) =
              *reinterpret_cast<const scalar_t*>(p[1] + i * s[1] + k * step);
        }
      });
    });
  });
}

template <typename T>
inline void accumulate_into(T* dst, T v) {
  if constexpr (std::is_same_v<T, bool>) *dst = *dst || v;
  else *dst = static_cast<T>(static_cast<compute_t<T>>(*dst) + static_cast<compute_t<T>>(v));
}

void index_scatter_cpu(const Tensor& dst, const Tensor& src, const Tensor& index, int64_t stride,
                       int64_t size, bool accumulate) {
  if (dst.numel() == 0) return;
  BM_DISPATCH_ALL(dst.dtype(), "index_put", [&] {
    dispatch_index(index.dtype(), [&](auto tag) {
      using index_t = decltype(tag);
      const int64_t step = stride * static_cast<int64_t>(sizeof(scalar_t));
      auto inner = [&](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
        if (s[2] == 0) {  // one index for the whole run: a plain strided row update
          char* to = p[0] + wrap(*reinterpret_cast<const index_t*>(p[2]), size) * step;
          for (int64_t i = 0; i < n; ++i) {
            scalar_t* d = reinterpret_cast<scalar_t*>(to + i * s[0]);
            const scalar_t v = *reinterpret_cast<const scalar_t*>(p[1] + i * s[1]);
            if (accumulate) accumulate_into(d, v);
            else *d = v;
          }
          return;
        }
        for (int64_t i = 0; i < n; ++i) {
          const int64_t k = wrap(*reinterpret_cast<const index_t*>(p[2] + i * s[2]), size);
          scalar_t* d = reinterpret_cast<scalar_t*>(p[0] + i * s[0] + k * step);
          const scalar_t v = *reinterpret_cast<const scalar_t*>(p[1] + i * s[1]);
          if (accumulate) accumulate_into(d, v);
          else *d = v;
        }
      };
      if (accumulate) {
        // Repeated indices write the same element: one thread keeps the sums exact.
        LoopGeometry<3> g = make_geometry<3>({&dst, &src, &index});
        loop_range<3>(g, 0, dst.numel(), inner);
      } else {
        for_each_run<3>({&dst, &src, &index}, inner);
      }
    });
  });
}

void index_offset_cpu(const Tensor& offsets, const Tensor& index, int64_t size, int64_t stride) {
  dispatch_index(index.dtype(), [&](auto tag) {
    using index_t = decltype(tag);
    map_elements<int64_t, int64_t, index_t>(offsets, {&offsets, &index}, [=](int64_t acc, index_t i) {
      return acc + wrap(static_cast<int64_t>(i), size) * stride;
    });
  });
}

Tensor nonzero_cpu(const Tensor& self) {
  const int64_t nd = self.dim();
  std::vector<int64_t> coords;  // row-major [n, nd]
  int64_t n = 0;
  BM_DISPATCH_ALL(self.dtype(), "nonzero", [&] {
    const scalar_t* base = static_cast<const scalar_t*>(self.data_ptr());
    const int64_t total = self.numel();
    std::vector<int64_t> pos(nd, 0);
    for (int64_t e = 0; e < total; ++e) {
      int64_t off = 0;
      for (int64_t d = 0; d < nd; ++d) off += pos[d] * self.strides()[d];
      if (static_cast<compute_t<scalar_t>>(base[off]) != compute_t<scalar_t>(0)) {
        coords.insert(coords.end(), pos.begin(), pos.end());
        ++n;
      }
      for (int64_t d = nd - 1; d >= 0; --d) {  // odometer step in row-major order
        if (++pos[d] < self.sizes()[d]) break;
        pos[d] = 0;
      }
    }
  });
  Tensor out = Tensor::empty({n, nd}, DType::Int64, self.device());
  std::copy(coords.begin(), coords.end(), static_cast<int64_t*>(out.data_ptr()));
  return out;
}

void index_minmax_cpu(const Tensor& self, int64_t* min_out, int64_t* max_out) {
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  dispatch_index(self.dtype(), [&](auto tag) {
    using index_t = decltype(tag);
    LoopGeometry<1> g = make_geometry<1>({&self});
    loop_range<1>(g, 0, self.numel(), [&](const std::array<char*, 1>& p, const std::array<int64_t, 1>& s,
                                          int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t v = *reinterpret_cast<const index_t*>(p[0] + i * s[0]);
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    });
  });
  *min_out = lo;
  *max_out = hi;
}

}  // namespace

BM_REGISTER_KERNEL(index_gather_kernel, CPU, &index_gather_cpu);
BM_REGISTER_KERNEL(index_scatter_kernel, CPU, &index_scatter_cpu);
BM_REGISTER_KERNEL(index_offset_kernel, CPU, &index_offset_cpu);
BM_REGISTER_KERNEL(nonzero_kernel, CPU, &nonzero_cpu);
BM_REGISTER_KERNEL(index_minmax_kernel, CPU, &index_minmax_cpu);

}  // namespace bigmodel::cpu
