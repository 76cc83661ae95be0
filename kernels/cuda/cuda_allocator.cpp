// The CUDA device allocator: one CachingAllocator (core/cuda/caching_allocator.h) per
// device over cudaMalloc/cudaFree and CUDA events, registered for DeviceType::CUDA; and a
// small cache of pinned host buffers used to stage non-blocking transfers.
#include "kernels/cuda/cuda_allocator.h"

#include <cstdio>
#include <map>
#include <mutex>
#include <vector>

#include "core/allocator.h"
#include "core/cuda/caching_allocator.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

class CudaBackend : public AllocatorBackend {
 public:
  explicit CudaBackend(int device) : device_(device) {}
  void* raw_alloc(size_t nbytes) override {
    DeviceGuard guard(device_);
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, nbytes);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky: the caller frees its cache and retries
      return nullptr;
    }
    BM_CUDA_CHECK(e);
    return p;
  }
  void raw_free(void* ptr) override {
    DeviceGuard guard(device_);
    BM_CUDA_CHECK(cudaFree(ptr));
  }
  void* record_event(StreamId stream) override {
    DeviceGuard guard(device_);
    cudaEvent_t e = nullptr;
    if (!spare_events_.empty()) {
      e = spare_events_.back();
      spare_events_.pop_back();
    } else {
      BM_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    }
    BM_CUDA_CHECK(cudaEventRecord(e, static_cast<cudaStream_t>(stream)));
    return e;
  }
  bool event_done(void* event) override {
    cudaError_t e = cudaEventQuery(static_cast<cudaEvent_t>(event));
    if (e == cudaErrorNotReady) {
      cudaGetLastError();
      return false;
    }
    BM_CUDA_CHECK(e);
    return true;
  }
  void release_event(void* event) override { spare_events_.push_back(static_cast<cudaEvent_t>(event)); }
  void synchronize() override {
    DeviceGuard guard(device_);
    BM_CUDA_CHECK(cudaDeviceSynchronize());
  }
  std::string describe_memory() override {
    DeviceGuard guard(device_);
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
      cudaGetLastError();
      return "";
    }
    return str_cat("the device has ", free_b >> 20, " MiB free of ", total_b >> 20, " MiB");
  }

 private:
  int device_;
  std::vector<cudaEvent_t> spare_events_;  // only touched under the allocator's lock
};

// Created on first use and never destroyed: at process exit the CUDA context may already
// be gone, and freeing into it would fail.
std::mutex g_pools_mutex;
CachingAllocator* g_pools[64] = {};

CachingAllocator* pool_if_created(int device) {
  std::lock_guard<std::mutex> lock(g_pools_mutex);
  return g_pools[device];
}

class CudaDeviceAllocator : public Allocator {
 public:
  void* allocate(size_t nbytes) override { return allocate_on(nbytes, Device(DeviceType::CUDA, current_device())); }
  void* allocate_on(size_t nbytes, Device device) override {
    check_device_index(device.index, "allocate");
    return device_pool(device.index).allocate(nbytes, current_stream(device.index).handle);
  }
  void deallocate(void* ptr, size_t nbytes) override {
    deallocate_on(ptr, nbytes, Device(DeviceType::CUDA, current_device()));
  }
  void deallocate_on(void* ptr, size_t, Device device) override {
    if (!ptr) return;
    try {
      device_pool(device.index).free(ptr);
    } catch (const std::exception& e) {  // from a destructor: report, never throw
      std::fprintf(stderr, "bigmodel: freeing CUDA memory failed: %s\n", e.what());
    }
  }
};

CudaDeviceAllocator g_cuda_allocator;
const bool g_registered = (register_allocator(DeviceType::CUDA, &g_cuda_allocator), true);

// ---- pinned host buffers --------------------------------------------------------------
struct PinnedBlock {
  size_t size = 0;
  cudaEvent_t last_use = nullptr;  // recorded on the stream of the last copy that read/wrote it
  int device = 0;
  bool in_use = false;
};
std::mutex g_pinned_mutex;
std::map<void*, PinnedBlock> g_pinned;  // every pinned buffer, in use or cached

