// cuda tier: the fused optimizer ops, the LSTM/GRU cell kernels and the int8 kernels on the GPU
// against the CPU kernels (fused SGD/Adam bit for bit; the rest within float tolerances).
// Skips without a GPU.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/bigmodel.h"
#include "core/cuda_info.h"
#include "core/ops/fused_optim.h"
#include "core/ops/quant.h"
#include "core/ops/rnn.h"
#include "tests/cpp/cuda_test_skip.h"

using namespace bigmodel;

namespace {

const Device kGpu(DeviceType::CUDA, 0);
const std::vector<int64_t> kSizes = {1, 7, 33, 1000, 1023, 40000};

std::vector<Tensor> random_list(DType dt, uint64_t seed) {
  manual_seed(seed);
  std::vector<Tensor> ts;
  for (int64_t n : kSizes) ts.push_back(randn({n}, dt));
  return ts;
}

std::vector<Tensor> on(const std::vector<Tensor>& ts, Device d) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(to(t, d));
  return out;
}

// Max |a - b| after bringing both to float64 on the CPU (NaN when they differ in NaN-ness).
double max_diff(const Tensor& a, const Tensor& b) {
  Tensor x = contiguous(to(a, Device(), DType::Float64)), y = contiguous(to(b, Device(), DType::Float64));
  double m = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double u = x.data<double>()[i], v = y.data<double>()[i];
    if (std::isnan(u) != std::isnan(v)) return NAN;
    if (!std::isnan(u)) m = std::max(m, std::fabs(u - v));
  }
  return m;
}

bool same_bytes(const Tensor& gpu, const Tensor& cpu) {
  Tensor g = contiguous(to(gpu, Device()));
  Tensor c = contiguous(cpu);
  return g.nbytes() == c.nbytes() && std::memcmp(g.data_ptr(), c.data_ptr(), g.nbytes()) == 0;
}

}  // namespace

TEST(CudaFused, SGDMatchesCpuBitwise) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (double momentum : {0.0, 0.9}) {
      std::vector<Tensor> pc = random_list(dt, 1), pg = on(pc, kGpu);
      std::vector<Tensor> bc(momentum != 0.0 ? pc.size() : 0), bg(bc.size());
      FusedSGDOptions o{0.05, momentum, 0.1, 0.01, false, false};
      for (int s = 0; s < 3; ++s) {
        std::vector<Tensor> g = random_list(dt, 10 + s);
        fused_sgd_(pc, g, bc, o);
        fused_sgd_(pg, on(g, kGpu), bg, o);
      }
      for (size_t i = 0; i < pc.size(); ++i) {
        EXPECT_TRUE(same_bytes(pg[i], pc[i])) << "param " << i << " max diff " << max_diff(pg[i], pc[i]);
        if (momentum != 0.0) {
          EXPECT_TRUE(same_bytes(bg[i], bc[i])) << "buffer " << i;
        }
      }
    }
  }
}

TEST(CudaFused, AdamMatchesCpuBitwise) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (bool amsgrad : {false, true}) {
      for (bool decoupled : {false, true}) {
        std::vector<Tensor> pc = random_list(dt, 2), pg = on(pc, kGpu);
        std::vector<Tensor> mc, vc, wc, sc, sg;
        for (const Tensor& p : pc) {
          mc.push_back(zeros_like(p));
          vc.push_back(zeros_like(p));
          if (amsgrad) wc.push_back(zeros_like(p));
          sc.push_back(zeros({}, DType::Float32));
          sg.push_back(zeros({}, DType::Float32));
        }
        std::vector<Tensor> mg = on(mc, kGpu), vg = on(vc, kGpu), wg = on(wc, kGpu);
        FusedAdamOptions o{3e-3, 0.9, 0.999, 1e-8, 0.05, amsgrad, false, decoupled};
        for (int s = 0; s < 3; ++s) {
          std::vector<Tensor> g = random_list(dt, 20 + s);
          fused_adam_(pc, g, mc, vc, wc, sc, o);
          fused_adam_(pg, on(g, kGpu), mg, vg, wg, sg, o);
        }
        for (size_t i = 0; i < pc.size(); ++i) {
          EXPECT_TRUE(same_bytes(pg[i], pc[i])) << "param " << i << " max diff " << max_diff(pg[i], pc[i]);
          EXPECT_TRUE(same_bytes(mg[i], mc[i])) << "exp_avg " << i;
          EXPECT_TRUE(same_bytes(vg[i], vc[i])) << "exp_avg_sq " << i;
          if (amsgrad) {
            EXPECT_TRUE(same_bytes(wg[i], wc[i])) << "max_exp_avg_sq " << i;
          }
        }
      }
    }
  }
}

