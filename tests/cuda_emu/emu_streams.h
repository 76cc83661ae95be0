// CUDA-on-CPU emulation: streams, events and the opt-in asynchronous mode
// (BIGMODEL_EMU_ASYNC=1). Shared by emu_cudart.cpp (the runtime calls), emu_runtime.cpp /
// cuda_emu.h (kernel launches) and the emulated libraries (their work on a stream).
// Default mode: nothing here defers anything; every call runs at once, as before.
// Async mode: each stream keeps a FIFO of jobs that run only when CUDA's documented
// semantics force them (a synchronize, a query's second poll, a synchronous copy, cudaFree...).
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

struct CUstream_st;

namespace bm_emu {

// Work a library runs off the host thread, on a stream (the emulated NCCL's collectives run
// on a per-communicator worker): the stream is busy until finish(). In both modes an event
// recorded on the stream after it is not ready, syncs wait for it, cudaStreamWaitEvent passes
// it on, and later work of a dependent stream waits for it (by default the host blocks there).
// The owner's worker may start it once startable(): its stream has reached it (async mode:
// when the stream's queue runs its job; default mode: at once) and the work it follows has
// finished.
struct ExternalWork {
  std::string what;
  int device = 0;
  std::atomic<bool> ready{false}, done{false};
  std::vector<std::shared_ptr<ExternalWork>> after;  // default mode: the stream's earlier work
  CUstream_st* stream = nullptr;  // async mode: its job is number `seq` of `stream`
  uint64_t seq = 0;
  std::mutex m;
  std::condition_variable cv;

  bool startable() const {
    if (!ready.load()) return false;
    for (const auto& a : after)
      if (!a->done.load()) return false;
    return true;
  }
  void finish() {  // by the owner's worker (or after it stopped): nobody reads `after` then
    after.clear();
    std::lock_guard<std::mutex> lock(m);
    done.store(true);
    cv.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [this] { return done.load(); });
  }
};
using ExternalPtr = std::shared_ptr<ExternalWork>;

// A job runs when its stream reaches it and every (stream, n) prerequisite has run n jobs.
// A job with `ext` counts as run only once its external work has finished.
struct StreamJob {
  std::function<void()> fn;  // empty: a marker (an event record or a wait)
  std::vector<std::pair<CUstream_st*, uint64_t>> deps;
  std::string what;
  ExternalPtr ext;
  bool started = false;
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
  std::vector<bm_emu::ExternalPtr> ext;  // default mode: external work it waits for
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
  std::vector<bm_emu::ExternalPtr> ext;  // default mode: the external work its record follows
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
// Library calls that read device data at call time (their checks): in async mode they first
// run what `s` holds, then run at once (not deferred themselves); by default they wait for
// the stream's external work.
void library_call_waits(cudaStream_t s);

// ---- external work (ExternalWork above) ----
// Puts `w` on stream `s` (nullptr: the legacy stream of the current device). Default mode:
// ready at once, after the external work `s` already waits for. Async mode: a job of `s`'s
// queue; it becomes ready when the queue runs it, and later jobs wait until it finished.
void enqueue_external(cudaStream_t s, const ExternalPtr& w);
// Async mode: runs `w`'s stream up to `w` (and what that waits for) without blocking on
// external work, so `w` becomes ready: a GPU's stream makes progress without the host, and
// a peer rank may be waiting for `w`. try_only: only if the queues' lock is free at once (a
// library's worker thread: the host thread may hold it while it waits for that worker).
// No-op by default.
void kick_external(const ExternalPtr& w, bool try_only = false);
// Default mode: blocks until the external work that work issued on `s` now would follow has
// finished (kernel launches, copies, library calls, stream syncs). Cheap when there is none.
void wait_external(cudaStream_t s);
// Default mode: whether `s` / `e` still has unfinished external work; waits for an event's;
// records / passes on the dependencies; waits for a device's (device < 0: every device).
bool external_pending(cudaStream_t s);
void external_event_record(cudaEvent_t e, cudaStream_t s);
bool external_event_pending(cudaEvent_t e);
void external_event_wait(cudaEvent_t e);
void external_stream_wait_event(cudaStream_t s, cudaEvent_t e);
void external_device_wait(int device);
void external_stream_destroyed(cudaStream_t s);  // default mode's cudaStreamDestroy

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