bool pinned_ready(const PinnedBlock& b) {
  if (!b.last_use) return true;
  cudaError_t e = cudaEventQuery(b.last_use);
  if (e == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  BM_CUDA_CHECK(e);
  return true;
}

}  // namespace

CachingAllocator& device_pool(int device) {
  std::lock_guard<std::mutex> lock(g_pools_mutex);
  if (!g_pools[device]) {
    g_pools[device] = new CachingAllocator(std::make_unique<CudaBackend>(device), str_cat("cuda:", device));
  }
  return *g_pools[device];
}

void* pinned_alloc(size_t nbytes) {
  const size_t size = (std::max<size_t>(nbytes, 1) + 4095) / 4096 * 4096;
  {
    std::lock_guard<std::mutex> lock(g_pinned_mutex);
    void* best = nullptr;
    size_t best_size = 0;
    for (auto& [ptr, b] : g_pinned) {  // smallest cached buffer that fits and is idle
      if (b.in_use || b.size < size || b.size > 4 * size) continue;
      if ((!best || b.size < best_size) && pinned_ready(b)) {
        best = ptr;
        best_size = b.size;
      }
    }
    if (best) {
      g_pinned[best].in_use = true;
      return best;
    }
  }
  void* p = nullptr;
  cudaError_t e = cudaHostAlloc(&p, size, cudaHostAllocDefault);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    empty_pinned_cache();
    e = cudaHostAlloc(&p, size, cudaHostAllocDefault);
  }
  BM_CUDA_CHECK(e);
  std::lock_guard<std::mutex> lock(g_pinned_mutex);
  PinnedBlock& b = g_pinned[p];
  b.size = size;
  b.in_use = true;
  return p;
}

void pinned_record_use(void* ptr, int device, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_pinned_mutex);
  auto it = g_pinned.find(ptr);
  if (it == g_pinned.end()) return;
  PinnedBlock& b = it->second;
  DeviceGuard guard(device);
  if (b.last_use && b.device != device) {
    cudaEventDestroy(b.last_use);
    b.last_use = nullptr;
  }
  if (!b.last_use) BM_CUDA_CHECK(cudaEventCreateWithFlags(&b.last_use, cudaEventDisableTiming));
  b.device = device;
  BM_CUDA_CHECK(cudaEventRecord(b.last_use, stream));
}

void pinned_free(void* ptr) {
  std::lock_guard<std::mutex> lock(g_pinned_mutex);
  auto it = g_pinned.find(ptr);
  if (it != g_pinned.end()) it->second.in_use = false;  // cached; reused once its event is done
}

void empty_pinned_cache() {
  std::lock_guard<std::mutex> lock(g_pinned_mutex);
  for (auto it = g_pinned.begin(); it != g_pinned.end();) {
    PinnedBlock& b = it->second;
    if (b.in_use) {
      ++it;
      continue;
    }
    if (b.last_use) {
      cudaEventSynchronize(b.last_use);
      cudaEventDestroy(b.last_use);
    }
    cudaFreeHost(it->first);
    it = g_pinned.erase(it);
  }
}

MemoryStats memory_stats(int device) {
  const int d = device < 0 ? current_device() : device;
  check_device_index(d, "memory_stats");
  CachingAllocator* pool = pool_if_created(d);
  return pool ? pool->stats() : MemoryStats{};
}

void reset_peak_memory_stats(int device) {
  const int d = device < 0 ? current_device() : device;
  check_device_index(d, "reset_peak_memory_stats");
  if (CachingAllocator* pool = pool_if_created(d)) pool->reset_peak_stats();
}

void empty_cache() {
  if (device_count() == 0) return;  // nothing was ever cached
  for (int d = 0; d < device_count() && d < 64; ++d)
    if (CachingAllocator* pool = pool_if_created(d)) pool->empty_cache();
  empty_pinned_cache();
}

void record_stream(void* device_ptr, Stream stream) {
  check_device_index(stream.device, "record_stream");
  device_pool(stream.device).record_stream(device_ptr, stream.handle);
}

}  // namespace bigmodel::cuda
