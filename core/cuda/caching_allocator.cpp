// Caching allocator bookkeeping: size classes, split/merge, per-stream reuse, events for
// cross-stream frees, statistics and the free-cache-and-retry path before OOM.
#include "core/cuda/caching_allocator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace bigmodel::cuda {

struct CachingAllocator::Block {
  char* ptr = nullptr;
  size_t size = 0;
  size_t requested = 0;
  StreamId stream = nullptr;
  bool allocated = false;
  bool small = false;             // which pool: fixed by the segment it lives in
  int pending_events = 0;         // events still to complete before it may be reused
  Block* prev = nullptr;          // neighbours inside the same segment
  Block* next = nullptr;
  std::vector<StreamId> stream_uses;  // other streams that used it (record_stream)

  bool is_free() const { return !allocated && pending_events == 0; }
  bool whole_segment() const { return prev == nullptr && next == nullptr; }
};

// Free blocks ordered by stream, then size, then address: lower_bound finds the best fit
// on one stream.
bool CachingAllocator::BlockOrder::operator()(const Block* a, const Block* b) const {
  if (a->stream != b->stream) return reinterpret_cast<uintptr_t>(a->stream) < reinterpret_cast<uintptr_t>(b->stream);
  if (a->size != b->size) return a->size < b->size;
  return reinterpret_cast<uintptr_t>(a->ptr) < reinterpret_cast<uintptr_t>(b->ptr);
}

