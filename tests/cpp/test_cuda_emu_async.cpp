// cuda tier (emulation build only): the emulator's asynchronous mode (BIGMODEL_EMU_ASYNC=1,
// tests/cuda_emu/emu_streams.cpp) finds stream-ordering bugs. Each test switches the mode on
// for itself (bm_emu::set_async_mode), so it runs in every emulation run, and checks both
// sides: the bug gives a stale value in async mode, the correct code the right one. In the
// default (synchronous) mode the same calls give the right value at once.
#ifdef BIGMODEL_CUDA_EMU
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/cuda_info.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"

namespace bm_emu {
// tests/cuda_emu/emu_streams.h and cuda_emu.h (not includable here: cuda_emu.h is the device
// side). Same declarations.
bool set_async_mode(bool on);
bool async_launches();
struct LaunchCfg {
  dim3 grid, block;
  size_t smem = 0;
  cudaStream_t stream = nullptr;
};
void run_grid(const LaunchCfg& c, const char* name, void (*body)(void*), void* ctx);
void enqueue_grid(const LaunchCfg& c, const char* name, void (*body)(void*), void* ctx, void (*destroy)(void*));
[[noreturn]] void trap(const char* why);
}  // namespace bm_emu

using namespace bigmodel;

namespace {

// Sets the mode for one test and restores the previous one (draining the queues both ways).
class ModeGuard {
 public:
  explicit ModeGuard(bool async) : old_(bm_emu::set_async_mode(async)) {}
  ~ModeGuard() { bm_emu::set_async_mode(old_); }

 private:
  bool old_;
};

struct Streams {
  cudaStream_t a = nullptr, b = nullptr;
  explicit Streams(unsigned flags = cudaStreamNonBlocking) {
    EXPECT_EQ(cudaStreamCreateWithFlags(&a, flags), cudaSuccess);
    EXPECT_EQ(cudaStreamCreateWithFlags(&b, flags), cudaSuccess);
  }
  ~Streams() {
    cudaDeviceSynchronize();
    cudaStreamDestroy(a);
    cudaStreamDestroy(b);
  }
};

unsigned char read_byte(const void* dev) {
  unsigned char v = 0;
  EXPECT_EQ(cudaMemcpy(&v, dev, 1, cudaMemcpyDeviceToHost), cudaSuccess);
  return v;
}

// Stream b copies what stream a sets, with or without the event edge a -> b.
unsigned char copy_across_streams(bool wait) {
  Streams s;
  void *src = nullptr, *dst = nullptr;
  EXPECT_EQ(cudaMalloc(&src, 64), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&dst, 64), cudaSuccess);
  EXPECT_EQ(cudaMemset(src, 1, 64), cudaSuccess);
  EXPECT_EQ(cudaMemset(dst, 2, 64), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaEvent_t ev = nullptr;
  EXPECT_EQ(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), cudaSuccess);
  EXPECT_EQ(cudaMemsetAsync(src, 7, 64, s.a), cudaSuccess);
  EXPECT_EQ(cudaEventRecord(ev, s.a), cudaSuccess);
  if (wait) {
    EXPECT_EQ(cudaStreamWaitEvent(s.b, ev, 0), cudaSuccess);
  }
  EXPECT_EQ(cudaMemcpyAsync(dst, src, 64, cudaMemcpyDeviceToDevice, s.b), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(s.b), cudaSuccess);
  const unsigned char v = read_byte(dst);
  EXPECT_EQ(cudaEventDestroy(ev), cudaSuccess);
  EXPECT_EQ(cudaFree(src), cudaSuccess);
  EXPECT_EQ(cudaFree(dst), cudaSuccess);
  return v;
}

TEST(CudaEmuAsync, MissingWaitBetweenNonBlockingStreamsReadsStale) {
  {
    ModeGuard async(true);
    EXPECT_EQ(copy_across_streams(false), 1) << "b ran ahead of a: the stale value";
    EXPECT_EQ(copy_across_streams(true), 7) << "with cudaStreamWaitEvent b sees a's write";
  }
  ModeGuard sync(false);
  EXPECT_EQ(copy_across_streams(false), 7);
  EXPECT_EQ(copy_across_streams(true), 7);
}

