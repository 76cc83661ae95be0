// CUDA-on-CPU emulation: the CUDA runtime API calls bigmodel makes, over host memory
// (-DBIGMODEL_CUDA=EMULATE only; this replaces libcudart in that build). Device memory is
// malloc'ed host memory capped at BIGMODEL_EMU_MEM_MB (default 4096), so out-of-memory paths
// run too; by default copies and launches finish before the call returns. With
// BIGMODEL_EMU_ASYNC=1 they are queued per stream and run when CUDA's semantics force them
// (emu_streams.cpp); each call below then forwards to its async_* counterpart.
// Under AddressSanitizer (memcheck builds) a block's bytes past the requested size are
// poisoned, so with BIGMODEL_CUDA_CACHING=0 (one cudaMalloc per tensor) any access past a
// tensor's end, by a kernel or by a copy, is reported.
// BIGMODEL_EMU_DEVICES=N (default 1) makes N emulated devices (ordinals 0..N-1, each with the
// same properties; memory stays one shared pool), so several processes of one host can each
// take "their" GPU, as the emulated NCCL (emu_nccl.cpp) checks.
#include <cuda.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include "tests/cuda_emu/emu_streams.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

namespace bm_emu {
void set_func_max_dynamic_smem(const void* kernel, int bytes);
cudaError_t take_last_error();
cudaError_t peek_last_error();
const char* last_error_message();
CUresult encode_tensor_map_tiled(CUtensorMap* map, CUtensorMapDataType dtype, cuuint32_t rank, void* base,
                                 const cuuint64_t* dims, const cuuint64_t* strides, const cuuint32_t* box,
                                 const cuuint32_t* elem_strides, CUtensorMapInterleave interleave,
                                 CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2, CUtensorMapFloatOOBfill fill);
}  // namespace bm_emu

namespace {

std::mutex g_mem_mutex;
std::unordered_map<void*, size_t> g_device_blocks;
size_t g_device_used = 0;
thread_local int t_device = 0;

size_t device_capacity() {
  static const size_t cap = [] {
    const char* e = std::getenv("BIGMODEL_EMU_MEM_MB");
    const long mb = e && *e ? std::atol(e) : 4096;
    return static_cast<size_t>(mb > 0 ? mb : 4096) << 20;
  }();
  return cap;
}

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

int emulated_device_count() {
  static const int n = [] {
    const char* e = std::getenv("BIGMODEL_EMU_DEVICES");
    const int v = e && *e ? std::atoi(e) : 1;
    if (v < 1 || v > 64) {
      std::fprintf(stderr, "[cuda-emu] BIGMODEL_EMU_DEVICES=%s: expected 1..64\n", e);
      std::abort();
    }
    return v;
  }();
  return n;
}

cudaError_t check_device(int d) { return d >= 0 && d < emulated_device_count() ? cudaSuccess : cudaErrorInvalidDevice; }

// The emulated compute capability: BIGMODEL_EMU_CC=90 (default; Hopper, as the H200 the device
// checks run on: the wgmma GEMM is chosen where it applies) or 80 (only the sm_80 kernels).
int compute_capability() {
  static const int cc = [] {
    const char* e = std::getenv("BIGMODEL_EMU_CC");
    const int v = e && *e ? std::atoi(e) : 90;
    if (v != 80 && v != 90) {
      std::fprintf(stderr, "[cuda-emu] BIGMODEL_EMU_CC=%s: only 80 and 90 are emulated\n", e);
      std::abort();
    }
    return v;
  }();
  return cc;
}

}  // namespace

int& bm_emu::current_device_ref() { return t_device; }

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  *count = emulated_device_count();
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = t_device;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  if (check_device(device) != cudaSuccess) return cudaErrorInvalidDevice;
  t_device = device;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
  if (bm_emu::async_mode()) return bm_emu::async_device_sync();
  bm_emu::external_device_wait(t_device);  // collectives still running on the device's streams
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device) {
  if (check_device(device) != cudaSuccess) return cudaErrorInvalidDevice;
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = 4; break;  // small grids keep emulation quick
    case cudaDevAttrComputeCapabilityMajor: *value = compute_capability() / 10; break;
    case cudaDevAttrComputeCapabilityMinor: *value = compute_capability() % 10; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 227 * 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; break;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrL2CacheSize: *value = 40 << 20; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = 2048; break;
    default: *value = 0; break;
  }
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp* prop, int device) {
  if (check_device(device) != cudaSuccess) return cudaErrorInvalidDevice;
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "bigmodel CUDA emulator");
  prop->major = compute_capability() / 10;
  prop->minor = compute_capability() % 10;
  prop->multiProcessorCount = 4;
  prop->totalGlobalMem = device_capacity();
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = 227 * 1024;
  prop->maxThreadsPerBlock = 1024;
  prop->warpSize = 32;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetStreamPriorityRange(int* least, int* greatest) {
  if (least) *least = 0;
  if (greatest) *greatest = -5;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}

