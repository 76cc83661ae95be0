// cuda tier (C++): the CUDA softmax, layer/batch norm, NLL, pointwise-loss and fused
// cross-entropy kernels against the CPU kernels of the same stubs, called directly (so a
// failure points at the kernel, not at the ops around it), on odd row lengths, unaligned
// rows, every floating dtype; outputs are poisoned with NaN first. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "core/autograd.h"
#include "core/cuda_info.h"
#include "core/ops/creation.h"
#include "core/ops/loss.h"
#include "core/ops/norm.h"
#include "core/ops/softmax.h"
#include "core/ops/view.h"
#include "tests/cpp/cuda_test_skip.h"

using namespace bigmodel;

namespace {

const Device kCpu;
const Device kGpu(DeviceType::CUDA, 0);
const DType kFloats[] = {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16};

Tensor random_cpu(const Shape& shape, DType dtype, uint32_t seed, double mean = 0.5,
                  double stddev = 3.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(mean, stddev);
  Tensor t = Tensor::empty(shape, DType::Float64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = nd(gen);
  return to(t, dtype);
}

Tensor uniform_cpu(const Shape& shape, DType dtype, uint32_t seed, double lo, double hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> ud(lo, hi);
  Tensor t = Tensor::empty(shape, DType::Float64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = ud(gen);
  return to(t, dtype);
}

Tensor targets_cpu(int64_t count, int64_t classes, uint32_t seed, int64_t ignore_index = -100,
                   int every = 0) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int64_t> ud(0, classes - 1);
  Tensor t = Tensor::empty({count}, DType::Int64);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < count; ++i) p[i] = every > 0 && i % every == 1 ? ignore_index : ud(gen);
  return t;
}

Tensor gpu(const Tensor& t) { return to(t, kGpu); }

// A GPU tensor of `shape` filled with NaN: every element the kernel should write but does
// not shows up in the comparison.
Tensor poisoned(const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype, kGpu);
  fill_(t, Scalar(std::nan("")));
  return t;
}

// A contiguous GPU copy of `t` whose data starts one element past a 16-byte boundary:
// the kernels' unaligned (scalar) paths.
Tensor gpu_unaligned(const Tensor& t) {
  Tensor big = Tensor::empty({t.numel() + 1}, t.dtype(), kGpu);
  Tensor view = reshape(narrow(big, 0, 1, t.numel()), t.sizes());
  copy_(view, gpu(t));
  return view;
}

struct Tol {
  double atol, rtol;
};
Tol tol_for(DType dt) {
  switch (dt) {
    case DType::Float64:
      return {1e-10, 1e-9};
    case DType::Float32:
      return {2e-6, 2e-5};
    case DType::Float16:
      return {2e-3, 3e-3};
    default:
      return {2e-2, 2e-2};  // bfloat16: one ulp is 2^-8 relative
  }
}

// |gpu - cpu| <= atol + rtol * |cpu| elementwise (NaN never passes), compared in float64.
void expect_close(const Tensor& gpu_t, const Tensor& cpu_t, Tol tol, const std::string& what) {
  ASSERT_TRUE(gpu_t.device().is_cuda()) << what;
  ASSERT_EQ(gpu_t.sizes(), cpu_t.sizes()) << what;
  Tensor a = contiguous(to(gpu_t, kCpu, DType::Float64)), e = contiguous(to(cpu_t, DType::Float64));
  const double* pa = a.data<double>();
  const double* pe = e.data<double>();
  int64_t bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const bool ok = std::fabs(pa[i] - pe[i]) <= tol.atol + tol.rtol * std::fabs(pe[i]);
    if (!ok && bad++ < 3)
      ADD_FAILURE() << what << ": element " << i << " gpu " << pa[i] << " cpu " << pe[i];
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << a.numel() << " elements differ";
}

std::string label(const char* op, DType dt, int64_t a, int64_t b, int64_t c = -1) {
  return str_cat(op, " ", dtype_name(dt), " [", a, ", ", b,
                 c >= 0 ? str_cat(", ", c) : std::string(), "]");
}

}  // namespace

