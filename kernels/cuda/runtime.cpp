// The CUDA runtime behind core/cuda_info.h: device selection and guards, per-thread
// current streams, events and synchronisation. Every call is checked (cuda_check.h); on a
// machine without GPU or driver each entry point raises DeviceError before touching CUDA.
#include "kernels/cuda/runtime.h"

#include <array>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/cuda_check.h"

namespace bigmodel::cuda {
namespace {

constexpr int kMaxDevices = 64;

void require_device(const char* what) {
  if (device_count() == 0) {
    throw DeviceError(str_cat("[", what, "] no CUDA device is visible (bm.cuda.is_available() is False: "
                              "this machine has no GPU or no NVIDIA driver)"));
  }
}

int resolve(int device, const char* what) {
  if (device < 0) return current_device();
  check_device_index(device, what);
  return device;
}

// Per thread, per device: the stream kernels launch on (nullptr: the default stream).
thread_local std::array<void*, kMaxDevices> t_current_streams{};

}  // namespace

void check_device_index(int index, const char* what) {
  require_device(what);
  const int n = device_count();
  if (index < 0 || index >= n || index >= kMaxDevices) {
    throw DeviceError(str_cat("[", what, "] cuda:", index, " does not exist: ", n, " CUDA device",
                              n == 1 ? " is" : "s are", " visible"));
  }
}

int current_device() {
  require_device("current_device");
  int d = 0;
  BM_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void set_device(int index) {
  check_device_index(index, "set_device");
  BM_CUDA_CHECK(cudaSetDevice(index));
}

void synchronize(int device) {
  DeviceGuard guard(resolve(device, "synchronize"));
  BM_CUDA_CHECK(cudaDeviceSynchronize());
}

bool sync_debug_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("BIGMODEL_SYNC");
    return v && std::strcmp(v, "") != 0 && std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

DeviceGuard::DeviceGuard(int index) {
  if (index < 0) return;
  check_device_index(index, "device guard");
  int cur = 0;
  BM_CUDA_CHECK(cudaGetDevice(&cur));
  if (cur != index) {
    BM_CUDA_CHECK(cudaSetDevice(index));
    previous_ = cur;
  }
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);  // never throws from a destructor
}

Stream current_stream(int device) {
  const int d = resolve(device, "current_stream");
  return Stream{d, t_current_streams[d]};
}

Stream default_stream(int device) { return Stream{resolve(device, "default_stream"), nullptr}; }

void set_current_stream(Stream stream) {
  check_device_index(stream.device, "set_stream");
  t_current_streams[stream.device] = stream.handle;
}

Stream create_stream(int device, int priority) {
  const int d = resolve(device, "Stream");
  DeviceGuard guard(d);
  int least = 0, greatest = 0;
  BM_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  // CUDA numbers priorities downwards (greatest is the most negative); clamp into range.
  int p = priority < greatest ? greatest : (priority > least ? least : priority);
  cudaStream_t s = nullptr;
  BM_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, p));
  return Stream{d, s};
}

void stream_synchronize(Stream stream) {
  DeviceGuard guard(stream.device);
  BM_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream.handle)));
}

bool stream_query(Stream stream) {
  DeviceGuard guard(stream.device);
  cudaError_t e = cudaStreamQuery(static_cast<cudaStream_t>(stream.handle));
  if (e == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  BM_CUDA_CHECK(e);
  return true;
}

Event::Event(bool enable_timing, int device) : device_(resolve(device, "Event")), timing_(enable_timing) {
  DeviceGuard guard(device_);
  cudaEvent_t e = nullptr;
  BM_CUDA_CHECK(cudaEventCreateWithFlags(&e, enable_timing ? cudaEventDefault : cudaEventDisableTiming));
  handle_ = e;
}

Event::~Event() {
  if (handle_) cudaEventDestroy(static_cast<cudaEvent_t>(handle_));
}

void Event::record(Stream stream) {
  BM_CHECK_DEVICE(stream.device == device_, "Event.record", "event was created on cuda:", device_,
                  ", stream is on cuda:", stream.device);
  DeviceGuard guard(device_);
  BM_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(handle_), static_cast<cudaStream_t>(stream.handle)));
}

void Event::synchronize() const { BM_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(handle_))); }

bool Event::query() const {
  cudaError_t e = cudaEventQuery(static_cast<cudaEvent_t>(handle_));
  if (e == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  BM_CUDA_CHECK(e);
  return true;
}

void Event::wait(Stream stream) const {
  DeviceGuard guard(stream.device);
  BM_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream.handle), static_cast<cudaEvent_t>(handle_), 0));
}

float Event::elapsed_ms(const Event& end) const {
  BM_CHECK_VALUE(timing_ && end.timing_, "Event.elapsed_time", "both events need enable_timing=True");
  float ms = 0.f;
  BM_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(handle_), static_cast<cudaEvent_t>(end.handle_)));
  return ms;
}

}  // namespace bigmodel::cuda