TEST(CudaFused, NormAndMulMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16}) {
    std::vector<Tensor> tc = random_list(dt, 3), tg = on(tc, kGpu);
    for (double p : {2.0, 1.0, 3.0, static_cast<double>(INFINITY)}) {
      Tensor a = fused_norm(tg, p), b = fused_norm(tc, p);
      EXPECT_TRUE(a.device().is_cuda());
      const double want = b.item().to_double();
      const double tol = (dt == DType::Float16 || dt == DType::BFloat16) ? 1e-2 : 1e-6;
      EXPECT_NEAR(a.item().to_double(), want, std::fabs(want) * tol) << dtype_name(dt) << " p=" << p;
    }
    Tensor s = full({}, 0.3711, dt);
    fused_mul_(tc, s);
    fused_mul_(tg, to(s, kGpu));
    for (size_t i = 0; i < tc.size(); ++i) EXPECT_TRUE(same_bytes(tg[i], tc[i])) << dtype_name(dt) << " tensor " << i;
  }
}

TEST(CudaFused, LstmGruCellsMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16}) {
    const double tol = dt == DType::Float64 ? 1e-12 : dt == DType::Float32 ? 1e-5 : dt == DType::Float16 ? 4e-3 : 4e-2;
    for (auto [B, H] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {1, 7}, {3, 33}, {2, 1023}}) {
      manual_seed(B * 100 + H);
      Tensor gates = to(randn({B, 4 * H}), dt), c_prev = to(randn({B, H}), dt);
      Tensor gh = to(randn({B, H}), dt), gc = to(randn({B, H}), dt);
      Tensor h1 = Tensor::empty({B, H}, dt), c1 = Tensor::empty({B, H}, dt);
      Tensor h2 = Tensor::empty({B, H}, dt, kGpu), c2 = Tensor::empty({B, H}, dt, kGpu);
      lstm_pointwise_kernel.get(Device())(h1, c1, gates, c_prev);
      lstm_pointwise_kernel.get(kGpu)(h2, c2, to(gates, kGpu), to(c_prev, kGpu));
      EXPECT_LE(max_diff(h2, h1), tol) << "lstm h " << dtype_name(dt) << " " << B << "x" << H;
      EXPECT_LE(max_diff(c2, c1), tol) << "lstm c";
      Tensor dg1 = Tensor::empty({B, 4 * H}, dt), dcp1 = Tensor::empty({B, H}, dt);
      Tensor dg2 = Tensor::empty({B, 4 * H}, dt, kGpu), dcp2 = Tensor::empty({B, H}, dt, kGpu);
      lstm_pointwise_backward_kernel.get(Device())(dg1, dcp1, gh, gc, gates, c_prev, c1);
      lstm_pointwise_backward_kernel.get(kGpu)(dg2, dcp2, to(gh, kGpu), to(gc, kGpu), to(gates, kGpu),
                                               to(c_prev, kGpu), to(c1, kGpu));
      EXPECT_LE(max_diff(dg2, dg1), tol * 4) << "lstm grad_gates";
      EXPECT_LE(max_diff(dcp2, dcp1), tol * 4) << "lstm grad_c_prev";

      Tensor gi = to(randn({B, 3 * H}), dt), ghh = to(randn({B, 3 * H}), dt);
      Tensor hg1 = Tensor::empty({B, H}, dt), hg2 = Tensor::empty({B, H}, dt, kGpu);
      gru_pointwise_kernel.get(Device())(hg1, gi, ghh, c_prev);
      gru_pointwise_kernel.get(kGpu)(hg2, to(gi, kGpu), to(ghh, kGpu), to(c_prev, kGpu));
      EXPECT_LE(max_diff(hg2, hg1), tol) << "gru h";
      Tensor a1 = Tensor::empty({B, 3 * H}, dt), b1 = Tensor::empty({B, 3 * H}, dt), p1 = Tensor::empty({B, H}, dt);
      Tensor a2 = Tensor::empty({B, 3 * H}, dt, kGpu), b2 = Tensor::empty({B, 3 * H}, dt, kGpu);
      Tensor p2 = Tensor::empty({B, H}, dt, kGpu);
      gru_pointwise_backward_kernel.get(Device())(a1, b1, p1, gh, gi, ghh, c_prev);
      gru_pointwise_backward_kernel.get(kGpu)(a2, b2, p2, to(gh, kGpu), to(gi, kGpu), to(ghh, kGpu), to(c_prev, kGpu));
      EXPECT_LE(max_diff(a2, a1), tol * 4) << "gru grad_gi";
      EXPECT_LE(max_diff(b2, b1), tol * 4) << "gru grad_gh";
      EXPECT_LE(max_diff(p2, p1), tol * 4) << "gru grad_h_prev";
    }
  }
}

