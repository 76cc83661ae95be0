// Fallback for builds without CUDA (kernels/cuda/runtime.cpp defines these otherwise): the
// queries answer false / 0 and every other call raises DeviceError.
#ifndef BIGMODEL_WITH_CUDA
#include "core/cuda_info.h"

#include "core/error.h"

namespace bigmodel::cuda {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw DeviceError(str_cat("[cuda] ", what, ": bigmodel was built without CUDA (BIGMODEL_CUDA=OFF)"));
}
}  // namespace

bool built_with_cuda() { return false; }
int device_count() { return 0; }
int current_device() { no_cuda("current_device"); }
void set_device(int) { no_cuda("set_device"); }
void synchronize(int) { no_cuda("synchronize"); }
bool sync_debug_enabled() { return false; }

DeviceGuard::DeviceGuard(int index) {
  if (index >= 0) no_cuda("device guard");
}
DeviceGuard::~DeviceGuard() = default;

Stream current_stream(int) { no_cuda("current_stream"); }
Stream default_stream(int) { no_cuda("default_stream"); }
void set_current_stream(Stream) { no_cuda("set_stream"); }
Stream create_stream(int, int) { no_cuda("Stream"); }
void stream_synchronize(Stream) { no_cuda("Stream.synchronize"); }
bool stream_query(Stream) { no_cuda("Stream.query"); }

Event::Event(bool, int) { no_cuda("Event"); }
Event::~Event() = default;
void Event::record(Stream) { no_cuda("Event.record"); }
void Event::synchronize() const { no_cuda("Event.synchronize"); }
bool Event::query() const { no_cuda("Event.query"); }
void Event::wait(Stream) const { no_cuda("Event.wait"); }
float Event::elapsed_ms(const Event&) const { no_cuda("Event.elapsed_time"); }

MemoryStats memory_stats(int) { no_cuda("memory_stats"); }
void reset_peak_memory_stats(int) { no_cuda("reset_peak_memory_stats"); }
void empty_cache() {}  // nothing cached: a no-op, as in PyTorch without CUDA
void record_stream(void*, Stream) { no_cuda("record_stream"); }

}  // namespace bigmodel::cuda
#endif
