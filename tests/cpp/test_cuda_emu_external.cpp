// cuda tier (emulation build only): "external work" on a stream (tests/cuda_emu/emu_streams.h),
// what the emulated NCCL's asynchronous collectives are: work a library's own thread does
// while the stream stays busy. Checked in both modes (each test switches the mode for itself):
// an event after it is not ready, cudaStreamWaitEvent passes it on, a kernel launched on the
// dependent stream runs after it (it reads what the work wrote), syncs wait for it. A fake
// worker thread plays the library; the real one is covered by tests/dist_cuda/test_emu_nccl.py.
#ifdef BIGMODEL_CUDA_EMU
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "core/cuda_info.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "tests/cuda_emu/emu_streams.h"

using namespace bigmodel;

namespace {

using Clock = std::chrono::steady_clock;

class ModeGuard {
 public:
  explicit ModeGuard(bool async) : old_(bm_emu::set_async_mode(async)) {}
  ~ModeGuard() { bm_emu::set_async_mode(old_); }

 private:
  bool old_;
};

// The library's worker: once the stream has reached `w` (running the stream up to it, as the
// emulated NCCL's worker does in async mode), waits `ms`, writes `value` to n floats, finishes.
std::thread fake_worker(const bm_emu::ExternalPtr& w, float* dev, int n, float value, int ms) {
  return std::thread([=] {
    while (!w->startable()) {
      bm_emu::kick_external(w, true);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    for (int i = 0; i < n; ++i) dev[i] = value;
    w->finish();
  });
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void external_work_orders_streams(bool async) {
  ModeGuard mode(async);
  const Device gpu(DeviceType::CUDA, 0);
  Tensor t = full({33}, Scalar(1.0), DType::Float32, gpu);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaStream_t a = nullptr, b = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking), cudaSuccess);
  auto w = std::make_shared<bm_emu::ExternalWork>();
  w->what = "test collective";
  bm_emu::enqueue_external(a, w);
  cudaEvent_t ev = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(ev, a), cudaSuccess);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cudaEventQuery(ev), cudaErrorNotReady) << "poll " << i;
  EXPECT_EQ(cudaStreamQuery(a), cudaErrorNotReady);
  ASSERT_EQ(cudaStreamWaitEvent(b, ev, 0), cudaSuccess);
  EXPECT_EQ(cudaStreamQuery(b), cudaErrorNotReady);
  EXPECT_EQ(cudaStreamQuery(b), cudaErrorNotReady);
  EXPECT_FALSE(w->done.load());

  const auto t0 = Clock::now();
  std::thread worker = fake_worker(w, static_cast<float*>(t.data_ptr()), 33, 5.0f, 100);
  // A kernel on the dependent stream: it must read the worker's 5 (a launch that did not wait
  // would read 1 and be overwritten: 5, not 6).
  cuda::set_current_stream(cuda::Stream{0, b});
  add_(t, Scalar(1.0));
  cuda::set_current_stream(cuda::default_stream(0));
  ASSERT_EQ(cudaStreamSynchronize(b), cudaSuccess);
  EXPECT_GE(seconds_since(t0), 0.08) << "the dependent stream did not wait for the external work";
  EXPECT_TRUE(w->done.load());
  float host[33];
  ASSERT_EQ(cudaMemcpy(host, t.data_ptr(), sizeof host, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(host[0], 6.0f);
  EXPECT_EQ(host[32], 6.0f);
  EXPECT_EQ(cudaEventQuery(ev), cudaSuccess);
  EXPECT_EQ(cudaStreamQuery(a), cudaSuccess);
  worker.join();

  // cudaEventSynchronize and cudaDeviceSynchronize wait for it too.
  for (int which = 0; which < 2; ++which) {
    auto w2 = std::make_shared<bm_emu::ExternalWork>();
    w2->what = "second";
    bm_emu::enqueue_external(a, w2);
    ASSERT_EQ(cudaEventRecord(ev, a), cudaSuccess);
    const auto t1 = Clock::now();
    std::thread worker2 = fake_worker(w2, static_cast<float*>(t.data_ptr()), 33, 9.0f + which, 60);
    ASSERT_EQ(which == 0 ? cudaEventSynchronize(ev) : cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_GE(seconds_since(t1), 0.05) << (which == 0 ? "cudaEventSynchronize" : "cudaDeviceSynchronize");
    EXPECT_TRUE(w2->done.load());
    worker2.join();
  }
  ASSERT_EQ(cudaMemcpy(host, t.data_ptr(), sizeof host, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(host[7], 10.0f);
  EXPECT_EQ(cudaEventDestroy(ev), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(a), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(b), cudaSuccess);
}

TEST(CudaEmuExternal, ExternalWorkKeepsItsStreamBusyDefaultMode) { external_work_orders_streams(false); }
TEST(CudaEmuExternal, ExternalWorkKeepsItsStreamBusyAsyncMode) { external_work_orders_streams(true); }

}  // namespace
#endif  // BIGMODEL_CUDA_EMU