// ---------------------------------------------------------------- softmax
TEST(CudaSoftmax, RowsMatchCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 1;
  for (DType dt : kFloats) {
    for (int64_t n : {1, 7, 33, 1000, 1023, 1024, 1025, 4096, 50257}) {
      const int64_t rows = n >= 4096 ? 3 : 9;
      Tensor x = random_cpu({rows, n}, dt, seed++);
      for (bool log : {false, true}) {
        Tensor expect = Tensor::empty({rows, n}, dt);
        softmax_kernel.get(kCpu)(expect, x, rows, n, 1, log);
        Tensor out = poisoned({rows, n}, dt);
        softmax_kernel.get(kGpu)(out, gpu(x), rows, n, 1, log);
        expect_close(out, expect, tol_for(dt), label(log ? "log_softmax" : "softmax", dt, rows, n));
        Tensor out2 = poisoned({rows, n}, dt);  // unaligned rows: the scalar path
        softmax_kernel.get(kGpu)(out2, gpu_unaligned(x), rows, n, 1, log);
        expect_close(out2, expect, tol_for(dt),
                     label(log ? "log_softmax unaligned" : "softmax unaligned", dt, rows, n));
      }
    }
  }
}

TEST(CudaSoftmax, InnerDimMatchesCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 100;
  const int64_t shapes[][3] = {{3, 7, 5},     {2, 1000, 3}, {1, 33, 64}, {4, 1, 9},
                               {1, 1023, 17}, {5, 40, 33},  {1, 4096, 2}};
  for (DType dt : kFloats) {
    for (const auto& s : shapes) {
      Tensor x = random_cpu({s[0], s[1], s[2]}, dt, seed++);
      for (bool log : {false, true}) {
        Tensor expect = Tensor::empty(x.sizes(), dt);
        softmax_kernel.get(kCpu)(expect, x, s[0], s[1], s[2], log);
        Tensor out = poisoned(x.sizes(), dt);
        softmax_kernel.get(kGpu)(out, gpu(x), s[0], s[1], s[2], log);
        expect_close(out, expect, tol_for(dt),
                     label(log ? "log_softmax inner" : "softmax inner", dt, s[0], s[1], s[2]));
      }
    }
  }
}

TEST(CudaSoftmax, NegativeInfinityAndLargeValues) {
  SKIP_WITHOUT_GPU();
  // -inf entries (masking) contribute 0; large logits must not overflow.
  Tensor x = random_cpu({4, 37}, DType::Float32, 7, 0.0, 30.0);
  float* p = x.data<float>();
  for (int64_t i = 0; i < x.numel(); i += 3) p[i] = -INFINITY;
  for (bool log : {false, true}) {
    Tensor expect = Tensor::empty(x.sizes(), DType::Float32);
    softmax_kernel.get(kCpu)(expect, x, 4, 37, 1, log);
    Tensor out = poisoned(x.sizes(), DType::Float32);
    softmax_kernel.get(kGpu)(out, gpu(x), 4, 37, 1, log);
    Tensor a = to(out, kCpu);
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (i % 3 == 0) {
        EXPECT_EQ(a.data<float>()[i], log ? -INFINITY : 0.0f) << i;
      }
    }
    if (!log) expect_close(out, expect, tol_for(DType::Float32), "softmax with -inf");
  }
}

TEST(CudaSoftmax, AutogradThroughFrontEnd) {
  SKIP_WITHOUT_GPU();
  // softmax over dims 0, 1 and 2 of a non-contiguous view, forward and backward.
  Tensor base = random_cpu({6, 5, 7}, DType::Float32, 11);
  Tensor grad = random_cpu({5, 6, 7}, DType::Float32, 12);
  for (bool log : {false, true}) {
    for (int64_t dim : {0, 1, 2}) {
      Tensor xc = transpose(base, 0, 1).detach().requires_grad_();
      Tensor xg = transpose(gpu(base), 0, 1).detach().requires_grad_();
      Tensor yc = log ? log_softmax(xc, dim) : softmax(xc, dim);
      Tensor yg = log ? log_softmax(xg, dim) : softmax(xg, dim);
      expect_close(yg, yc, tol_for(DType::Float32), str_cat("softmax front end dim ", dim));
      run_backward({yc}, {grad}, false);
      run_backward({yg}, {gpu(grad)}, false);
      expect_close(xg.grad(), xc.grad(), {1e-5, 1e-4},
                   str_cat("softmax grad dim ", dim, log ? " (log)" : ""));
    }
  }
}