namespace {
std::string human_bytes(int64_t n) {
  char buf[64];
  double v = static_cast<double>(n);
  if (n >= (int64_t{1} << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", v / (1 << 30));
  else if (n >= (1 << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", v / (1 << 20));
  else if (n >= (1 << 10)) std::snprintf(buf, sizeof buf, "%.2f KiB", v / (1 << 10));
  else std::snprintf(buf, sizeof buf, "%lld bytes", static_cast<long long>(n));
  return buf;
}
}  // namespace

CachingAllocator::CachingAllocator(std::unique_ptr<AllocatorBackend> backend, std::string device_name, bool caching)
    : backend_(std::move(backend)), device_name_(std::move(device_name)), caching_(caching) {}

bool CachingAllocator::caching_from_env() {
  const char* e = std::getenv("BIGMODEL_CUDA_CACHING");
  return !(e && std::strcmp(e, "0") == 0);
}

CachingAllocator::~CachingAllocator() {
  std::set<Block*> blocks(small_free_.begin(), small_free_.end());
  blocks.insert(large_free_.begin(), large_free_.end());
  for (auto& kv : allocated_) blocks.insert(kv.second);
  for (auto& pe : pending_) {
    backend_->release_event(pe.first);
    blocks.insert(pe.second);
  }
  for (Block* b : blocks)
    if (b->prev == nullptr) backend_->raw_free(b->ptr);
  for (Block* b : blocks) delete b;
}

size_t CachingAllocator::round_size(size_t nbytes) {
  if (nbytes < kMinBlock) return kMinBlock;
  return (nbytes + kMinBlock - 1) / kMinBlock * kMinBlock;
}

size_t CachingAllocator::segment_size(size_t rounded) {
  if (rounded <= kSmallRequest) return kSmallSegment;
  if (rounded < kMinLargeSegment) return kLargeSegment;
  return (rounded + kLargeRound - 1) / kLargeRound * kLargeRound;
}

CachingAllocator::Block* CachingAllocator::take_free_block(FreeSet& pool, size_t size, StreamId stream) {
  Block key;
  key.stream = stream;
  key.size = size;
  auto it = pool.lower_bound(&key);
  if (it == pool.end() || (*it)->stream != stream) return nullptr;
  Block* b = *it;
  pool.erase(it);
  return b;
}

void* CachingAllocator::allocate(size_t nbytes, StreamId stream) {
  if (nbytes == 0) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  process_events();
  // Without caching the pools stay empty, so every request takes the new-segment path
  // with a segment of exactly the requested size and nothing to split off.
  const size_t size = caching_ ? round_size(nbytes) : nbytes;
  const bool small = size <= kSmallRequest;
  FreeSet& pool = pool_for(size);
  Block* b = take_free_block(pool, size, stream);
  if (!b) {
    const size_t seg = caching_ ? segment_size(size) : size;
    void* p = backend_->raw_alloc(seg);
    if (!p) {  // give the cache back to the device and try once more
      ++stats_.num_alloc_retries;
      release_cached_segments();
      p = backend_->raw_alloc(seg);
      if (!p) throw_oom(nbytes, size, seg);
    }
    b = new Block;
    b->ptr = static_cast<char*>(p);
    b->size = seg;
    b->stream = stream;
    b->small = small;
    stats_.reserved_bytes += static_cast<int64_t>(seg);
    stats_.num_segments += 1;
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
  }
  // Split off the tail when it is worth keeping: any 512-byte rest in the small pool, more
  // than a small request's worth in the large pool (smaller tails would only fragment it).
  const size_t rest = b->size - size;
  if (small ? rest >= kMinBlock : rest > kSmallRequest) {
    Block* tail = new Block;
    tail->ptr = b->ptr + size;
    tail->size = rest;
    tail->stream = stream;
    tail->small = small;
    tail->prev = b;
    tail->next = b->next;
    if (b->next) b->next->prev = tail;
    b->next = tail;
    b->size = size;
    pool.insert(tail);
  }
  b->allocated = true;
  b->requested = nbytes;
  allocated_[b->ptr] = b;
  stats_.allocated_bytes += static_cast<int64_t>(b->size);
  stats_.requested_bytes += static_cast<int64_t>(nbytes);
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  stats_.num_allocs += 1;
  return b->ptr;
}

void CachingAllocator::free(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = allocated_.find(ptr);
  if (it == allocated_.end()) throw Error(str_cat("[cuda allocator] free of a pointer it did not allocate on ", device_name_));
  Block* b = it->second;
  allocated_.erase(it);
  b->allocated = false;
  stats_.allocated_bytes -= static_cast<int64_t>(b->size);
  stats_.requested_bytes -= static_cast<int64_t>(b->requested);
  stats_.num_frees += 1;
  if (!b->stream_uses.empty()) {
    // Other streams may still be reading or writing it: reuse waits for their work.
    for (StreamId s : b->stream_uses) {
      pending_.emplace_back(backend_->record_event(s), b);
      b->pending_events += 1;
    }
    b->stream_uses.clear();
    return;
  }
  return_block(b);
}

void CachingAllocator::return_block(Block* b) {
  if (!caching_) {  // each block is a whole segment: straight back to the backend
    backend_->raw_free(b->ptr);
    stats_.reserved_bytes -= static_cast<int64_t>(b->size);
    stats_.num_segments -= 1;
    delete b;
    return;
  }
  FreeSet& pool = b->small ? small_free_ : large_free_;
  for (Block* n : {b->prev, b->next}) {
    if (!n || !n->is_free()) continue;
    pool.erase(n);
    if (n == b->prev) {  // absorb b into its predecessor
      n->size += b->size;
      n->next = b->next;
      if (b->next) b->next->prev = n;
      delete b;
      b = n;
    } else {  // absorb the successor into b
      b->size += n->size;
      b->next = n->next;
      if (n->next) n->next->prev = b;
      delete n;
    }
  }
  pool.insert(b);
}

void CachingAllocator::process_events() {
  size_t keep = 0;
  for (size_t i = 0; i < pending_.size(); ++i) {
    auto [event, block] = pending_[i];
    if (backend_->event_done(event)) {
      backend_->release_event(event);
      if (--block->pending_events == 0) return_block(block);
    } else {
      pending_[keep++] = pending_[i];
    }
  }
  pending_.resize(keep);
}

void CachingAllocator::wait_pending() {
  if (pending_.empty()) return;
  backend_->synchronize();
  process_events();
}

void CachingAllocator::release_cached_segments() {
  wait_pending();
  for (FreeSet* pool : {&small_free_, &large_free_}) {
    for (auto it = pool->begin(); it != pool->end();) {
      Block* b = *it;
      if (b->whole_segment()) {
        backend_->raw_free(b->ptr);
        stats_.reserved_bytes -= static_cast<int64_t>(b->size);
        stats_.num_segments -= 1;
        delete b;
        it = pool->erase(it);
      } else {
        ++it;
      }
    }
  }
}

void CachingAllocator::throw_oom(size_t nbytes, size_t rounded, size_t segment) {
  ++stats_.num_ooms;
  int64_t cached = 0;
  for (FreeSet* pool : {&small_free_, &large_free_})
    for (Block* b : *pool) cached += static_cast<int64_t>(b->size);
  std::string extra = backend_->describe_memory();
  throw OutOfMemoryError(str_cat(
      "[cuda allocator] out of memory on ", device_name_, ": tried to allocate ", human_bytes(static_cast<int64_t>(nbytes)),
      " (block ", human_bytes(static_cast<int64_t>(rounded)), ", new segment ", human_bytes(static_cast<int64_t>(segment)),
      "); bigmodel has ", human_bytes(stats_.allocated_bytes), " allocated and ", human_bytes(stats_.reserved_bytes),
      " reserved (", human_bytes(cached), " cached free after emptying the cache)", extra.empty() ? "" : "; ", extra));
}

void CachingAllocator::record_stream(void* ptr, StreamId stream) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = allocated_.find(ptr);
  if (it == allocated_.end()) throw Error(str_cat("[record_stream] pointer not allocated by the ", device_name_, " allocator"));
  Block* b = it->second;
  if (stream == b->stream) return;
  if (std::find(b->stream_uses.begin(), b->stream_uses.end(), stream) == b->stream_uses.end())
    b->stream_uses.push_back(stream);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cached_segments();
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  MemoryStats s = stats_;
  s.inactive_split_bytes = 0;
  for (const FreeSet* pool : {&small_free_, &large_free_})
    for (const Block* b : *pool)
      if (!b->whole_segment()) s.inactive_split_bytes += static_cast<int64_t>(b->size);
  return s;
}

void CachingAllocator::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

size_t CachingAllocator::block_size(void* ptr) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = allocated_.find(ptr);
  return it == allocated_.end() ? 0 : it->second->size;
}

}  // namespace bigmodel::cuda
