// CUDA-on-CPU emulation: the stream queues of the opt-in asynchronous mode
// (BIGMODEL_EMU_ASYNC=1; -DBIGMODEL_CUDA=EMULATE builds only). Work issued on a stream is
// kept in the stream's FIFO and runs only when the CUDA Runtime's documented semantics force
// it, on the thread that forces it: a synchronize, the second poll of a query (the first says
// cudaErrorNotReady), a copy that is synchronous with respect to the host, cudaFree. So a
// missing cudaStreamWaitEvent, a legacy-stream copy that does not wait for a non-blocking
// stream, or a buffer reused before its queued reader ran gives a wrong result in a test.
// The legacy default stream waits for, and is waited for by, the blocking streams of its
// device (captured as edges when the work is enqueued); non-blocking streams are independent.
#include "tests/cuda_emu/emu_streams.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>

namespace bm_emu {
cudaError_t take_last_error();
const char* last_error_message();

namespace {

constexpr int kMaxDevices = 64;

std::recursive_mutex g_q;  // every queue, every stream's counters, the event fields of async mode
std::vector<CUstream_st*> g_streams;  // created streams still alive or with work pending
CUstream_st g_legacy[kMaxDevices];
bool g_legacy_init = false;
thread_local int t_in_job = 0;
cudaError_t g_sticky = cudaSuccess;
std::string g_sticky_msg;

std::mutex g_ranges_mutex;
std::map<uintptr_t, size_t> g_pinned, g_device;

// Read on first use (a launch from another file's static initializer may come first).
bool& async_flag() {
  static bool on = [] {
    const char* e = std::getenv("BIGMODEL_EMU_ASYNC");
    return e && *e && std::strcmp(e, "0") != 0;
  }();
  return on;
}

CUstream_st* legacy(int device) {
  static const bool init = [] {  // thread-safe: the default mode's external work uses it too
    for (int d = 0; d < kMaxDevices; ++d) {
      g_legacy[d].device = d;
      g_legacy[d].legacy = true;
    }
    g_legacy_init = true;
    return true;
  }();
  (void)init;
  return &g_legacy[device];
}

CUstream_st* resolve(cudaStream_t s) {
  // cudaStreamPerThread is not used by bigmodel; it is taken as the legacy stream here.
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return legacy(current_device_ref());
  return s;
}

bool pending(const CUstream_st* s, uint64_t n) { return s->done < n; }

void run_job(CUstream_st* s, StreamJob& job) {
  if (!job.fn) return;
  int& dev = current_device_ref();
  const int saved_dev = dev;
  const cudaError_t saved_err = take_last_error();
  const std::string saved_msg = last_error_message();
  dev = s->device;
  ++t_in_job;
  job.fn();
  --t_in_job;
  const cudaError_t e = take_last_error();
  if (e != cudaSuccess && g_sticky == cudaSuccess) {
    g_sticky = e;
    g_sticky_msg = last_error_message();
    std::fprintf(stderr, "[cuda-emu] async: %s failed while running on its stream (%s); reported by the next "
                         "synchronizing call\n", job.what.c_str(), g_sticky_msg.c_str());
  }
  set_last_error(saved_err, saved_msg);
  dev = saved_dev;
}

// Runs s's jobs up to number n, each after the jobs it waits for (the edges always point at
// jobs enqueued earlier, so this never cycles). A job with external work (a collective)
// counts as run once that work has finished: with `block` false this stops there and returns
// false (queries must not block: the caller may be the one that would abort the work).
bool complete_locked(CUstream_st* s, uint64_t n, bool block = true) {
  while (pending(s, n)) {
    for (auto& [t, m] : s->queue.front().deps)
      if (!complete_locked(t, m, block)) return false;
    StreamJob& job = s->queue.front();
    if (!job.started) {
      job.started = true;
      run_job(s, job);
    }
    if (job.ext && !job.ext->done.load()) {
      if (!block) return false;
      ExternalPtr ext = job.ext;
      ext->wait();
    }
    s->queue.pop_front();
    ++s->done;
  }
  return true;
}

enum class Order { forward, reverse, shuffled };
Order drain_order() {
  const char* e = std::getenv("BIGMODEL_EMU_ORDER");
  if (!e || !*e || std::strcmp(e, "forward") == 0) return Order::forward;
  if (std::strcmp(e, "reverse") == 0) return Order::reverse;
  return Order::shuffled;
}

void drain_locked(int device) {
  // The streams in creation order (legacy ones first), reversed or shuffled as
  // BIGMODEL_EMU_ORDER says, so two streams racing on one buffer land in a different order.
  std::vector<CUstream_st*> all;
  for (int d = 0; d < kMaxDevices; ++d)
    if ((device < 0 || d == device) && g_legacy_init && pending(&g_legacy[d], g_legacy[d].enqueued))
      all.push_back(&g_legacy[d]);
  for (CUstream_st* s : g_streams)
    if ((device < 0 || s->device == device) && pending(s, s->enqueued)) all.push_back(s);
  const Order o = drain_order();
  if (o == Order::reverse) std::reverse(all.begin(), all.end());
  if (o == Order::shuffled) {
    static std::mt19937 rng(777);
    std::shuffle(all.begin(), all.end(), rng);
  }
  for (CUstream_st* s : all) complete_locked(s, s->enqueued);
  // Destroyed streams with nothing left are dropped from the list (the objects stay: an
  // event may still name them).
  g_streams.erase(std::remove_if(g_streams.begin(), g_streams.end(),
                                 [](CUstream_st* s) { return s->destroyed && !pending(s, s->enqueued); }),
                  g_streams.end());
}

cudaError_t report() {
  if (g_sticky == cudaSuccess) return cudaSuccess;
  const cudaError_t e = g_sticky;
  set_last_error(e, g_sticky_msg);
  g_sticky = cudaSuccess;
  return e;
}

bool in_range(const std::map<uintptr_t, size_t>& m, const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  auto it = m.upper_bound(a);
  if (it == m.begin()) return false;
  --it;
  return a < it->first + std::max<size_t>(it->second, 1);
}

}  // namespace

bool async_mode() { return async_flag(); }
bool set_async_mode(bool on) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  drain_locked(-1);
  const bool old = async_flag();
  // Off: the default mode's cudaStreamDestroy deletes streams, so none may stay listed.
  if (!on) g_streams.clear();
  async_flag() = on;
  return old;
}
bool in_stream_job() { return t_in_job > 0; }