TEST(CudaFused, Int8KernelsMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (auto [M, N, K] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {3, 5, 7}, {7, 9, 33}, {64, 48, 64},
                                                             {33, 17, 1000}}) {
    manual_seed(M + N + K);
    Tensor a = randn({M, K}), b = randn({N, K});
    Tensor sa = full({M}, 0.02, DType::Float32), sb = full({1}, 0.03, DType::Float32);
    Tensor qa = quantize_int8(a, sa), qb = quantize_int8(b, sb);
    EXPECT_TRUE(same_bytes(quantize_int8(to(a, kGpu), to(sa, kGpu)), qa)) << "quantize " << M << "x" << K;
    EXPECT_TRUE(same_bytes(quantize_int8(to(transpose(contiguous(transpose(a, 0, 1)), 0, 1), kGpu), to(sa, kGpu)), qa))
        << "quantize non-contiguous";
    EXPECT_TRUE(same_bytes(dequantize_int8(to(qa, kGpu), K, to(sa, kGpu)), dequantize_int8(qa, K, sa))) << "dequantize";
    EXPECT_TRUE(same_bytes(int8_gemm(to(qa, kGpu), to(qb, kGpu), K), int8_gemm(qa, qb, K))) << "int8_gemm";
    Tensor bias = randn({N});
    EXPECT_TRUE(same_bytes(int8_gemm_scaled(to(qa, kGpu), to(qb, kGpu), K, to(sa, kGpu), to(sb, kGpu), to(bias, kGpu)),
                           int8_gemm_scaled(qa, qb, K, sa, sb, bias)))
        << "int8_gemm_scaled";
  }
  manual_seed(9);
  Tensor x = randn({2, 3, 9, 11}), w = randn({5, 3, 3, 2});
  Tensor ws = full({5}, 0.02, DType::Float32), xs = full({1}, 0.03, DType::Float32);
  Tensor wq = quantize_int8(reshape(w, {5, 18}), ws);
  Tensor yc = quantized_conv2d(x, wq, {5, 3, 3, 2}, ws, xs, Tensor(), {2, 1}, {1, 2}, {2, 1});
  Tensor yg = quantized_conv2d(to(x, kGpu), to(wq, kGpu), {5, 3, 3, 2}, to(ws, kGpu), to(xs, kGpu), Tensor(), {2, 1},
                               {1, 2}, {2, 1});
  EXPECT_TRUE(same_bytes(yg, yc)) << "quantized_conv2d max diff " << max_diff(yg, yc);
}