// ---------------------------------------------------------------- layer norm
TEST(CudaLayerNorm, ForwardMatchesCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 200;
  for (DType dt : kFloats) {
    const DType sd = dt == DType::Float64 ? DType::Float64 : DType::Float32;
    for (int64_t cols : {1, 7, 33, 1000, 1023, 1024, 1025, 4096, 50257}) {
      const int64_t rows = cols >= 4096 ? 3 : 11;
      Tensor x = random_cpu({rows, cols}, dt, seed++);
      for (int affine = 0; affine < 3; ++affine) {  // none, weight only, weight and bias
        Tensor w = affine >= 1 ? random_cpu({cols}, sd, seed++) : Tensor();
        Tensor b = affine >= 2 ? random_cpu({cols}, sd, seed++) : Tensor();
        Tensor out = Tensor::empty({rows, cols}, dt), mean = Tensor::empty({rows}, sd),
               invstd = Tensor::empty({rows}, sd);
        layer_norm_forward_kernel.get(kCpu)(out, x, w, b, mean, invstd, 1e-5);
        for (bool unaligned : {false, true}) {
          Tensor go = poisoned({rows, cols}, dt), gm = poisoned({rows}, sd),
                 gi = poisoned({rows}, sd);
          layer_norm_forward_kernel.get(kGpu)(go, unaligned ? gpu_unaligned(x) : gpu(x),
                                              w.defined() ? gpu(w) : w, b.defined() ? gpu(b) : b,
                                              gm, gi, 1e-5);
          const std::string what =
              label(unaligned ? "layer_norm unaligned" : "layer_norm", dt, rows, cols, affine);
          // Float32 statistics on the GPU against double on the CPU: a few float ulps.
          expect_close(go, out, dt == DType::Float32 ? Tol{2e-5, 1e-4} : tol_for(dt),
                       what + " out");
          expect_close(gm, mean, dt == DType::Float64 ? tol_for(dt) : Tol{1e-5, 1e-5},
                       what + " mean");
          expect_close(gi, invstd, dt == DType::Float64 ? tol_for(dt) : Tol{1e-6, 2e-5},
                       what + " invstd");
        }
      }
    }
  }
}

