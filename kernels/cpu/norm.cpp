// CPU batch_norm and layer_norm kernels, forward and backward. Batch norm works per channel
// (one task per channel, in parallel), layer norm per row; sums accumulate in double and the
// variance is taken about the mean (two passes) so large offsets keep their precision.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/ops/norm.h"
#include "kernels/cpu/loops.h"

namespace bigmodel::cpu {
namespace {

template <typename S>
const S* ptr_or_null(const Tensor& t) { return t.defined() ? static_cast<const S*>(t.data_ptr()) : nullptr; }
template <typename S>
S* mut_or_null(const Tensor& t) { return t.defined() ? static_cast<S*>(t.data_ptr()) : nullptr; }

// What both backward kernels read and write, as typed pointers (outputs not wanted: null).
template <typename T>
struct BackwardPtrs {
  using S = compute_t<T>;
  const T* x;       // input
  const T* g;       // output gradient
  T* gx;            // input gradient
  S *gw, *gb;       // weight / bias gradients
  const S* w;       // weight
  const S *m, *is;  // saved mean and inverse std
  BackwardPtrs(const Tensor& grad_in, const Tensor& grad_weight, const Tensor& grad_bias, const Tensor& grad_out,
               const Tensor& in, const Tensor& weight, const Tensor& mean, const Tensor& invstd)
      : x(static_cast<const T*>(in.data_ptr())),
        g(static_cast<const T*>(grad_out.data_ptr())),
        gx(mut_or_null<T>(grad_in)),
        gw(mut_or_null<S>(grad_weight)),
        gb(mut_or_null<S>(grad_bias)),
        w(ptr_or_null<S>(weight)),
        m(static_cast<const S*>(mean.data_ptr())),
        is(static_cast<const S*>(invstd.data_ptr())) {}
};

// ---------------------------------------------------------------- batch norm
template <typename T>
void batch_norm_forward_typed(const Tensor& out, const Tensor& in, const Tensor& weight, const Tensor& bias,
                              const Tensor& mean, const Tensor& invstd, const Tensor& var_out, bool training,
                              double eps) {
  using S = compute_t<T>;
  const int64_t N = in.size(0), C = in.size(1), HW = in.numel() / (N * C);
  const T* x = static_cast<const T*>(in.data_ptr());
  T* y = static_cast<T*>(out.data_ptr());
  S* m = static_cast<S*>(mean.data_ptr());
  S* is = static_cast<S*>(invstd.data_ptr());
  S* v = mut_or_null<S>(var_out);
  const S* w = ptr_or_null<S>(weight);
  const S* b = ptr_or_null<S>(bias);
  parallel_for(C, in.numel() > kParallelGrain, [&](int64_t c) {
    if (training) {
      const double count = static_cast<double>(N * HW);
      double sum = 0;
      for (int64_t n = 0; n < N; ++n) {
        const T* p = x + (n * C + c) * HW;
        for (int64_t i = 0; i < HW; ++i) sum += static_cast<double>(static_cast<S>(p[i]));
      }
      const double mu = sum / count;
      double sq = 0;
      for (int64_t n = 0; n < N; ++n) {
        const T* p = x + (n * C + c) * HW;
        for (int64_t i = 0; i < HW; ++i) {
          const double d = static_cast<double>(static_cast<S>(p[i])) - mu;
          sq += d * d;
        }
      }
      const double var = sq / count;
      m[c] = static_cast<S>(mu);
      is[c] = static_cast<S>(1.0 / std::sqrt(var + eps));
      v[c] = static_cast<S>(var);
    }
    // y = (x - mean) * invstd * w + b folded into one multiply-add per element.
    const S scale = is[c] * (w ? w[c] : S(1));
    const S shift = (b ? b[c] : S(0)) - m[c] * scale;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * HW;
      T* q = y + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) q[i] = static_cast<T>(static_cast<S>(p[i]) * scale + shift);
    }
  });
}