void register_stream(CUstream_st* s) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  s->device = current_device_ref();
  g_streams.push_back(s);
}

uint64_t enqueue(cudaStream_t stream, std::string what, std::function<void()> fn) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  CUstream_st* s = resolve(stream);
  StreamJob job{std::move(fn), {}, std::move(what), nullptr, false};
  if (s->legacy) {
    // Work on the legacy stream waits for all earlier work of the device's blocking streams.
    for (CUstream_st* b : g_streams)
      if (b->device == s->device && !(b->flags & cudaStreamNonBlocking) && pending(b, b->enqueued))
        job.deps.emplace_back(b, b->enqueued);
  } else if (!(s->flags & cudaStreamNonBlocking)) {
    CUstream_st* l = legacy(s->device);
    if (pending(l, l->enqueued)) job.deps.emplace_back(l, l->enqueued);
  }
  if (t_in_job) {
    // Issued by a running job (a library's own copies): it is already in stream order.
    if (job.fn) job.fn();
    return s->done;
  }
  s->queue.push_back(std::move(job));
  return ++s->enqueued;
}

void complete(cudaStream_t stream, uint64_t n) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  CUstream_st* s = resolve(stream);
  complete_locked(s, n ? n : s->enqueued);
}

void drain(int device) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  drain_locked(device);
}

cudaError_t take_sticky_error() {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  return report();
}

void on_stream(cudaStream_t s, const char* what, std::function<void()> fn) {
  if (!async_mode()) {
    wait_external(s);
    fn();
    return;
  }
  enqueue(s, what, std::move(fn));
}

