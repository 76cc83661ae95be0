// cuda tier (C++): the CUDA runtime, transfers, copy/fill kernels and the device caching
// allocator, checked against the CPU. Skips with a printed reason where no GPU is visible;
// the no-GPU errors are tested wherever that is the case.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/cuda_info.h"
#include "core/ops/creation.h"
#include "core/ops/view.h"
#include "tests/cpp/cuda_test_skip.h"

using namespace bigmodel;

namespace {

const Device kGpu(DeviceType::CUDA, 0);

Tensor random_cpu(const Shape& shape, DType dtype, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.5, 3.0);
  Tensor t = Tensor::empty(shape, DType::Float64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = nd(gen);
    p[i] = dtype == DType::Bool ? (v > 0.5) : (is_floating(dtype) ? v : std::round(v * 100));
  }
  return to(t, dtype);
}

// Bitwise equality of two CPU tensors of one dtype and shape (read contiguously).
void expect_same_bits(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.sizes(), b.sizes());
  ASSERT_EQ(a.dtype(), b.dtype());
  Tensor ca = contiguous(a), cb = contiguous(b);
  ASSERT_TRUE(ca.device().is_cpu() && cb.device().is_cpu());
  EXPECT_EQ(std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()), 0);
}

const DType kAll[] = {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16,
                      DType::Int32,   DType::Int64,   DType::Bool};

}  // namespace

TEST(CudaNoGpu, CudaTensorRaisesDeviceError) {
  if (cuda::is_available()) GTEST_SKIP() << "a GPU is visible: the no-GPU path cannot be observed";
  EXPECT_EQ(cuda::device_count(), 0);
  try {
    Tensor::empty({3}, DType::Float32, kGpu);
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {
    std::string msg = e.what();
    EXPECT_TRUE(msg.find("no CUDA device is visible") != std::string::npos ||
                msg.find("built without CUDA") != std::string::npos)
        << msg;
  }
  EXPECT_THROW(to(ones({2}), kGpu), DeviceError);
  EXPECT_THROW(cuda::current_device(), DeviceError);
  EXPECT_THROW(cuda::Event(), DeviceError);
  EXPECT_THROW(cuda::memory_stats(0), DeviceError);
  EXPECT_NO_THROW(cuda::empty_cache());
}

TEST(CpuAllocatorStats, CountsLiveAndPeakBytes) {
  reset_cpu_peak_memory_stats();
  CpuMemoryStats before = cpu_memory_stats();
  {
    Tensor t = Tensor::empty({1000}, DType::Float64);
    CpuMemoryStats during = cpu_memory_stats();
    EXPECT_EQ(during.allocated_bytes - before.allocated_bytes, 8000);
    EXPECT_GE(during.peak_allocated_bytes, during.allocated_bytes);
  }
  CpuMemoryStats after = cpu_memory_stats();
  EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
  EXPECT_GE(after.peak_allocated_bytes, before.allocated_bytes + 8000);
  EXPECT_EQ(after.num_frees - before.num_frees, after.num_allocs - before.num_allocs);
}

TEST(CudaTransfer, RoundTripAllDtypesAndSizes) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 1;
  for (DType dt : kAll) {
    for (int64_t n : {1, 7, 33, 1000, 1023}) {
      Tensor x = random_cpu({n}, dt, seed++);
      Tensor g = to(x, kGpu);
      ASSERT_TRUE(g.device().is_cuda());
      expect_same_bits(to(g, Device()), x);
    }
  }
}

TEST(CudaCopy, CastsMatchCpuForEveryDtypePair) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 100;
  for (DType src : kAll) {
    Tensor x = random_cpu({33, 31}, src, seed++);
    Tensor g = to(x, kGpu);
    for (DType dst : kAll) {
      SCOPED_TRACE(std::string(dtype_name(src)) + " -> " + dtype_name(dst));
      expect_same_bits(to(to(g, dst), Device()), to(x, dst));
      expect_same_bits(to(g, Device(), dst), to(x, dst));       // cast on the way down
      expect_same_bits(to(to(x, kGpu, dst), Device()), to(x, dst));  // cast on the way up
    }
  }
}

