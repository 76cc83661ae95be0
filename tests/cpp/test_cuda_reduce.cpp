// cuda tier (C++): the CUDA reduction kernels (reduce_kernel, arg_reduce_kernel,
// row_stat_kernel, row_grad_kernel, index_grad_kernel) against the CPU kernels, called
// through their stubs on row-major, column-major and sliced [rows, cols] matrices (the
// layouts a planner may hand them), odd and long rows; and autograd through sum_to on CUDA.
// Skips with a printed reason where no GPU is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "core/cuda_info.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"
#include "core/ops/reduce_kernels.h"
#include "core/ops/view.h"
#include "tests/cpp/cuda_test_skip.h"

using namespace bigmodel;

namespace {

const Device kGpu(DeviceType::CUDA, 0);

Tensor random_cpu(const Shape& shape, DType dtype, uint32_t seed, double lo = -3, double hi = 3) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> ud(lo, hi);
  Tensor t = Tensor::empty(shape, DType::Float64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = ud(gen);
    p[i] = dtype == DType::Bool ? (v > 0) : (is_floating(dtype) ? v : std::round(v * 10));
  }
  return to(t, dtype);
}

// |gpu - cpu| <= atol + rtol * |cpu| elementwise (NaN matches NaN, inf matches inf).
void expect_close(const Tensor& gpu, const Tensor& cpu, double rtol, double atol) {
  ASSERT_TRUE(gpu.device().is_cuda());
  ASSERT_EQ(gpu.sizes(), cpu.sizes());
  ASSERT_EQ(gpu.dtype(), cpu.dtype());
  Tensor g = contiguous(to(gpu, Device(), DType::Float64)), c = contiguous(to(cpu, DType::Float64));
  const double* pg = g.data<double>();
  const double* pc = c.data<double>();
  int64_t bad = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    const bool same_special = (std::isnan(pg[i]) && std::isnan(pc[i])) || (std::isinf(pc[i]) && pg[i] == pc[i]);
    if (same_special) continue;
    if (!(std::fabs(pg[i] - pc[i]) <= atol + rtol * std::fabs(pc[i]))) {
      if (++bad <= 5) ADD_FAILURE() << "element " << i << ": gpu " << pg[i] << " cpu " << pc[i];
    }
  }
  EXPECT_EQ(bad, 0);
}

// Fills a view (a temporary) with one value.
void fill_view(Tensor view, double value) { fill_(view, Scalar(value)); }

double rtol_of(DType dt) {
  switch (dt) {
    case DType::Float32: return 2e-5;
    case DType::Float64: return 1e-10;
    case DType::Float16: return 2e-3;
    case DType::BFloat16: return 1.6e-2;
    default: return 0;
  }
}

// Four layouts of the same [rows, cols] values on the GPU: row-major, column-major (a
// transposed [cols, rows] buffer), every other column of a [rows, 2 * cols] buffer, and
// columns 1..cols of a [rows, cols + 1] buffer (misaligned: the scalar contiguous path).
std::vector<std::pair<const char*, Tensor>> gpu_layouts(const Tensor& m) {
  const int64_t rows = m.size(0), cols = m.size(1);
  std::vector<std::pair<const char*, Tensor>> out;
  out.emplace_back("row-major", to(m, kGpu));
  out.emplace_back("column-major", transpose(to(contiguous(transpose(m, 0, 1)), kGpu), 0, 1));
  Tensor wide = zeros({rows, 2 * cols}, m.dtype());
  Tensor every_other = slice(wide, 1, 0, 2 * cols, 2);
  copy_(every_other, m);
  out.emplace_back("sliced", slice(to(wide, kGpu), 1, 0, 2 * cols, 2));
  // unit column stride, rows cols + 1 apart, first element one past a 16-byte boundary
  Tensor padded = zeros({rows, cols + 1}, m.dtype());
  Tensor inner = narrow(padded, 1, 1, cols);
  copy_(inner, m);
  out.emplace_back("offset-by-one", narrow(to(padded, kGpu), 1, 1, cols));
  return out;
}

