// Strided loops for CPU kernels. Tensors of one shape (inputs already expanded to the
// output's shape, so broadcast dims have stride 0) are walked together: dims are
// coalesced, the innermost run is handed to a typed callback, and large problems are
// split across OpenMP threads.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/tensor.h"

namespace bigmodel::cpu {

constexpr int64_t kParallelGrain = 32768;  // elements per thread before OpenMP pays

// Calls body(i) for i in [0, n), across OpenMP threads only when `parallel` is true. A
// plain `omp parallel for if(false)` still enters the OpenMP runtime, which costs about
// as much as a whole small op; this does not.
template <typename F>
void parallel_for(int64_t n, bool parallel, F&& body) {
  if (!parallel || n < 2) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) body(i);
}

// Geometry of N tensors of one shape after merging dims that can be walked as one.
template <int N>
struct LoopGeometry {
  std::vector<int64_t> sizes;                    // outer..inner
  std::vector<std::array<int64_t, N>> strides;   // bytes, per dim, per tensor
  std::array<char*, N> base;
};

template <int N>
LoopGeometry<N> make_geometry(const std::array<const Tensor*, N>& ts) {
  LoopGeometry<N> g;
  const Shape& shape = ts[0]->sizes();
  for (int k = 0; k < N; ++k) g.base[k] = static_cast<char*>(ts[k]->data_ptr());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;  // size-1 dims contribute nothing
    std::array<int64_t, N> st;
    for (int k = 0; k < N; ++k)
      st[k] = ts[k]->strides()[d] * static_cast<int64_t>(ts[k]->itemsize());
    if (!g.sizes.empty()) {  // merge with the previous (outer) dim when contiguous in all
      bool merge = true;
      for (int k = 0; k < N; ++k) merge = merge && g.strides.back()[k] == st[k] * shape[d];
      if (merge) {
        g.sizes.back() *= shape[d];
        g.strides.back() = st;
        continue;
      }
    }
    g.sizes.push_back(shape[d]);
    g.strides.push_back(st);
  }
  if (g.sizes.empty()) {  // a scalar or all-ones shape: one element
    g.sizes.push_back(1);
    g.strides.push_back(std::array<int64_t, N>{});
  }
  return g;
}

// Calls inner(ptrs, byte_strides, n) for every innermost run of the elements
// [begin, end) in row-major order of the merged geometry.
template <int N, typename Inner>
void loop_range(const LoopGeometry<N>& g, int64_t begin, int64_t end, Inner&& inner) {
  const int64_t nd = static_cast<int64_t>(g.sizes.size());
  const int64_t inner_size = g.sizes[nd - 1];
  std::vector<int64_t> idx(nd, 0);
  int64_t rem = begin;
  for (int64_t d = nd - 1; d >= 0; --d) {
    idx[d] = rem % g.sizes[d];
    rem /= g.sizes[d];
  }
  int64_t pos = begin;
  while (pos < end) {
    std::array<char*, N> p = g.base;
    for (int64_t d = 0; d < nd; ++d)
      for (int k = 0; k < N; ++k) p[k] += idx[d] * g.strides[d][k];
    int64_t n = std::min(inner_size - idx[nd - 1], end - pos);
    inner(p, g.strides[nd - 1], n);
    pos += n;
    idx[nd - 1] += n;
    for (int64_t d = nd - 1; d > 0 && idx[d] == g.sizes[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
    }
  }
}

// Walks all elements of tensors `ts` (same shape), in parallel when large.
template <int N, typename Inner>
void for_each_run(const std::array<const Tensor*, N>& ts, Inner&& inner) {
  const int64_t total = ts[0]->numel();
  if (total == 0) return;
  LoopGeometry<N> g = make_geometry<N>(ts);
  if (total < kParallelGrain) {
    loop_range<N>(g, 0, total, inner);
    return;
  }
#pragma omp parallel
  {
#ifdef _OPENMP
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
    int nt = 1, t = 0;
#endif
    int64_t chunk = (total + nt - 1) / nt;
    int64_t b = std::min<int64_t>(total, chunk * t), e = std::min<int64_t>(total, b + chunk);
    if (b < e) loop_range<N>(g, b, e, inner);
  }
}

template <typename Out, typename... Ins, typename F, size_t... I>
inline void run_inner(const std::array<char*, 1 + sizeof...(Ins)>& p,
                      const std::array<int64_t, 1 + sizeof...(Ins)>& s, int64_t n, F& f,
                      std::index_sequence<I...>) {
  bool contiguous = s[0] == static_cast<int64_t>(sizeof(Out)) &&
                    ((s[I + 1] == static_cast<int64_t>(sizeof(Ins))) && ...);
  if (contiguous) {  // the common case: a plain loop the compiler can vectorise
    Out* o = reinterpret_cast<Out*>(p[0]);
    std::tuple<const Ins*...> in{reinterpret_cast<const Ins*>(p[I + 1])...};
    for (int64_t i = 0; i < n; ++i) o[i] = f(std::get<I>(in)[i]...);
  } else {
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<Out*>(p[0] + i * s[0]) =
          f(*reinterpret_cast<const Ins*>(p[I + 1] + i * s[I + 1])...);
  }
}

// out[i] = f(in0[i], in1[i], ...) with one element type per tensor given as template args.
// The callback sees values in each tensor's own type.
template <typename Out, typename... Ins, typename F>
void map_elements(const Tensor& out, const std::array<const Tensor*, sizeof...(Ins)>& ins, F&& f) {
  constexpr int N = 1 + sizeof...(Ins);
  std::array<const Tensor*, N> ts;
  ts[0] = &out;
  for (size_t k = 0; k < sizeof...(Ins); ++k) ts[k + 1] = ins[k];
  for_each_run<N>(ts, [&](const std::array<char*, N>& p, const std::array<int64_t, N>& s, int64_t n) {
    run_inner<Out, Ins...>(p, s, n, f, std::make_index_sequence<sizeof...(Ins)>());
  });
}

}  // namespace bigmodel::cpu