TEST(CudaLayerNorm, BackwardMatchesCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 300;
  const int64_t shapes[][2] = {{11, 1},   {9, 7},    {300, 33},  {2000, 7}, {5, 1000},
                               {7, 1023}, {4, 4096}, {2, 50257}, {129, 64}};
  for (DType dt : kFloats) {
    const DType sd = dt == DType::Float64 ? DType::Float64 : DType::Float32;
    for (const auto& s : shapes) {
      const int64_t rows = s[0], cols = s[1];
      Tensor x = random_cpu({rows, cols}, dt, seed++);
      Tensor g = random_cpu({rows, cols}, dt, seed++, 0.0, 1.0);
      Tensor w = random_cpu({cols}, sd, seed++);
      Tensor out = Tensor::empty({rows, cols}, dt), mean = Tensor::empty({rows}, sd),
             invstd = Tensor::empty({rows}, sd);
      layer_norm_forward_kernel.get(kCpu)(out, x, w, Tensor(), mean, invstd, 1e-5);
      for (bool with_weight : {true, false}) {
        Tensor wt = with_weight ? w : Tensor();
        Tensor ci = Tensor::empty({rows, cols}, dt), cw = Tensor::empty({cols}, sd),
               cb = Tensor::empty({cols}, sd);
        layer_norm_backward_kernel.get(kCpu)(ci, cw, cb, g, x, wt, mean, invstd);
        Tensor gi = poisoned({rows, cols}, dt), gw = poisoned({cols}, sd),
               gb = poisoned({cols}, sd);
        layer_norm_backward_kernel.get(kGpu)(
            gi, gw, gb, gpu(g), gpu(x), with_weight ? gpu(w) : Tensor(), gpu(mean), gpu(invstd));
        const std::string what = label("layer_norm_backward", dt, rows, cols, with_weight);
        const Tol t = dt == DType::Float32 ? Tol{1e-4, 1e-4} : tol_for(dt);
        expect_close(gi, ci, t, what + " grad_input");
        // Column sums over up to 2000 rows: float partials against double.
        const Tol ts = dt == DType::Float64 ? tol_for(dt) : Tol{1e-3, 1e-4};
        expect_close(gw, cw, ts, what + " grad_weight");
        expect_close(gb, cb, ts, what + " grad_bias");
        // Only the parameter gradients (grad_in undefined), and only grad_in.
        Tensor gw2 = poisoned({cols}, sd);
        layer_norm_backward_kernel.get(kGpu)(Tensor(), gw2, Tensor(), gpu(g), gpu(x),
                                             with_weight ? gpu(w) : Tensor(), gpu(mean),
                                             gpu(invstd));
        expect_close(gw2, cw, ts, what + " grad_weight alone");
        Tensor gi2 = poisoned({rows, cols}, dt);
        layer_norm_backward_kernel.get(kGpu)(gi2, Tensor(), Tensor(), gpu(g), gpu(x),
                                             with_weight ? gpu(w) : Tensor(), gpu(mean),
                                             gpu(invstd));
        expect_close(gi2, ci, t, what + " grad_input alone");
      }
    }
  }
}

// ---------------------------------------------------------------- batch norm
TEST(CudaBatchNorm, ForwardAndBackwardMatchCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 400;
  const int64_t shapes[][3] = {{4, 3, 1},  {2, 5, 33},   {8, 2, 1000}, {1, 3, 7},
                               {64, 7, 1}, {3, 1, 4097}, {2, 300, 9}};
  for (DType dt : kFloats) {
    const DType sd = dt == DType::Float64 ? DType::Float64 : DType::Float32;
    for (const auto& s : shapes) {
      const int64_t N = s[0], C = s[1], S = s[2];
      Tensor x = random_cpu({N, C, S}, dt, seed++);
      Tensor g = random_cpu({N, C, S}, dt, seed++, 0.0, 1.0);
      Tensor w = random_cpu({C}, sd, seed++), b = random_cpu({C}, sd, seed++);
      for (bool training : {true, false}) {
        const std::string what =
            label(training ? "batch_norm train" : "batch_norm eval", dt, N, C, S);
        Tensor out = Tensor::empty({N, C, S}, dt), mean, invstd, var;
        Tensor gout = poisoned({N, C, S}, dt), gmean, ginvstd, gvar;
        if (training) {
          mean = Tensor::empty({C}, sd), invstd = Tensor::empty({C}, sd),
          var = Tensor::empty({C}, sd);
          gmean = poisoned({C}, sd), ginvstd = poisoned({C}, sd), gvar = poisoned({C}, sd);
        } else {
          mean = random_cpu({C}, sd, seed++);
          invstd = uniform_cpu({C}, sd, seed++, 0.2, 2.0);
          gmean = gpu(mean), ginvstd = gpu(invstd);
        }
        batch_norm_forward_kernel.get(kCpu)(out, x, w, b, mean, invstd, var, training, 1e-5);
        batch_norm_forward_kernel.get(kGpu)(gout, gpu(x), gpu(w), gpu(b), gmean, ginvstd, gvar,
                                            training, 1e-5);
        const Tol t = dt == DType::Float32 ? Tol{2e-5, 1e-4} : tol_for(dt);
        expect_close(gout, out, t, what + " out");
        if (training) {
          const Tol ts = dt == DType::Float64 ? tol_for(dt) : Tol{1e-5, 1e-5};
          expect_close(gmean, mean, ts, what + " mean");
          expect_close(ginvstd, invstd, ts, what + " invstd");
          expect_close(gvar, var, ts, what + " var");
        }
        Tensor ci = Tensor::empty({N, C, S}, dt), cw = Tensor::empty({C}, sd),
               cb = Tensor::empty({C}, sd);
        batch_norm_backward_kernel.get(kCpu)(ci, cw, cb, g, x, w, mean, invstd, training);
        Tensor gi = poisoned({N, C, S}, dt), gw = poisoned({C}, sd), gb = poisoned({C}, sd);
        batch_norm_backward_kernel.get(kGpu)(gi, gw, gb, gpu(g), gpu(x), gpu(w), gpu(mean),
                                             gpu(invstd), training);
        expect_close(gi, ci, dt == DType::Float32 ? Tol{1e-4, 1e-4} : tol_for(dt),
                     what + " grad_input");
        const Tol ts = dt == DType::Float64 ? tol_for(dt) : Tol{1e-3, 1e-4};
        expect_close(gw, cw, ts, what + " grad_weight");
        expect_close(gb, cb, ts, what + " grad_bias");
        // grad_input alone, without weight (the eval path skips the sums).
        Tensor ci2 = Tensor::empty({N, C, S}, dt);
        batch_norm_backward_kernel.get(kCpu)(ci2, Tensor(), Tensor(), g, x, Tensor(), mean, invstd,
                                             training);
        Tensor gi2 = poisoned({N, C, S}, dt);
        batch_norm_backward_kernel.get(kGpu)(gi2, Tensor(), Tensor(), gpu(g), gpu(x), Tensor(),
                                             gpu(mean), gpu(invstd), training);
        expect_close(gi2, ci2, dt == DType::Float32 ? Tol{1e-4, 1e-4} : tol_for(dt),
                     what + " grad_input alone");
      }
    }
  }
}