const std::vector<std::pair<int64_t, int64_t>> kShapes = {{1, 1},   {1, 7},    {7, 33},   {33, 7},   {1000, 3},
                                                          {3, 1000}, {5, 1023}, {1023, 5}, {2, 0},    {1, 300001},
                                                          {300001, 2}, {4, 70001}};

}  // namespace

TEST(CudaReduce, ReduceKernelMatchesCpuOnEveryLayout) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 1;
  const ReduceOp ops[] = {ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min, ReduceOp::All, ReduceOp::Any};
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int32, DType::Int64,
                   DType::Bool}) {
    for (auto [rows, cols] : kShapes) {
      // products of many values overflow: near-one values for floats, 0/1 for integers
      const Tensor plain = random_cpu({rows, cols}, dt, seed++);
      const Tensor near_one = is_floating(dt) ? random_cpu({rows, cols}, dt, seed++, 0.999, 1.001)
                                              : to(random_cpu({rows, cols}, DType::Bool, seed++), dt);
      const auto plain_layouts = gpu_layouts(plain), near_one_layouts = gpu_layouts(near_one);
      for (ReduceOp op : ops) {
        const bool prod = op == ReduceOp::Prod;
        const Tensor& m = prod ? near_one : plain;
        const bool truth = op == ReduceOp::All || op == ReduceOp::Any;
        const DType out_dt = truth ? DType::Bool
                                   : ((op == ReduceOp::Sum || prod) && !is_floating(dt) ? DType::Int64 : dt);
        if ((op == ReduceOp::Max || op == ReduceOp::Min) && cols == 0) continue;  // the front end refuses
        Tensor expect = Tensor::empty({rows}, out_dt);
        reduce_kernel.get(Device())(op, expect, m);
        for (auto& [name, g] : prod ? near_one_layouts : plain_layouts) {
          SCOPED_TRACE(str_cat(dtype_name(dt), " ", rows, "x", cols, " ", name, " op ", static_cast<int>(op)));
          Tensor got = full({rows}, Scalar(7.0), out_dt, kGpu);  // poisoned
          reduce_kernel.get(kGpu)(op, got, g);
          const double rtol = rtol_of(out_dt);
          expect_close(got, expect, rtol, rtol * 4 * std::sqrt(static_cast<double>(cols) + 1));
        }
      }
    }
  }
}

TEST(CudaReduce, ArgReduceMatchesCpuIncludingTiesAndNaN) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 50;
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int32, DType::Int64,
                   DType::Bool}) {
    for (auto [rows, cols] : kShapes) {
      if (cols == 0) continue;
      Tensor m = random_cpu({rows, cols}, dt, seed++);
      if (is_floating(dt) && cols > 3) {  // ties across the row and a pair of NaNs in row 0
        Tensor row0 = select(m, 0, 0);
        fill_view(narrow(row0, 0, cols - 1, 1), 5.0);
        fill_view(narrow(row0, 0, 1, 1), 5.0);
        if (rows > 1) {
          Tensor row1 = select(m, 0, 1);
          fill_view(narrow(row1, 0, cols / 2, 1), std::nan(""));
          fill_view(narrow(row1, 0, cols - 1, 1), std::nan(""));
        }
      }
      for (bool is_max : {true, false}) {
        Tensor ev = Tensor::empty({rows}, dt), ei = Tensor::empty({rows}, DType::Int64);
        arg_reduce_kernel.get(Device())(is_max, ev, ei, m);
        for (auto& [name, g] : gpu_layouts(m)) {
          SCOPED_TRACE(str_cat(dtype_name(dt), " ", rows, "x", cols, " ", name, is_max ? " max" : " min"));
          Tensor gv = full({rows}, Scalar(int64_t{3}), dt, kGpu), gi = full({rows}, Scalar(int64_t{-9}), DType::Int64, kGpu);
          arg_reduce_kernel.get(kGpu)(is_max, gv, gi, g);
          expect_close(gi, ei, 0, 0);
          expect_close(gv, ev, 0, 0);
          Tensor only = full({rows}, Scalar(int64_t{-9}), DType::Int64, kGpu);
          arg_reduce_kernel.get(kGpu)(is_max, Tensor(), only, g);  // argmax: no values
          expect_close(only, ei, 0, 0);
        }
      }
    }
  }
}