void note_pinned(void* p, size_t n, bool add) {
  std::lock_guard<std::mutex> lock(g_ranges_mutex);
  if (add) g_pinned[reinterpret_cast<uintptr_t>(p)] = n;
  else g_pinned.erase(reinterpret_cast<uintptr_t>(p));
}
bool is_pinned(const void* p) {
  std::lock_guard<std::mutex> lock(g_ranges_mutex);
  return in_range(g_pinned, p);
}
void note_device_block(void* p, size_t n, bool add) {
  std::lock_guard<std::mutex> lock(g_ranges_mutex);
  if (add) g_device[reinterpret_cast<uintptr_t>(p)] = n;
  else g_device.erase(reinterpret_cast<uintptr_t>(p));
}
bool is_device_ptr(const void* p) {
  std::lock_guard<std::mutex> lock(g_ranges_mutex);
  return in_range(g_device, p);
}

// ---- the runtime calls in async mode ---------------------------------------------------------
// "API synchronization behavior" (CUDA Runtime API): cudaMemcpyAsync from pageable host memory
// stages the source at once; to pageable host memory it returns once the copy is done; pinned
// memory is fully asynchronous; device to device never waits. The synchronous cudaMemcpy runs
// on the legacy stream and returns when a copy to the host is done (from pageable host memory
// once the source is staged; device to device at once).
cudaError_t async_memcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s, bool sync_api) {
  if (n == 0) return cudaSuccess;
  if (kind == cudaMemcpyDefault) {
    const bool d_dev = is_device_ptr(dst), s_dev = is_device_ptr(src);
    kind = d_dev ? (s_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                 : (s_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  }
  if (sync_api) s = nullptr;
  if (kind == cudaMemcpyHostToHost) {  // "fully synchronous with respect to the host"
    complete(s);
    std::memmove(dst, src, n);
    return take_sticky_error();
  }
  std::lock_guard<std::recursive_mutex> lock(g_q);
  if (kind == cudaMemcpyHostToDevice && !is_pinned(src)) {
    auto staged = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(src),
                                                               static_cast<const unsigned char*>(src) + n);
    enqueue(s, "cudaMemcpy(HostToDevice, pageable)", [dst, staged] { std::memmove(dst, staged->data(), staged->size()); });
    return take_sticky_error();
  }
  const uint64_t seq = enqueue(s, "cudaMemcpy", [dst, src, n] { std::memmove(dst, src, n); });
  const bool host_waits = kind == cudaMemcpyDeviceToHost ? (sync_api || !is_pinned(dst))
                                                         : (kind == cudaMemcpyHostToDevice && sync_api);
  if (host_waits) complete(s, seq);
  return take_sticky_error();
}

// "The cudaMemset functions are asynchronous with respect to the host except when the target
// memory is pinned host memory": cudaMemset is cudaMemsetAsync on the legacy stream.
cudaError_t async_memset(void* dst, int value, size_t n, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  std::lock_guard<std::recursive_mutex> lock(g_q);
  const uint64_t seq = enqueue(s, "cudaMemset", [dst, value, n] { std::memset(dst, value, n); });
  if (is_pinned(dst)) complete(s, seq);
  return take_sticky_error();
}

cudaError_t async_stream_sync(cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  complete(s);
  return report();
}

// A query says "not ready" once for the work it finds pending; the next query for the same
// work runs it, so a polling loop makes progress without running anything early.
cudaError_t async_stream_query(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  CUstream_st* s = resolve(stream);
  if (!pending(s, s->enqueued)) return report();
  if (s->reported < s->enqueued) {
    s->reported = s->enqueued;
    return cudaErrorNotReady;
  }
  if (!complete_locked(s, s->enqueued, false)) return cudaErrorNotReady;
  return report();
}

cudaError_t async_stream_wait_event(cudaStream_t stream, cudaEvent_t e) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  if (!e->stream) return cudaSuccess;  // never recorded: nothing to wait for
  CUstream_st* s = resolve(stream);
  if (!pending(e->stream, e->seq)) return cudaSuccess;
  StreamJob job{{}, {{e->stream, e->seq}}, "cudaStreamWaitEvent", nullptr, false};
  s->queue.push_back(std::move(job));
  ++s->enqueued;
  return cudaSuccess;
}