template <typename T>
void batch_norm_backward_typed(const Tensor& grad_in, const Tensor& grad_weight, const Tensor& grad_bias,
                               const Tensor& grad_out, const Tensor& in, const Tensor& weight, const Tensor& mean,
                               const Tensor& invstd, bool training) {
  using S = compute_t<T>;
  const int64_t N = in.size(0), C = in.size(1), HW = in.numel() / (N * C);
  const BackwardPtrs<T> a(grad_in, grad_weight, grad_bias, grad_out, in, weight, mean, invstd);
  parallel_for(C, in.numel() > kParallelGrain, [&](int64_t c) {
    const double mu = a.m[c], istd = a.is[c];
    double sum_g = 0, sum_gx = 0;  // sum(g) and sum(g * (x - mean)) over the channel
    for (int64_t n = 0; n < N; ++n) {
      const int64_t base = (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) {
        const double gv = static_cast<S>(a.g[base + i]);
        sum_g += gv;
        sum_gx += gv * (static_cast<double>(static_cast<S>(a.x[base + i])) - mu);
      }
    }
    if (a.gw) a.gw[c] = static_cast<S>(sum_gx * istd);
    if (a.gb) a.gb[c] = static_cast<S>(sum_g);
    if (!a.gx) return;
    const double wc = a.w ? static_cast<double>(a.w[c]) : 1.0;
    // Training: dx = w * istd * (g - mean(g) - xhat * mean(g * xhat)); the batch mean
    // and variance depend on x. Eval: the statistics are constants, dx = w * istd * g.
    const double count = static_cast<double>(N * HW);
    const S gmean = training ? static_cast<S>(sum_g / count) : S(0);
    const S k = training ? static_cast<S>(sum_gx * istd * istd / count) : S(0);
    const S scale = static_cast<S>(wc * istd);
    const S mu_s = static_cast<S>(mu);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t base = (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) {
        const S gv = static_cast<S>(a.g[base + i]), xv = static_cast<S>(a.x[base + i]);
        a.gx[base + i] = static_cast<T>((gv - gmean - (xv - mu_s) * k) * scale);
      }
    }
  });
}

void batch_norm_forward_cpu(const Tensor& out, const Tensor& in, const Tensor& weight, const Tensor& bias,
                            const Tensor& mean, const Tensor& invstd, const Tensor& var_out, bool training,
                            double eps) {
  BM_DISPATCH_FLOATING(in.dtype(), "batch_norm", [&] {
    batch_norm_forward_typed<scalar_t>(out, in, weight, bias, mean, invstd, var_out, training, eps);
  });
}

void batch_norm_backward_cpu(const Tensor& grad_in, const Tensor& grad_weight, const Tensor& grad_bias,
                             const Tensor& grad_out, const Tensor& in, const Tensor& weight, const Tensor& mean,
                             const Tensor& invstd, bool training) {
  BM_DISPATCH_FLOATING(in.dtype(), "batch_norm_backward", [&] {
    batch_norm_backward_typed<scalar_t>(grad_in, grad_weight, grad_bias, grad_out, in, weight, mean, invstd,
                                        training);
  });
}

// ---------------------------------------------------------------- layer norm
template <typename T>
void layer_norm_forward_typed(const Tensor& out, const Tensor& in, const Tensor& weight, const Tensor& bias,
                              const Tensor& mean, const Tensor& invstd, double eps) {
  using S = compute_t<T>;
  const int64_t rows = mean.numel(), cols = in.numel() / rows;
  const T* x = static_cast<const T*>(in.data_ptr());
  T* y = static_cast<T*>(out.data_ptr());
  S* m = static_cast<S*>(mean.data_ptr());
  S* is = static_cast<S*>(invstd.data_ptr());
  const S* w = ptr_or_null<S>(weight);
  const S* b = ptr_or_null<S>(bias);
  parallel_for(rows, in.numel() > kParallelGrain, [&](int64_t r) {
    const T* p = x + r * cols;
    T* q = y + r * cols;
    double sum = 0;
    for (int64_t j = 0; j < cols; ++j) sum += static_cast<double>(static_cast<S>(p[j]));
    const double mu = sum / static_cast<double>(cols);
    double sq = 0;
    for (int64_t j = 0; j < cols; ++j) {
      const double d = static_cast<double>(static_cast<S>(p[j])) - mu;
      sq += d * d;
    }
    const S istd = static_cast<S>(1.0 / std::sqrt(sq / static_cast<double>(cols) + eps));
    const S mu_s = static_cast<S>(mu);
    m[r] = mu_s;
    is[r] = istd;
    for (int64_t j = 0; j < cols; ++j) {
      S v = (static_cast<S>(p[j]) - mu_s) * istd;
      if (w) v *= w[j];
      if (b) v += b[j];
      q[j] = static_cast<T>(v);
    }
  });
}