TEST(CudaReduce, RowStatsMatchCpuOnEveryLayout) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 200;
  struct Case {
    RowStat stat;
    double param;
  };
  const double inf = std::numeric_limits<double>::infinity();
  const Case cases[] = {{RowStat::Var, 1.0}, {RowStat::Var, 0.0}, {RowStat::Std, 2.0}, {RowStat::LogSumExp, 0.0},
                        {RowStat::Norm, 2.0}, {RowStat::Norm, 1.0}, {RowStat::Norm, 0.0}, {RowStat::Norm, 3.0},
                        {RowStat::Norm, 0.5}, {RowStat::Norm, inf}, {RowStat::Norm, -inf}};
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16}) {
    for (auto [rows, cols] : kShapes) {
      Tensor m = random_cpu({rows, cols}, dt, seed++);
      const auto layouts = gpu_layouts(m);
      for (const Case& c : cases) {
        Tensor expect = Tensor::empty({rows}, dt);
        row_stat_kernel.get(Device())(c.stat, expect, m, c.param);
        for (auto& [name, g] : layouts) {
          SCOPED_TRACE(str_cat(dtype_name(dt), " ", rows, "x", cols, " ", name, " stat ", static_cast<int>(c.stat),
                               " p ", c.param));
          Tensor got = full({rows}, Scalar(7.0), dt, kGpu);
          row_stat_kernel.get(kGpu)(c.stat, got, g, c.param);
          expect_close(got, expect, rtol_of(dt) * 2, rtol_of(dt) * 4);
        }
      }
    }
  }
}

TEST(CudaReduce, RowGradsMatchCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 400;
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16}) {
    for (auto [rows, cols] : kShapes) {
      if (cols == 0) continue;
      Tensor m = random_cpu({rows, cols}, dt, seed++);
      fill_view(narrow(select(m, 0, 0), 0, 0, (cols + 1) / 2), 2.0);  // ties (and zeros below)
      Tensor gout = random_cpu({rows}, dt, seed++);
      struct Case {
        RowGrad kind;
        double p;
        ReduceOp fwd;  // Extremum's result; others use row_stat
      };
      for (const Case& c : {Case{RowGrad::Extremum, 0, ReduceOp::Max}, Case{RowGrad::Extremum, 0, ReduceOp::Min},
                            Case{RowGrad::Norm, 2, ReduceOp::Sum}, Case{RowGrad::Norm, 1, ReduceOp::Sum},
                            Case{RowGrad::Norm, 3, ReduceOp::Sum}, Case{RowGrad::Norm, inf, ReduceOp::Sum},
                            Case{RowGrad::Prod, 0, ReduceOp::Sum}}) {
        Tensor result;
        if (c.kind == RowGrad::Extremum) {
          result = Tensor::empty({rows}, dt);
          reduce_kernel.get(Device())(c.fwd, result, m);
        } else if (c.kind == RowGrad::Norm) {
          result = Tensor::empty({rows}, dt);
          row_stat_kernel.get(Device())(RowStat::Norm, result, m, c.p);
        }
        Tensor src = c.kind == RowGrad::Prod ? random_cpu({rows, cols}, dt, seed++, 0.99, 1.01) : m;
        if (c.kind == RowGrad::Prod && cols > 2) {  // one zero in row 0, two in the last row
          fill_view(narrow(select(src, 0, 0), 0, 1, 1), 0.0);
          fill_view(narrow(select(src, 0, rows - 1), 0, 0, 1), 0.0);
          fill_view(narrow(select(src, 0, rows - 1), 0, cols - 1, 1), 0.0);
        }
        Tensor expect = Tensor::empty({rows, cols}, dt);
        row_grad_kernel.get(Device())(c.kind, expect, src, result, gout, c.p);
        for (auto& [name, g] : gpu_layouts(src)) {
          SCOPED_TRACE(str_cat(dtype_name(dt), " ", rows, "x", cols, " ", name, " grad ", static_cast<int>(c.kind),
                               " p ", c.p));
          Tensor got = full({rows, cols}, Scalar(7.0), dt, kGpu);
          row_grad_kernel.get(kGpu)(c.kind, got, g, result.defined() ? to(result, kGpu) : Tensor(), to(gout, kGpu),
                                    c.p);
          expect_close(got, expect, rtol_of(dt) * 2, rtol_of(dt) * 4);
        }
      }
    }
  }
}