cudaError_t async_stream_destroy(cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  // "If the device is still doing work in the stream, the function returns immediately and the
  // resources are released once the device has completed all work": kept until drained.
  s->destroyed = true;
  if (!pending(s, s->enqueued)) {
    g_streams.erase(std::remove(g_streams.begin(), g_streams.end(), s), g_streams.end());
    // Not deleted: an event recorded on it may still name it.
  }
  return cudaSuccess;
}

cudaError_t async_event_record(cudaEvent_t e, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  CUstream_st* s = resolve(stream);
  ++e->pending_records;
  const uint64_t seq = enqueue(stream, "cudaEventRecord", [e] {
    e->ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
    e->recorded = true;
    if (--e->pending_records == 0 && e->destroyed) delete e;
  });
  e->stream = s;
  e->seq = seq;
  return cudaSuccess;
}

bool async_event_complete(cudaEvent_t e) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  return !e->stream || !pending(e->stream, e->seq);
}

cudaError_t async_event_query(cudaEvent_t e) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  if (async_event_complete(e)) return report();
  if (e->reported_stream != e->stream || e->reported_seq != e->seq) {
    e->reported_stream = e->stream;
    e->reported_seq = e->seq;
    return cudaErrorNotReady;
  }
  if (!complete_locked(e->stream, e->seq, false)) return cudaErrorNotReady;
  return report();
}

cudaError_t async_event_sync(cudaEvent_t e) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  if (e->stream) complete_locked(e->stream, e->seq);
  return report();
}

cudaError_t async_event_destroy(cudaEvent_t e) {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  // Released once its pending record has run ("cudaEventDestroy ... returns immediately").
  if (e->pending_records > 0) e->destroyed = true;
  else delete e;
  return cudaSuccess;
}

cudaError_t async_device_sync() {
  std::lock_guard<std::recursive_mutex> lock(g_q);
  drain_locked(current_device_ref());
  return report();
}

// ---- external work (collectives running on a library's own thread) -----------------------
namespace {

std::mutex g_ext_mutex;  // default mode: the ext lists of streams and events, g_ext_all
std::vector<std::weak_ptr<ExternalWork>> g_ext_all;  // every unfinished external work
std::atomic<size_t> g_ext_count{0};                  // g_ext_all.size(): the cheap "none" test
std::vector<CUstream_st*> g_ext_streams;  // created streams that have had external work to wait for

void note_stream_locked(CUstream_st* s) {
  if (!s->legacy && std::find(g_ext_streams.begin(), g_ext_streams.end(), s) == g_ext_streams.end())
    g_ext_streams.push_back(s);
}

void prune(std::vector<ExternalPtr>& v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](const ExternalPtr& w) { return w->done.load(); }), v.end());
}

void prune_all_locked() {
  g_ext_all.erase(std::remove_if(g_ext_all.begin(), g_ext_all.end(),
                                 [](const std::weak_ptr<ExternalWork>& w) {
                                   auto p = w.lock();
                                   return !p || p->done.load();
                                 }),
                  g_ext_all.end());
  g_ext_count.store(g_ext_all.size());
}

// What work issued on `s` now must follow: its own unfinished external work and, by the
// legacy default stream's rules, that of the blocking streams of its device (for the legacy
// stream) or of the legacy stream (for a blocking stream).
std::vector<ExternalPtr> pending_of_locked(CUstream_st* s) {
  prune(s->ext);
  std::vector<ExternalPtr> out = s->ext;
  if (s->legacy) {
    for (CUstream_st* b : g_ext_streams) {
      if (b->device != s->device || (b->flags & cudaStreamNonBlocking)) continue;
      prune(b->ext);
      for (const auto& w : b->ext)
        if (std::find(out.begin(), out.end(), w) == out.end()) out.push_back(w);
    }
  } else if (!(s->flags & cudaStreamNonBlocking)) {
    CUstream_st* l = legacy(s->device);
    prune(l->ext);
    out.insert(out.end(), l->ext.begin(), l->ext.end());
  }
  return out;
}

}  // namespace

