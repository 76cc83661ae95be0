// cuda tier (C++): the CUDA indexing kernels against the CPU: index_minmax on strided
// tensors, gather/index_select/embedding (row runs and element paths), scatter and
// scatter_add (atomics), advanced indexing, nonzero across many blocks, and IndexError for
// out-of-range indices on CUDA. Skips with a printed reason where no GPU is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/cuda_info.h"
#include "core/ops/compare.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/index.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"
#include "tests/cpp/cuda_test_skip.h"

using namespace bigmodel;

namespace {

const Device kGpu(DeviceType::CUDA, 0);

Tensor random_cpu(const Shape& shape, DType dtype, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.0, 2.0);
  Tensor t = Tensor::empty(shape, DType::Float64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = nd(gen);
    p[i] = dtype == DType::Bool ? (v > 0) : (is_floating(dtype) ? v : std::round(v * 10));
  }
  return to(t, dtype);
}

Tensor random_index(const Shape& shape, int64_t lo, int64_t hi, uint32_t seed, DType dtype = DType::Int64) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int64_t> ud(lo, hi - 1);
  Tensor t = Tensor::empty(shape, DType::Int64);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = ud(gen);
  return to(t, dtype);
}

void expect_same(const Tensor& gpu, const Tensor& cpu) {
  ASSERT_TRUE(gpu.device().is_cuda());
  ASSERT_EQ(gpu.sizes(), cpu.sizes());
  ASSERT_EQ(gpu.dtype(), cpu.dtype());
  Tensor g = contiguous(to(gpu, Device())), c = contiguous(cpu);
  EXPECT_EQ(std::memcmp(g.data_ptr(), c.data_ptr(), c.nbytes()), 0);
}

void expect_close(const Tensor& gpu, const Tensor& cpu, double tol) {
  ASSERT_EQ(gpu.sizes(), cpu.sizes());
  Tensor g = contiguous(to(gpu, Device(), DType::Float64)), c = contiguous(to(cpu, DType::Float64));
  for (int64_t i = 0; i < g.numel(); ++i)
    ASSERT_LE(std::fabs(g.data<double>()[i] - c.data<double>()[i]), tol * (4 + std::fabs(c.data<double>()[i])))
        << "element " << i;
}

const DType kAll[] = {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16,
                      DType::Int32,   DType::Int64,   DType::Bool};

}  // namespace

TEST(CudaIndex, MinMaxKernelOnStridedIndexTensors) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 1;
  for (DType dt : {DType::Int32, DType::Int64}) {
    for (int64_t n : {1, 7, 33, 1000, 1023, 300001}) {
      Tensor ix = random_index({n, 3}, -1000, 1000, seed++, dt);
      for (const Tensor& view : {ix, transpose(ix, 0, 1), slice(ix, 0, 0, n, 2)}) {
        int64_t lo_c = 0, hi_c = 0, lo_g = 1, hi_g = -1;
        index_minmax_kernel.get(Device())(view, &lo_c, &hi_c);
        index_minmax_kernel.get(kGpu)(to(view, kGpu), &lo_g, &hi_g);
        EXPECT_EQ(lo_g, lo_c);
        EXPECT_EQ(hi_g, hi_c);
        // a view of the GPU tensor itself (strided on the device)
        Tensor gv = to(ix, kGpu);
        Tensor gview = view.is_same(ix) ? gv : (view.sizes()[0] == 3 ? transpose(gv, 0, 1) : slice(gv, 0, 0, n, 2));
        index_minmax_kernel.get(kGpu)(gview, &lo_g, &hi_g);
        EXPECT_EQ(lo_g, lo_c);
        EXPECT_EQ(hi_g, hi_c);
      }
    }
  }
}

TEST(CudaIndex, GatherIndexSelectEmbeddingMatchCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 100;
  for (DType dt : kAll) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_cpu({9, 13, 40}, dt, seed++);
    Tensor g = to(x, kGpu);
    for (int64_t dim : {0, 1, 2}) {
      Shape ishape = {7, 11, 30};
      ishape[dim] = 17;
      for (DType it : {DType::Int64, DType::Int32}) {
        Tensor ix = random_index(ishape, 0, x.size(dim), seed++, it);
        expect_same(gather(g, dim, to(ix, kGpu)), gather(x, dim, ix));
        expect_same(gather(transpose(g, 0, 2), 2 - dim, to(transpose(ix, 0, 2), kGpu)),
                    gather(transpose(x, 0, 2), 2 - dim, transpose(ix, 0, 2)));
        Tensor sel = random_index({23}, 0, x.size(dim), seed++, it);
        expect_same(index_select(g, dim, to(sel, kGpu)), index_select(x, dim, sel));
      }
    }
    if (is_floating(dt)) {
      for (int64_t width : {1, 15, 16, 17, 300}) {  // below and above the row-run path
        Tensor w = random_cpu({50, width}, dt, seed++);
        Tensor ids = random_index({5, 33}, 0, 50, seed++);
        expect_same(embedding(to(w, kGpu), to(ids, kGpu)), embedding(w, ids));
        Tensor wt = transpose(random_cpu({width, 50}, dt, seed++), 0, 1);  // column-major weight
        expect_same(embedding(to(wt, kGpu), to(ids, kGpu)), embedding(wt, ids));
      }
    }
  }
}