TEST(CudaReduce, IndexGradScattersIntoZeros) {
  SKIP_WITHOUT_GPU();
  for (auto [rows, cols] : kShapes) {
    if (cols == 0) continue;
    Tensor m = random_cpu({rows, cols}, DType::Float32, 900);
    Tensor vals = Tensor::empty({rows}, DType::Float32), idx = Tensor::empty({rows}, DType::Int64);
    arg_reduce_kernel.get(Device())(true, vals, idx, m);
    Tensor gout = random_cpu({rows}, DType::Float32, 901);
    Tensor expect = Tensor::empty({rows, cols}, DType::Float32);
    index_grad_kernel.get(Device())(expect, idx, gout);
    Tensor got = full({rows, cols}, Scalar(7.0), DType::Float32, kGpu);
    index_grad_kernel.get(kGpu)(got, to(idx, kGpu), to(gout, kGpu));
    expect_close(got, expect, 0, 0);
  }
}

TEST(CudaReduce, OpsOverDimsAndFullReductionMatchCpu) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_cpu({6, 9, 11}, DType::Float32, 1000);
  Tensor g = to(x, kGpu);
  for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{{}, {0}, {1}, {2}, {0, 2}, {1, 2}, {0, 1}}) {
    for (bool keep : {false, true}) {
      SCOPED_TRACE(str_cat("dims ", dims.size(), " keepdim ", keep));
      expect_close(sum(g, dims, keep), sum(x, dims, keep), 2e-5, 1e-4);
      expect_close(mean(transpose(g, 0, 2), dims, keep), mean(transpose(x, 0, 2), dims, keep), 2e-5, 1e-5);
      expect_close(amax(g, dims, keep), amax(x, dims, keep), 0, 0);
      expect_close(var(g, dims, 1.0, keep), var(x, dims, 1.0, keep), 2e-5, 1e-5);
      expect_close(norm(g, 2.0, dims, keep), norm(x, 2.0, dims, keep), 2e-5, 1e-5);
    }
  }
  const int64_t n = (int64_t{1} << 22) + 77;
  Tensor big = random_cpu({n}, DType::Float32, 1001, 0.5, 1.5);
  Tensor gbig = to(big, kGpu);
  expect_close(sum(gbig), sum(big), 1e-5, 0);
  expect_close(amin(gbig), amin(big), 0, 0);
  expect_close(argmax(gbig), argmax(big), 0, 0);
  Tensor ibig = random_cpu({n}, DType::Int64, 1002);
  expect_close(sum(to(ibig, kGpu)), sum(ibig), 0, 0);
}

TEST(CudaReduce, AutogradThroughBroadcastAndMatmulOnCuda) {
  SKIP_WITHOUT_GPU();
  Tensor xs = random_cpu({9, 5}, DType::Float64, 2000);
  Tensor w = random_cpu({5, 4}, DType::Float64, 2001), b = random_cpu({4}, DType::Float64, 2002);
  std::vector<Tensor> grads[2];
  for (int d = 0; d < 2; ++d) {
    const Device dev = d == 0 ? kGpu : Device();
    Tensor wd = to(w, dev).requires_grad_(), bd = to(b, dev).requires_grad_();
    Tensor h = add(matmul(to(xs, dev), wd), bd);  // b broadcasts: its gradient is a sum_to
    Tensor loss = add(sum(mul(h, h)), amax(h));
    loss.backward();
    grads[d] = {wd.grad(), bd.grad(), loss.detach()};
  }
  for (size_t i = 0; i < grads[0].size(); ++i) expect_close(grads[0][i], grads[1][i], 1e-10, 1e-10);
}