template <typename T>
void layer_norm_backward_typed(const Tensor& grad_in, const Tensor& grad_weight, const Tensor& grad_bias,
                               const Tensor& grad_out, const Tensor& in, const Tensor& weight, const Tensor& mean,
                               const Tensor& invstd) {
  using S = compute_t<T>;
  const int64_t rows = mean.numel(), cols = in.numel() / rows;
  const BackwardPtrs<T> a(grad_in, grad_weight, grad_bias, grad_out, in, weight, mean, invstd);
  const bool parallel = in.numel() > kParallelGrain;
  if (a.gx) {
    // dx = istd * (gw - mean(gw) - xhat * mean(gw * xhat)) with gw = g * weight.
    parallel_for(rows, parallel, [&](int64_t r) {
      const T* p = a.x + r * cols;
      const T* gr = a.g + r * cols;
      const S mu = a.m[r], istd = a.is[r];
      double sum_a = 0, sum_b = 0;
      for (int64_t j = 0; j < cols; ++j) {
        const double gwj = static_cast<double>(static_cast<S>(gr[j])) * (a.w ? static_cast<double>(a.w[j]) : 1.0);
        sum_a += gwj;
        sum_b += gwj * static_cast<double>((static_cast<S>(p[j]) - mu) * istd);
      }
      const S mean_a = static_cast<S>(sum_a / static_cast<double>(cols));
      const S mean_b = static_cast<S>(sum_b / static_cast<double>(cols));
      T* out = a.gx + r * cols;
      for (int64_t j = 0; j < cols; ++j) {
        const S gwj = static_cast<S>(gr[j]) * (a.w ? a.w[j] : S(1));
        const S xhat = (static_cast<S>(p[j]) - mu) * istd;
        out[j] = static_cast<T>(istd * (gwj - mean_a - xhat * mean_b));
      }
    });
  }
  if (!a.gw && !a.gb) return;
  // Column sums over rows: blocks of columns in parallel, rows walked in order so each
  // block reads contiguous memory.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
  parallel_for(blocks, parallel, [&](int64_t blk) {
    const int64_t j0 = blk * kBlock, j1 = std::min(cols, j0 + kBlock);
    std::vector<double> acc_w(j1 - j0, 0.0), acc_b(j1 - j0, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const S mu = a.m[r], istd = a.is[r];
      for (int64_t j = j0; j < j1; ++j) {
        const double gv = static_cast<S>(a.g[r * cols + j]);
        acc_b[j - j0] += gv;
        acc_w[j - j0] += gv * static_cast<double>((static_cast<S>(a.x[r * cols + j]) - mu) * istd);
      }
    }
    for (int64_t j = j0; j < j1; ++j) {
      if (a.gw) a.gw[j] = static_cast<S>(acc_w[j - j0]);
      if (a.gb) a.gb[j] = static_cast<S>(acc_b[j - j0]);
    }
  });
}

void layer_norm_forward_cpu(const Tensor& out, const Tensor& in, const Tensor& weight, const Tensor& bias,
                            const Tensor& mean, const Tensor& invstd, double eps) {
  BM_DISPATCH_FLOATING(in.dtype(), "layer_norm", [&] {
    layer_norm_forward_typed<scalar_t>(out, in, weight, bias, mean, invstd, eps);
  });
}

void layer_norm_backward_cpu(const Tensor& grad_in, const Tensor& grad_weight, const Tensor& grad_bias,
                             const Tensor& grad_out, const Tensor& in, const Tensor& weight, const Tensor& mean,
                             const Tensor& invstd) {
  BM_DISPATCH_FLOATING(in.dtype(), "layer_norm_backward", [&] {
    layer_norm_backward_typed<scalar_t>(grad_in, grad_weight, grad_bias, grad_out, in, weight, mean, invstd);
  });
}

}  // namespace

BM_REGISTER_KERNEL(batch_norm_forward_kernel, CPU, &batch_norm_forward_cpu);
BM_REGISTER_KERNEL(batch_norm_backward_kernel, CPU, &batch_norm_backward_cpu);
BM_REGISTER_KERNEL(layer_norm_forward_kernel, CPU, &layer_norm_forward_cpu);
BM_REGISTER_KERNEL(layer_norm_backward_kernel, CPU, &layer_norm_backward_cpu);

}  // namespace bigmodel::cpu