// ---------------------------------------------------------------- nll and pointwise losses
TEST(CudaLoss, NllMatchesCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 500;
  const int64_t shapes[][3] = {{7, 5, 1}, {33, 1000, 1}, {4, 3, 9}, {1, 50257, 1}, {2, 7, 33}};
  for (DType dt : kFloats) {
    for (const auto& s : shapes) {
      const int64_t N = s[0], C = s[1], D = s[2];
      Tensor x = random_cpu({N, C, D}, dt, seed++);
      Tensor t = reshape(targets_cpu(N * D, C, seed++, -100, 3), {N, D});
      Tensor g = random_cpu({N, D}, dt, seed++);
      for (bool weighted : {false, true}) {
        Tensor w = weighted ? uniform_cpu({C}, dt, seed++, 0.1, 2.0) : Tensor();
        Tensor loss = Tensor::empty({N, D}, dt), tw = Tensor::empty({N, D}, dt),
               ok = Tensor::empty({N, D}, dt);
        nll_forward_kernel.get(kCpu)(loss, tw, ok, x, t, w, -100, "nll_loss");
        Tensor gl = poisoned({N, D}, dt), gt = poisoned({N, D}, dt), go = poisoned({N, D}, dt);
        nll_forward_kernel.get(kGpu)(gl, gt, go, gpu(x), gpu(t), weighted ? gpu(w) : w, -100,
                                     "nll_loss");
        const std::string what = label("nll", dt, N, C, D);
        expect_close(gl, loss, tol_for(dt), what + " loss");
        expect_close(gt, tw, tol_for(dt), what + " target_weight");
        expect_close(go, ok, tol_for(dt), what + " valid");
        Tensor ci = Tensor::empty({N, C, D}, dt);
        nll_backward_kernel.get(kCpu)(ci, g, t, w, -100);
        Tensor gi = poisoned({N, C, D}, dt);
        nll_backward_kernel.get(kGpu)(gi, gpu(g), gpu(t), weighted ? gpu(w) : w, -100);
        expect_close(gi, ci, tol_for(dt), what + " grad");
      }
    }
  }
}

