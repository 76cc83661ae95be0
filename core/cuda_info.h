// The CUDA runtime as core sees it, without cuda_runtime.h: device count and selection,
// per-device current streams, events, synchronisation, allocator statistics. A build with
// CUDA defines these in kernels/cuda/runtime.cpp and cuda_allocator.cpp; a build without
// it in core/cuda_info.cpp, where the queries answer false / 0 and everything else throws
// DeviceError ("built without CUDA"). With CUDA but no GPU or driver, the same calls throw
// DeviceError saying no device is visible.
#pragma once
#include <cstdint>

#include "core/cuda/memory_stats.h"

namespace bigmodel::cuda {

bool built_with_cuda();
int device_count();  // 0 without a driver or device
inline bool is_available() { return device_count() > 0; }

int current_device();          // throws DeviceError when no device is visible
void set_device(int index);    // throws DeviceError for a bad index
void synchronize(int device = -1);  // waits for all work on a device (-1: current)
// True when BIGMODEL_SYNC=1: every kernel launch is followed by a synchronise and check.
bool sync_debug_enabled();

// Makes `index` current for the guard's lifetime (index < 0: leaves it alone).
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// A stream handle: `handle` is the cudaStream_t (nullptr is the default stream of
// `device`). Streams made by create_stream live until the process ends, like PyTorch's pool.
struct Stream {
  int device = 0;
  void* handle = nullptr;
  bool operator==(const Stream& o) const { return device == o.device && handle == o.handle; }
  bool operator!=(const Stream& o) const { return !(*this == o); }
};
Stream current_stream(int device = -1);  // per thread and device; default stream at first
Stream default_stream(int device = -1);
void set_current_stream(Stream stream);
Stream create_stream(int device = -1, int priority = 0);  // lower number = higher priority
void stream_synchronize(Stream stream);
bool stream_query(Stream stream);  // true when all its work has finished

// An event (cudaEvent_t behind `handle`), created on `device` (-1: current).
class Event {
 public:
  explicit Event(bool enable_timing = false, int device = -1);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(Stream stream);
  void record() { record(current_stream(device_)); }
  void synchronize() const;
  bool query() const;  // true once the recorded work is done (or nothing was recorded)
  void wait(Stream stream) const;  // `stream` waits on the device for this event
  float elapsed_ms(const Event& end) const;  // both recorded with enable_timing
  int device() const { return device_; }
  void* handle() const { return handle_; }

 private:
  void* handle_ = nullptr;
  int device_ = 0;
  bool timing_ = false;
};

// The caching allocator of each device (see core/cuda/caching_allocator.h).
MemoryStats memory_stats(int device = -1);
void reset_peak_memory_stats(int device = -1);
void empty_cache();  // returns every cached unused block (all devices) to the driver
// Marks a block of device memory (a storage's data pointer) as used by `stream`, so it is
// not handed out again until the work queued there before its free has finished.
void record_stream(void* device_ptr, Stream stream);

}  // namespace bigmodel::cuda