// ---- memory ------------------------------------------------------------------------------------
cudaError_t cudaMalloc(void** ptr, size_t size) {
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  *ptr = nullptr;
  const size_t rounded = (size + 255) / 256 * 256;
  if (rounded > device_capacity() - g_device_used) return cudaErrorMemoryAllocation;
  void* p = std::aligned_alloc(256, rounded == 0 ? 256 : rounded);
  if (!p) return cudaErrorMemoryAllocation;
  std::memset(p, 0xCD, size);  // fresh device memory is not zero on a GPU either
  // The round-up tail keeps cudaMalloc's 256-byte granularity but is nobody's memory.
  ASAN_POISON_MEMORY_REGION(static_cast<char*>(p) + size, (rounded == 0 ? 256 : rounded) - size);
  g_device_blocks[p] = rounded;
  g_device_used += rounded;
  if (bm_emu::async_mode()) bm_emu::note_device_block(p, rounded == 0 ? 256 : rounded, true);
  *ptr = p;
  return cudaSuccess;
}
cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  // cudaFree synchronizes the device (documented implicit synchronization).
  if (bm_emu::async_mode() && !bm_emu::in_stream_job()) bm_emu::drain(-1);
  if (!bm_emu::async_mode()) bm_emu::external_device_wait(-1);
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  auto it = g_device_blocks.find(ptr);
  if (it == g_device_blocks.end()) return cudaErrorInvalidValue;
  g_device_used -= it->second;
  g_device_blocks.erase(it);
  if (bm_emu::async_mode()) bm_emu::note_device_block(ptr, 0, false);
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  *total = device_capacity();
  *free_bytes = device_capacity() - g_device_used;
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int) {
  *ptr = std::aligned_alloc(256, (size + 255) / 256 * 256 + 256);
  if (*ptr && bm_emu::async_mode()) bm_emu::note_pinned(*ptr, size, true);  // copies to and from it are fully asynchronous
  return *ptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaMallocHost(void** ptr, size_t size) { return cudaHostAlloc(ptr, size, 0); }
cudaError_t cudaFreeHost(void* ptr) {
  if (!ptr) return cudaSuccess;
  if (bm_emu::async_mode() && !bm_emu::in_stream_job()) bm_emu::drain(-1);  // an implicit sync too
  if (!bm_emu::async_mode()) bm_emu::external_device_wait(-1);
  if (bm_emu::async_mode()) bm_emu::note_pinned(ptr, 0, false);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind) {
  if (bm_emu::async_mode()) return bm_emu::async_memcpy(dst, src, count, kind, nullptr, true);
  bm_emu::wait_external(nullptr);  // the legacy stream: after collectives it depends on
  if (count) std::memmove(dst, src, count);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind, cudaStream_t s) {
  if (bm_emu::async_mode()) return bm_emu::async_memcpy(dst, src, count, kind, s, false);
  bm_emu::wait_external(s);
  if (count) std::memmove(dst, src, count);
  return cudaSuccess;
}
cudaError_t cudaMemcpyPeerAsync(void* dst, int, const void* src, int, size_t count, cudaStream_t s) {
  if (bm_emu::async_mode()) return bm_emu::async_memcpy(dst, src, count, cudaMemcpyDeviceToDevice, s, false);
  bm_emu::wait_external(s);
  if (count) std::memmove(dst, src, count);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* dst, int value, size_t count) {
  if (bm_emu::async_mode()) return bm_emu::async_memset(dst, value, count, nullptr);
  bm_emu::wait_external(nullptr);
  if (count) std::memset(dst, value, count);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t count, cudaStream_t s) {
  if (bm_emu::async_mode()) return bm_emu::async_memset(dst, value, count, s);
  bm_emu::wait_external(s);
  if (count) std::memset(dst, value, count);
  return cudaSuccess;
}

// ---- streams and events ------------------------------------------------------------------------
// Priorities are kept, not acted on: the async mode's order does not follow them.
cudaError_t cudaStreamCreateWithPriority(cudaStream_t* s, unsigned int flags, int priority) {
  *s = new CUstream_st{};
  (*s)->priority = priority;
  (*s)->flags = flags;
  (*s)->device = t_device;
  if (bm_emu::async_mode()) bm_emu::register_stream(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags) {
  return cudaStreamCreateWithPriority(s, flags, 0);
}
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithPriority(s, 0, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (bm_emu::async_mode()) return bm_emu::async_stream_destroy(s);
  bm_emu::external_stream_destroyed(s);  // its pending external work lives on in events
  delete s;
  return cudaSuccess;
}
// Default mode: a stream is idle unless a collective of the emulated NCCL (external work,
// emu_streams.h) is still running on it or on what it waits for.
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if (bm_emu::async_mode()) return bm_emu::async_stream_sync(s);
  bm_emu::wait_external(s);
  return cudaSuccess;
}
cudaError_t cudaStreamQuery(cudaStream_t s) {
  if (bm_emu::async_mode()) return bm_emu::async_stream_query(s);
  return bm_emu::external_pending(s) ? cudaErrorNotReady : cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int) {
  if (bm_emu::async_mode()) return bm_emu::async_stream_wait_event(s, e);
  bm_emu::external_stream_wait_event(s, e);
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int flags) {
  *e = new CUevent_st{};
  (*e)->flags = flags;
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  if (bm_emu::async_mode()) return bm_emu::async_event_destroy(e);
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (bm_emu::async_mode()) return bm_emu::async_event_record(e, s);
  e->ms = now_ms();
  e->recorded = true;
  bm_emu::external_event_record(e, s);
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  if (bm_emu::async_mode()) return bm_emu::async_event_query(e);
  return bm_emu::external_event_pending(e) ? cudaErrorNotReady : cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (bm_emu::async_mode()) return bm_emu::async_event_sync(e);
  bm_emu::external_event_wait(e);
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (bm_emu::async_mode() && (!bm_emu::async_event_complete(start) || !bm_emu::async_event_complete(end)))
    return cudaErrorNotReady;  // documented: recorded, not yet completed
  if (!bm_emu::async_mode() && (bm_emu::external_event_pending(start) || bm_emu::external_event_pending(end)))
    return cudaErrorNotReady;
  if (!start->recorded || !end->recorded) return cudaErrorInvalidResourceHandle;
  *ms = static_cast<float>(end->ms - start->ms);
  return cudaSuccess;
}

// ---- kernels and errors ----------------------------------------------------------------------------
cudaError_t cudaFuncSetAttribute(const void* func, enum cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || value > 227 * 1024) return cudaErrorInvalidValue;
    bm_emu::set_func_max_dynamic_smem(func, value);
  }
  return cudaSuccess;
}
cudaError_t cudaGetLastError(void) { return bm_emu::take_last_error(); }
cudaError_t cudaPeekAtLastError(void) { return bm_emu::peek_last_error(); }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    default: return "cudaError(emulated)";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  // A kernel fault carries the emulator's own account (kernel, block, thread, reason).
  if (e == cudaErrorLaunchFailure || e == cudaErrorInvalidConfiguration) {
    const char* m = bm_emu::last_error_message();
    if (m && *m) return m;
  }
  return cudaGetErrorName(e);
}

// The one driver entry point bigmodel asks for: the tensor-map encoder of the TMA GEMM.
cudaError_t cudaGetDriverEntryPointByVersion(const char* symbol, void** fn, unsigned int, unsigned long long,
                                             enum cudaDriverEntryPointQueryResult* status) {
  if (symbol && std::strcmp(symbol, "cuTensorMapEncodeTiled") == 0) {
    *fn = reinterpret_cast<void*>(&bm_emu::encode_tensor_map_tiled);
    if (status) *status = cudaDriverEntryPointSuccess;
    return cudaSuccess;
  }
  *fn = nullptr;
  if (status) *status = cudaDriverEntryPointSymbolNotFound;
  return cudaErrorNotSupported;
}

}  // extern "C"