TEST(CudaLoss, NllRejectsOutOfRangeTargets) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_cpu({4, 5, 1}, DType::Float32, 1);
  for (int64_t bad : {5, -1, 1000}) {
    Tensor t = reshape(targets_cpu(4, 5, 2), {4, 1});
    t.data<int64_t>()[2] = bad;
    Tensor l = Tensor::empty({4, 1}, DType::Float32, kGpu),
           tw = Tensor::empty({4, 1}, DType::Float32, kGpu);
    try {
      nll_forward_kernel.get(kGpu)(l, tw, Tensor(), gpu(x), gpu(t), Tensor(), -100, "nll_loss");
      FAIL() << "expected IndexError for target " << bad;
    } catch (const IndexError& e) {
      EXPECT_NE(std::string(e.what()).find(
                    str_cat("[nll_loss] target ", bad, " is out of bounds for 5 classes")),
                std::string::npos)
          << e.what();
    }
  }
  // The stream is usable afterwards.
  Tensor t = reshape(targets_cpu(4, 5, 3), {4, 1});
  Tensor l = Tensor::empty({4, 1}, DType::Float32, kGpu),
         tw = Tensor::empty({4, 1}, DType::Float32, kGpu);
  EXPECT_NO_THROW(
      nll_forward_kernel.get(kGpu)(l, tw, Tensor(), gpu(x), gpu(t), Tensor(), -100, "nll_loss"));
}

TEST(CudaLoss, PointwiseMatchesCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 600;
  for (DType dt : kFloats) {
    for (int64_t n : {1, 7, 33, 1000, 1023}) {
      const Shape shape{3, n};
      // input strided (a transposed view), target broadcast along rows, pos_weight along columns.
      Tensor xin = transpose(uniform_cpu({n, 3}, dt, seed++, 0.02, 0.98), 0, 1);
      Tensor logits = transpose(random_cpu({n, 3}, dt, seed++), 0, 1);
      Tensor tgt = expand(uniform_cpu({1, n}, dt, seed++, 0.0, 1.0), shape);
      Tensor pw = expand(uniform_cpu({3, 1}, dt, seed++, 0.5, 3.0), shape);
      Tensor gout = random_cpu(shape, dt, seed++);
      for (PointwiseLoss kind :
           {PointwiseLoss::L1, PointwiseLoss::BCE, PointwiseLoss::BCEWithLogits}) {
        const Tensor& in = kind == PointwiseLoss::BCE ? xin : logits;
        const std::string what = label(
            kind == PointwiseLoss::L1 ? "l1" : (kind == PointwiseLoss::BCE ? "bce" : "bce_logits"),
            dt, 3, n);
        Tensor expect = Tensor::empty(shape, dt);
        pointwise_loss_kernel.get(kCpu)(kind, expect, in, tgt, pw);
        Tensor out = poisoned(shape, dt);
        Tensor gin = transpose(gpu(contiguous(transpose(in, 0, 1))), 0,
                               1);  // the same strided layout on the GPU
        Tensor gtg = expand(gpu(contiguous(narrow(tgt, 0, 0, 1))), shape);
        Tensor gpw = expand(gpu(contiguous(narrow(pw, 1, 0, 1))), shape);
        pointwise_loss_kernel.get(kGpu)(kind, out, gin, gtg, gpw);
        expect_close(out, expect, tol_for(dt), what);
        for (bool wrt_target : {false, true}) {
          Tensor ce = Tensor::empty(shape, dt);
          pointwise_loss_backward_kernel.get(kCpu)(kind, wrt_target, ce, in, tgt, pw, gout);
          Tensor ge = poisoned(shape, dt);
          pointwise_loss_backward_kernel.get(kGpu)(kind, wrt_target, ge, gin, gtg, gpw, gpu(gout));
          expect_close(ge, ce, dt == DType::Float32 ? Tol{1e-5, 1e-4} : tol_for(dt),
                       what + (wrt_target ? " d/dtarget" : " d/dinput"));
        }
      }
    }
  }
}