TEST(CudaIndex, ScatterAndScatterAddMatchCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 200;
  for (DType dt : kAll) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_cpu({8, 6}, dt, seed++);
    // scatter with distinct targets per column: row k goes to perm[k]
    std::vector<int64_t> perm = {5, 2, 7, 0, 1};
    Tensor ix = expand(unsqueeze(from_vector(perm, {5}), 1), {5, 6});
    Tensor src = random_cpu({5, 6}, dt, seed++);
    expect_same(scatter(to(x, kGpu), 0, to(ix, kGpu), to(src, kGpu)), scatter(x, 0, ix, src));
    if (dt == DType::Bool) continue;
    Tensor rep = random_index({40, 6}, 0, 8, seed++);  // many collisions
    Tensor src2 = random_cpu({40, 6}, dt, seed++);
    // Colliding atomic adds land in any order on a GPU: floating-point sums, float64 included,
    // may differ from the CPU's in the last bits (the emulator's reverse block order shows it).
    const double tol = dt == DType::Float16    ? 4e-3
                       : dt == DType::BFloat16 ? 3e-2
                       : dt == DType::Float32  ? 1e-5
                       : dt == DType::Float64  ? 1e-12
                                               : 0;
    Tensor got = scatter_add(to(x, kGpu), 0, to(rep, kGpu), to(src2, kGpu));
    Tensor want = scatter_add(x, 0, rep, src2);
    if (tol == 0) expect_same(got, want);
    else expect_close(got, want, tol);
    Tensor sel = random_index({25}, 0, 6, seed++, DType::Int32);
    Tensor src3 = random_cpu({8, 25}, dt, seed++);
    got = index_add(to(x, kGpu), 1, to(sel, kGpu), to(src3, kGpu));
    want = index_add(x, 1, sel, src3);
    if (tol == 0) expect_same(got, want);
    else expect_close(got, want, tol);
  }
}

TEST(CudaIndex, AdvancedIndexingAndNonzeroMatchCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 300;
  for (DType dt : kAll) {
    SCOPED_TRACE(dtype_name(dt));
    for (const Shape& shape : {Shape{1}, Shape{7}, Shape{33, 31}, Shape{1000, 3}, Shape{3, 1023}, Shape{2, 3, 4, 5},
                               Shape{100003}}) {
      Tensor x = random_cpu(shape, dt, seed++);
      Tensor g = to(x, kGpu);
      expect_same(nonzero(g), nonzero(x));
      if (shape.size() >= 2) expect_same(nonzero(transpose(g, 0, 1)), nonzero(transpose(x, 0, 1)));
      Tensor mask = gt(random_cpu(shape, DType::Float32, seed++), Scalar(0.5));
      expect_same(masked_select(g, to(mask, kGpu)), masked_select(x, mask));
      Tensor i0 = random_index({4, 3}, -shape[0], shape[0], seed++);
      expect_same(advanced_index(g, {to(i0, kGpu)}), advanced_index(x, {i0}));
      Tensor vals = random_cpu({4, 3}, dt, seed++);
      if (shape.size() == 1) {
        // accumulate with repeats: exact for integers, close for floats
        Tensor gg = clone(g), cc = clone(x);
        advanced_index_put_(gg, {to(i0, kGpu)}, to(vals, kGpu), true);
        advanced_index_put_(cc, {i0}, vals, true);
        if (is_floating(dt)) expect_close(gg, cc, dt == DType::Float32 || dt == DType::Float64 ? 1e-5 : 3e-2);
        else expect_same(gg, cc);
      }
    }
  }
  Tensor scalar = full({}, Scalar(2.0), DType::Float32, kGpu);
  EXPECT_EQ(nonzero(scalar).sizes(), (Shape{1, 0}));
  EXPECT_EQ(nonzero(zeros({4, 5}, DType::Float32, kGpu)).sizes(), (Shape{0, 2}));
  EXPECT_EQ(nonzero(zeros({0, 5}, DType::Float32, kGpu)).sizes(), (Shape{0, 2}));
}

TEST(CudaIndex, OutOfRangeIndicesRaiseIndexError) {
  SKIP_WITHOUT_GPU();
  Tensor x = to(random_cpu({4, 5}, DType::Float32, 9), kGpu);
  auto gi = [](std::vector<int64_t> v, Shape s) { return to(from_vector(v, s), kGpu); };
  EXPECT_THROW(index_select(x, 0, gi({0, 4}, {2})), IndexError);
  EXPECT_THROW(index_select(x, 1, gi({-1}, {1})), IndexError);
  EXPECT_THROW(gather(x, 1, gi({5}, {1, 1})), IndexError);
  EXPECT_THROW(scatter_add(x, 0, gi({4}, {1, 1}), narrow(x, 0, 0, 1)), IndexError);
  EXPECT_THROW(embedding(x, gi({1, 9}, {2})), IndexError);
  EXPECT_THROW(advanced_index(x, {gi({-5}, {1})}), IndexError);
  EXPECT_THROW(take(x, gi({20}, {1})), IndexError);
  EXPECT_NO_THROW(take(x, gi({-20, 19}, {2})));
  try {
    gather(x, 0, gi({0, 7}, {1, 2}));
    FAIL() << "expected IndexError";
  } catch (const IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("[gather] index 7 is out of bounds"), std::string::npos) << e.what();
  }
}