// fill_ runs a kernel on the current stream; cudaMemcpy runs on the legacy default stream,
// which waits for blocking streams only.
float fill_on_stream_then_read(unsigned flags, bool sync_first) {
  const Device gpu(DeviceType::CUDA, 0);
  Tensor t = full({33}, Scalar(1.0), DType::Float32, gpu);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaStream_t s = nullptr;
  EXPECT_EQ(cudaStreamCreateWithFlags(&s, flags), cudaSuccess);
  cuda::set_current_stream(cuda::Stream{0, s});
  fill_(t, Scalar(7.0));
  cuda::set_current_stream(cuda::default_stream(0));
  if (sync_first) {
    EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  }
  float host[33];
  EXPECT_EQ(cudaMemcpy(host, t.data_ptr(), sizeof host, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
  return host[32];
}

TEST(CudaEmuAsync, LegacyMemcpyDoesNotWaitForNonBlockingStream) {
  {
    ModeGuard async(true);
    EXPECT_EQ(fill_on_stream_then_read(cudaStreamNonBlocking, false), 1.0f) << "the kernel had not run yet";
    EXPECT_EQ(fill_on_stream_then_read(cudaStreamNonBlocking, true), 7.0f);
    EXPECT_EQ(fill_on_stream_then_read(cudaStreamDefault, false), 7.0f) << "a blocking stream is waited for";
  }
  ModeGuard sync(false);
  EXPECT_EQ(fill_on_stream_then_read(cudaStreamNonBlocking, false), 7.0f);
}

TEST(CudaEmuAsync, EventAndStreamQueryNotReadyThenReady) {
  for (const bool async : {true, false}) {
    ModeGuard mode(async);
    Streams s;
    void* buf = nullptr;
    ASSERT_EQ(cudaMalloc(&buf, 16), cudaSuccess);
    cudaEvent_t ev = nullptr;
    ASSERT_EQ(cudaEventCreate(&ev), cudaSuccess);
    EXPECT_EQ(cudaEventQuery(ev), cudaSuccess) << "never recorded: complete";
    ASSERT_EQ(cudaMemsetAsync(buf, 3, 16, s.a), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(ev, s.a), cudaSuccess);
    int polls = 0;
    cudaError_t e;
    while ((e = cudaEventQuery(ev)) == cudaErrorNotReady) ASSERT_LT(++polls, 10);
    EXPECT_EQ(e, cudaSuccess);
    EXPECT_EQ(polls, async ? 1 : 0);
    EXPECT_EQ(read_byte(buf), 3);
    ASSERT_EQ(cudaMemsetAsync(buf, 4, 16, s.b), cudaSuccess);
    EXPECT_EQ(cudaStreamQuery(s.b), async ? cudaErrorNotReady : cudaSuccess);
    EXPECT_EQ(cudaStreamQuery(s.b), cudaSuccess);
    EXPECT_EQ(read_byte(buf), 4);
    float ms = -1;
    EXPECT_EQ(cudaEventElapsedTime(&ms, ev, ev), cudaSuccess);
    EXPECT_EQ(cudaEventDestroy(ev), cudaSuccess);
    EXPECT_EQ(cudaFree(buf), cudaSuccess);
  }
}

void trapping_body(void*) { bm_emu::trap("__trap() in the test kernel"); }

TEST(CudaEmuAsync, StickyErrorOfQueuedKernelSurfacesAtNextSync) {
  for (const bool async : {true, false}) {
    ModeGuard mode(async);
    cudaGetLastError();
    Streams s;
    bm_emu::LaunchCfg cfg{dim3(1), dim3(32), 0, s.a};
    if (bm_emu::async_launches()) bm_emu::enqueue_grid(cfg, "trapping_kernel", &trapping_body, nullptr, [](void*) {});
    else bm_emu::run_grid(cfg, "trapping_kernel", &trapping_body, nullptr);
    if (async) {
      EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "the launch itself succeeded";
      const cudaError_t e = cudaStreamSynchronize(s.a);
      EXPECT_EQ(e, cudaErrorLaunchFailure);
      EXPECT_NE(std::string(cudaGetErrorString(e)).find("trap"), std::string::npos) << cudaGetErrorString(e);
      cudaGetLastError();
    } else {
      EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
    }
    EXPECT_EQ(cudaStreamSynchronize(s.a), cudaSuccess) << "reported once";
    // A bad configuration is still reported by the launch, not later.
    bm_emu::LaunchCfg bad{dim3(1), dim3(2048), 0, s.a};
    if (bm_emu::async_launches()) bm_emu::enqueue_grid(bad, "too_big", &trapping_body, nullptr, [](void*) {});
    else bm_emu::run_grid(bad, "too_big", &trapping_body, nullptr);
    EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  }
}

// cudaMemcpyAsync from pageable memory stages the source at the call; from pinned memory the
// copy reads it when it runs, so a host write before the stream ran lands in the copy.
TEST(CudaEmuAsync, PinnedSourceIsReadWhenTheCopyRuns) {
  for (const bool async : {true, false}) {
    ModeGuard mode(async);
    Streams s;
    void* dev = nullptr;
    ASSERT_EQ(cudaMalloc(&dev, 8), cudaSuccess);
    std::vector<unsigned char> pageable(8, 5);
    ASSERT_EQ(cudaMemcpyAsync(dev, pageable.data(), 8, cudaMemcpyHostToDevice, s.a), cudaSuccess);
    std::memset(pageable.data(), 9, 8);
    ASSERT_EQ(cudaStreamSynchronize(s.a), cudaSuccess);
    EXPECT_EQ(read_byte(dev), 5) << "pageable: staged at the call";
    void* pinned = nullptr;
    ASSERT_EQ(cudaHostAlloc(&pinned, 8, cudaHostAllocDefault), cudaSuccess);
    std::memset(pinned, 5, 8);
    ASSERT_EQ(cudaMemcpyAsync(dev, pinned, 8, cudaMemcpyHostToDevice, s.a), cudaSuccess);
    std::memset(pinned, 9, 8);  // the bug: overwritten before the copy is known to have run
    ASSERT_EQ(cudaStreamSynchronize(s.a), cudaSuccess);
    EXPECT_EQ(read_byte(dev), async ? 9 : 5);
    // To pinned memory the copy lands only when the stream runs.
    std::memset(pinned, 0, 8);
    ASSERT_EQ(cudaMemcpyAsync(pinned, dev, 8, cudaMemcpyDeviceToHost, s.a), cudaSuccess);
    EXPECT_EQ(static_cast<unsigned char*>(pinned)[0], async ? 0 : read_byte(dev));
    ASSERT_EQ(cudaStreamSynchronize(s.a), cudaSuccess);
    EXPECT_EQ(static_cast<unsigned char*>(pinned)[0], read_byte(dev));
    EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
    EXPECT_EQ(cudaFree(dev), cudaSuccess);
  }
}

// The caching allocator hands a freed block to the next allocation on the stream it was
// allocated on. A tensor read on another stream must be marked (record_stream), or the block
// is rewritten while that stream's reader is still queued.
float reader_after_reuse(bool mark) {
  const Device gpu(DeviceType::CUDA, 0);
  cuda::Stream s1 = cuda::create_stream(0), s2 = cuda::create_stream(0);
  Tensor y;
  {
    cuda::set_current_stream(s1);
    Tensor x = full({40}, Scalar(1.0), DType::Float32, gpu);
    cuda::stream_synchronize(s1);
    cuda::set_current_stream(s2);
    y = mul(x, Scalar(2.0));  // reads x on s2
    if (mark) cuda::record_stream(x.data_ptr(), s2);
    cuda::set_current_stream(s1);
  }  // x freed here; its block may serve the next allocation on s1
  Tensor z = full({40}, Scalar(5.0), DType::Float32, gpu);
  cuda::stream_synchronize(s1);
  cuda::stream_synchronize(s2);
  cuda::set_current_stream(cuda::default_stream(0));
  float host[40];
  EXPECT_EQ(cudaMemcpy(host, y.data_ptr(), sizeof host, cudaMemcpyDeviceToHost), cudaSuccess);
  return host[39];
}

TEST(CudaEmuAsync, BlockReusedBeforeOtherStreamsReaderRan) {
  {
    ModeGuard async(true);
    EXPECT_EQ(reader_after_reuse(false), 10.0f) << "x's block was rewritten before s2 read it";
    EXPECT_EQ(reader_after_reuse(true), 2.0f);
  }
  ModeGuard sync(false);
  EXPECT_EQ(reader_after_reuse(false), 2.0f);
}

}  // namespace
#endif  // BIGMODEL_CUDA_EMU