TEST(CudaLoss, BceRejectsInputOutsideUnitInterval) {
  SKIP_WITHOUT_GPU();
  Tensor x = uniform_cpu({2, 9}, DType::Float32, 1, 0.1, 0.9);
  x.data<float>()[5] = 1.5f;
  Tensor y = uniform_cpu({2, 9}, DType::Float32, 2, 0.0, 1.0), pw = ones({2, 9});
  Tensor out = Tensor::empty({2, 9}, DType::Float32, kGpu);
  EXPECT_THROW(pointwise_loss_kernel.get(kGpu)(PointwiseLoss::BCE, out, gpu(x), gpu(y), gpu(pw)),
               ValueError);
  EXPECT_THROW(pointwise_loss_kernel.get(kCpu)(PointwiseLoss::BCE, Tensor::empty({2, 9}), x, y, pw),
               ValueError);
}

// ---------------------------------------------------------------- fused cross-entropy
// cross_entropy on the GPU (fused path) against the CPU's composed path, reduction 'none'
// so only this family's kernels and copies run; gradients through run_backward.
TEST(CudaCrossEntropy, FusedMatchesComposedCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 700;
  for (DType dt : kFloats) {
    for (int64_t C : {1, 7, 33, 1000, 1023, 1024, 4096, 50257}) {
      const int64_t N = C >= 4096 ? 3 : 13;
      Tensor x = random_cpu({N, C}, dt, seed++);
      Tensor g = random_cpu({N}, dt, seed++);
      Tensor t =
          targets_cpu(N, C, seed++, C > 1 ? 1 : 0, 4);  // every 4th row (from 1) is ignore_index
      const int64_t ignore = C > 1 ? 1 : 0;
      for (bool weighted : {false, true}) {
        Tensor w = weighted ? uniform_cpu({C}, dt, seed++, 0.1, 2.0) : Tensor();
        for (double eps : {0.0, 0.1}) {
          // The composed float16 smoothing sum (about 13 * C) overflows float16 for large C.
          if (dt == DType::Float16 && eps > 0 && C >= 4096) continue;
          const std::string what =
              str_cat(label("cross_entropy", dt, N, C), weighted ? " weighted" : "", " eps ", eps);
          Tensor xc = x.detach().requires_grad_();
          Tensor xg = gpu(x).detach().requires_grad_();
          Tensor lc = cross_entropy(xc, t, w, ignore, "none", eps);
          Tensor lg = cross_entropy(xg, gpu(t), weighted ? gpu(w) : w, ignore, "none", eps);
          const Tol tl = dt == DType::Float32
                             ? Tol{2e-5, 2e-5}
                             : (dt == DType::Float64 ? Tol{1e-9, 1e-9} : Tol{0.05, 0.02});
          expect_close(lg, lc, tl, what + " loss");
          run_backward({lc}, {g}, false);
          run_backward({lg}, {gpu(g)}, false);
          expect_close(xg.grad(), xc.grad(), dt == DType::Float32 ? Tol{1e-6, 1e-4} : tol_for(dt),
                       what + " grad");
        }
      }
    }
  }
}

TEST(CudaCrossEntropy, FusedRejectsOutOfRangeTargets) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_cpu({4, 6}, DType::Float32, 1);
  Tensor t = targets_cpu(4, 6, 2);
  t.data<int64_t>()[3] = 6;
  EXPECT_THROW(cross_entropy(x, t), IndexError);
  try {
    cross_entropy(gpu(x), gpu(t));
    FAIL() << "expected IndexError";
  } catch (const IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("[cross_entropy] target 6 is out of bounds for 6 classes"),
              std::string::npos)
        << e.what();
  }
  Tensor bad_shape = targets_cpu(3, 6, 3);
  EXPECT_THROW(cross_entropy(gpu(x), gpu(bad_shape)), ShapeError);
}