TEST(CudaCopy, StridedAndBroadcast) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_cpu({7, 33, 5}, DType::Float32, 7);
  Tensor g = to(x, kGpu);
  expect_same_bits(to(contiguous(transpose(g, 0, 2)), Device()), contiguous(transpose(x, 0, 2)));
  expect_same_bits(to(permute(g, {1, 2, 0}), Device()), contiguous(permute(x, {1, 2, 0})));
  expect_same_bits(to(narrow(g, 1, 3, 17), Device()), contiguous(narrow(x, 1, 3, 17)));
  Tensor row = random_cpu({33, 1}, DType::Float64, 8);
  Tensor dst = transpose(zeros({5, 33, 7}, DType::Float32, kGpu), 0, 2);
  copy_(dst, to(row, kGpu));  // broadcast source, strided destination, cast
  Tensor ref = transpose(zeros({5, 33, 7}, DType::Float32), 0, 2);
  copy_(ref, row);
  expect_same_bits(to(dst, Device()), ref);
}

TEST(CudaFill, ContiguousAndStrided) {
  SKIP_WITHOUT_GPU();
  for (DType dt : kAll) {
    Tensor g = full({9, 13}, Scalar(int64_t{3}), dt, kGpu);
    Tensor v = transpose(g, 0, 1);
    Tensor sub = narrow(v, 0, 2, 5);
    fill_(sub, Scalar(int64_t{1}));
    Tensor ref = full({9, 13}, Scalar(int64_t{3}), dt);
    Tensor rsub = narrow(transpose(ref, 0, 1), 0, 2, 5);
    fill_(rsub, Scalar(int64_t{1}));
    expect_same_bits(to(g, Device()), ref);
  }
}

TEST(CudaRuntime, StreamsEventsSynchronize) {
  SKIP_WITHOUT_GPU();
  cuda::set_device(0);
  EXPECT_EQ(cuda::current_device(), 0);
  cuda::Stream s = cuda::create_stream(0);
  EXPECT_NE(s, cuda::default_stream(0));
  cuda::set_current_stream(s);
  cuda::Event start(true), end(true);
  start.record();
  Tensor g = to(random_cpu({1 << 20}, DType::Float32, 3), kGpu);
  Tensor h = to(g, DType::Float64);
  end.record();
  cuda::set_current_stream(cuda::default_stream(0));
  end.synchronize();
  EXPECT_TRUE(end.query());
  EXPECT_TRUE(cuda::stream_query(s));
  EXPECT_GE(start.elapsed_ms(end), 0.0f);
  cuda::synchronize();
  EXPECT_THROW(cuda::set_device(cuda::device_count()), DeviceError);
}

TEST(CudaAllocator, StatsReuseAndEmptyCache) {
  SKIP_WITHOUT_GPU();
  cuda::synchronize();
  cuda::MemoryStats base = cuda::memory_stats(0);
  cuda::MemoryStats held;
  {
    Tensor t = Tensor::empty({1 << 20}, DType::Float32, kGpu);
    held = cuda::memory_stats(0);
    EXPECT_EQ(held.allocated_bytes - base.allocated_bytes, 4 << 20);
  }
  cuda::MemoryStats freed = cuda::memory_stats(0);
  EXPECT_EQ(freed.allocated_bytes, base.allocated_bytes);
  EXPECT_EQ(freed.reserved_bytes, held.reserved_bytes);  // cached
  { Tensor t2 = Tensor::empty({1 << 20}, DType::Float32, kGpu); }
  EXPECT_EQ(cuda::memory_stats(0).num_segments, held.num_segments);  // reused, no new segment
  cuda::empty_cache();
  EXPECT_LT(cuda::memory_stats(0).reserved_bytes, held.reserved_bytes);
}

TEST(CudaAllocator, OomRaisesAndRecovers) {
  SKIP_WITHOUT_GPU();
  cuda::MemoryStats before = cuda::memory_stats(0);
  EXPECT_THROW(Tensor::empty({int64_t{1} << 46}, DType::Float32, kGpu), OutOfMemoryError);
  cuda::MemoryStats after = cuda::memory_stats(0);
  EXPECT_EQ(after.num_ooms, before.num_ooms + 1);
  Tensor ok = ones({1000}, DType::Float32, kGpu);
  expect_same_bits(to(ok, Device()), ones({1000}));
}