void library_call_waits(cudaStream_t s) {
  if (async_mode()) complete(s);
  else wait_external(s);
}

void enqueue_external(cudaStream_t stream, const ExternalPtr& w) {
  if (async_mode()) {
    std::lock_guard<std::recursive_mutex> lock(g_q);
    CUstream_st* s = resolve(stream);
    w->device = s->device;
    if (t_in_job) {  // issued by a running job: already in stream order
      w->ready.store(true);
      return;
    }
    ExternalWork* raw = w.get();  // the job holds `w`
    w->stream = s;
    w->seq = enqueue(stream, w->what, [raw] { raw->ready.store(true); });
    s->queue.back().ext = w;
    return;
  }
  std::lock_guard<std::mutex> lock(g_ext_mutex);
  CUstream_st* s = resolve(stream);
  w->device = s->device;
  w->after = pending_of_locked(s);
  w->ready.store(true);
  s->ext.push_back(w);
  note_stream_locked(s);
  g_ext_all.push_back(w);
  g_ext_count.store(g_ext_all.size());
}

void kick_external(const ExternalPtr& w, bool try_only) {
  if (!async_mode() || w->ready.load()) return;
  std::unique_lock<std::recursive_mutex> lock(g_q, std::defer_lock);
  if (try_only) {
    if (!lock.try_lock()) return;
  } else {
    lock.lock();
  }
  if (w->stream) complete_locked(w->stream, w->seq, false);
}

void wait_external(cudaStream_t stream) {
  if (g_ext_count.load() == 0) return;
  std::vector<ExternalPtr> deps;
  {
    std::lock_guard<std::mutex> lock(g_ext_mutex);
    deps = pending_of_locked(resolve(stream));
  }
  for (const auto& w : deps) w->wait();  // without the lock: the work may finish any time
  std::lock_guard<std::mutex> lock(g_ext_mutex);
  prune_all_locked();
}

bool external_pending(cudaStream_t stream) {
  if (g_ext_count.load() == 0) return false;
  std::lock_guard<std::mutex> lock(g_ext_mutex);
  return !pending_of_locked(resolve(stream)).empty();
}

void external_event_record(cudaEvent_t e, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_ext_mutex);
  e->ext.clear();
  if (g_ext_count.load() > 0) e->ext = pending_of_locked(resolve(stream));
}

bool external_event_pending(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(g_ext_mutex);
  prune(e->ext);
  return !e->ext.empty();
}

void external_event_wait(cudaEvent_t e) {
  std::vector<ExternalPtr> deps;
  {
    std::lock_guard<std::mutex> lock(g_ext_mutex);
    deps = e->ext;
  }
  for (const auto& w : deps) w->wait();
}

void external_stream_wait_event(cudaStream_t stream, cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(g_ext_mutex);
  prune(e->ext);
  if (e->ext.empty()) return;
  CUstream_st* s = resolve(stream);
  for (const auto& w : e->ext)
    if (std::find(s->ext.begin(), s->ext.end(), w) == s->ext.end()) s->ext.push_back(w);
  note_stream_locked(s);
}

void external_stream_destroyed(cudaStream_t s) {
  std::lock_guard<std::mutex> lock(g_ext_mutex);
  g_ext_streams.erase(std::remove(g_ext_streams.begin(), g_ext_streams.end(), s), g_ext_streams.end());
}

void external_device_wait(int device) {
  if (g_ext_count.load() == 0) return;
  std::vector<ExternalPtr> deps;
  {
    std::lock_guard<std::mutex> lock(g_ext_mutex);
    for (const auto& weak : g_ext_all)
      if (auto w = weak.lock(); w && !w->done.load() && (device < 0 || w->device == device)) deps.push_back(w);
  }
  for (const auto& w : deps) w->wait();
  std::lock_guard<std::mutex> lock(g_ext_mutex);
  prune_all_locked();
}

}  // namespace bm_emu
