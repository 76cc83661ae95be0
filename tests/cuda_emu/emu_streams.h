// CUDA-on-CPU emulation: streams, events and the opt-in asynchronous mode
// (BIGMODEL_EMU_ASYNC=1). Shared by emu_cudart.cpp (the runtime calls), emu_runtime.cpp /
// cuda_emu.h (kernel launches) and the emulated libraries (their work on a stream).
// Default mode: nothing here defers anything; every call runs at once, as before.
// Async mode: each stream keeps a FIFO of jobs that run only when CUDA's documented
// semantics force them (a synchronize, a query's second poll, a synchronous copy, cudaFree...).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

struct CUstream_st;

namespace bm_emu {

// A job runs when its stream reaches it and every (stream, n) prerequisite has run n jobs.
struct StreamJob {
  std::function<void()> fn;  // empty: a marker (an event record or a wait)
  std::vector<std::pair<CUstream_st*, uint64_t>> deps;
  std::string what;
};

}  // namespace bm_emu

struct CUstream_st {
  int priority = 0;
  unsigned flags = 0;  // cudaStreamNonBlocking or cudaStreamDefault
  int device = 0;
  bool legacy = false;     // the legacy default stream of `device`
  bool destroyed = false;  // destroyed with work pending: freed never (events may name it)
  uint64_t enqueued = 0, done = 0;  // jobs ever enqueued / run; job i (1-based) is done when done >= i
  uint64_t reported = 0;            // cudaStreamQuery said "not ready" for work up to this job
  std::deque<bm_emu::StreamJob> queue;
};

struct CUevent_st {
  double ms = 0;
  bool recorded = false;
  unsigned flags = 0;
  // Async mode: the last record (its stream and job number), how many records still queued,
  // and up to which job a query already answered "not ready".
  CUstream_st* stream = nullptr;
  uint64_t seq = 0;
  int pending_records = 0;
  bool destroyed = false;
  CUstream_st* reported_stream = nullptr;
  uint64_t reported_seq = 0;
};

namespace bm_emu {

bool async_mode();
// Tests only: switches the mode at run time (drains every queue first). Returns the old mode.
bool set_async_mode(bool on);
// The calling thread's current device (emu_cudart.cpp's t_device).
int& current_device_ref();

// True inside a job being run: work issued from there runs at once (it is already ordered).
bool in_stream_job();

// Async mode only. Enqueues `fn` on `s` (nullptr / cudaStreamLegacy: the legacy default
// stream of the current device) with the legacy-stream edges; returns the job's number.
uint64_t enqueue(cudaStream_t s, std::string what, std::function<void()> fn);
// Runs `s`'s queue up to job `n` (0: all it holds), with whatever it waits for.
void complete(cudaStream_t s, uint64_t n = 0);
// Runs every queue (of `device`, or of all devices when device < 0).
void drain(int device);
// The sticky error of a job that failed while running, reported once by the next
// synchronizing call (cudaSuccess when none).
cudaError_t take_sticky_error();

// Library entry points that take a stream: in default mode runs `fn` now; in async mode
// enqueues it on the stream like a kernel (arguments must be captured by value).
void on_stream(cudaStream_t s, const char* what, std::function<void()> fn);
// Library calls that read device data at call time (their checks) or block (collectives): in
// async mode they first run what `s` holds, then run at once (not deferred themselves).
inline void library_call_waits(cudaStream_t s) {
  if (async_mode()) complete(s);
}

// Host allocations of cudaHostAlloc/cudaMallocHost (pinned, so copies to and from them are
// fully asynchronous) and device allocations (to tell a cudaMemcpyDefault's direction).
void note_pinned(void* p, size_t n, bool add);
bool is_pinned(const void* p);
void note_device_block(void* p, size_t n, bool add);
bool is_device_ptr(const void* p);

// Runtime calls in async mode (emu_cudart.cpp forwards to these when async_mode()).
cudaError_t async_memcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s, bool sync_api);
cudaError_t async_memset(void* dst, int value, size_t n, cudaStream_t s);
cudaError_t async_stream_sync(cudaStream_t s);
cudaError_t async_stream_query(cudaStream_t s);
cudaError_t async_stream_wait_event(cudaStream_t s, cudaEvent_t e);
cudaError_t async_stream_destroy(cudaStream_t s);
cudaError_t async_event_record(cudaEvent_t e, cudaStream_t s);
cudaError_t async_event_query(cudaEvent_t e);
cudaError_t async_event_sync(cudaEvent_t e);
cudaError_t async_event_destroy(cudaEvent_t e);
bool async_event_complete(cudaEvent_t e);
cudaError_t async_device_sync();
void register_stream(CUstream_st* s);

// emu_runtime.cpp: the calling thread's last error, saved and restored around a job.
void set_last_error(cudaError_t e, const std::string& msg);

}  // namespace bm_emu
