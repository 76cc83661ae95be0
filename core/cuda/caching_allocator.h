// The caching allocator's bookkeeping, independent of CUDA: a device's memory is taken
// from a backend in segments, split into blocks, cached on free and merged with free
// neighbours. Small requests (<= 1 MiB) share 2 MiB segments, larger ones get their own
// pool. A block is reused only by its own stream; a block that other streams used
// (record_stream) returns to the cache once events recorded on those streams at free time
// have completed. On backend failure the cache is released and the request retried once,
// then OutOfMemoryError names the request and the figures. kernels/cuda plugs in cudaMalloc
// and CUDA events; tests/cpp/test_caching_allocator.cpp uses host memory.
// With caching off (BIGMODEL_CUDA_CACHING=0, like PYTORCH_NO_CUDA_MEMORY_CACHING) every
// block is its own backend allocation of exactly the requested bytes, freed when the block
// is: slower, but memory checkers (compute-sanitizer, the emulator's ASan build) then see
// each tensor's true bounds instead of a segment's.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/cuda/memory_stats.h"

namespace bigmodel::cuda {

using StreamId = void*;  // a cudaStream_t, opaque here (nullptr: the default stream)

class AllocatorBackend {
 public:
  virtual ~AllocatorBackend() = default;
  virtual void* raw_alloc(size_t nbytes) = 0;  // nullptr when out of memory; other errors throw
  virtual void raw_free(void* ptr) = 0;
  // An event recorded now on `stream`; event_done polls it; release_event recycles it.
  virtual void* record_event(StreamId stream) = 0;
  virtual bool event_done(void* event) = 0;
  virtual void release_event(void* event) = 0;
  virtual void synchronize() = 0;  // waits for all work on the device
  virtual std::string describe_memory() { return ""; }  // appended to OOM messages
};

class CachingAllocator {
 public:
  static constexpr size_t kMinBlock = 512;                 // every size is rounded to this
  static constexpr size_t kSmallRequest = 1 << 20;         // <= this: small pool
  static constexpr size_t kSmallSegment = 2 << 20;         // small pool's segment size
  static constexpr size_t kMinLargeSegment = 10 << 20;     // large requests below this ...
  static constexpr size_t kLargeSegment = 20 << 20;        // ... share a 20 MiB segment
  static constexpr size_t kLargeRound = 2 << 20;           // larger ones round to 2 MiB

  CachingAllocator(std::unique_ptr<AllocatorBackend> backend, std::string device_name,
                   bool caching = caching_from_env());
  static bool caching_from_env();  // false when BIGMODEL_CUDA_CACHING=0
  bool caching() const { return caching_; }
  ~CachingAllocator();  // returns every segment to the backend
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(size_t nbytes, StreamId stream);  // nullptr for 0 bytes
  void free(void* ptr);                             // nullptr is ignored
  void record_stream(void* ptr, StreamId stream);
  void empty_cache();  // waits for pending frees, then releases every wholly free segment
  MemoryStats stats() const;
  void reset_peak_stats();
  size_t block_size(void* ptr) const;  // size of the allocated block at ptr (0 if unknown)

  static size_t round_size(size_t nbytes);
  static size_t segment_size(size_t rounded);

 private:
  struct Block;
  struct BlockOrder {
    bool operator()(const Block* a, const Block* b) const;
  };
  using FreeSet = std::set<Block*, BlockOrder>;

  FreeSet& pool_for(size_t rounded) { return rounded <= kSmallRequest ? small_free_ : large_free_; }
  Block* take_free_block(FreeSet& pool, size_t size, StreamId stream);
  void return_block(Block* block);  // merge with free neighbours and cache
  void process_events();
  void release_cached_segments();
  void wait_pending();
  [[noreturn]] void throw_oom(size_t nbytes, size_t rounded, size_t segment);

  std::unique_ptr<AllocatorBackend> backend_;
  std::string device_name_;
  bool caching_ = true;
  mutable std::mutex mutex_;
  FreeSet small_free_, large_free_;
  std::unordered_map<void*, Block*> allocated_;
  std::vector<std::pair<void*, Block*>> pending_;  // (event, block freed while other streams used it)
  MemoryStats stats_;
};

}  // namespace bigmodel::cuda
