// The CPU allocator's cache of large free blocks. A training step allocates the same large
// tensors every iteration; glibc serves them with fresh mmaps (or trims its heap on free),
// so every step paid for page faults and kernel page clearing. Freed blocks of at least
// kMinBytes are kept here, binned by size class, and handed back to the next request of the
// same class. Bounded (idle bytes <= limit, least recently used classes released first),
// emptied on allocation failure, thread-safe (one mutex; small blocks never take it).
// Off by default under AddressSanitizer (a reused block would hide use-after-free) and with
// BIGMODEL_CPU_CACHE=0; BIGMODEL_CPU_CACHE_MB sets the limit (default 1024).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

namespace bigmodel {

class CpuBlockCache {
 public:
  static constexpr size_t kMinBytes = size_t{128} << 10;  // glibc's default mmap threshold
  static constexpr int kClassesPerDoubling = 8;           // <= 12.5 % rounding above kMinBytes

  // The size a block of nbytes is allocated with: a multiple of 64, and for large blocks
  // the upper bound of its size class (so any block of the class can serve the request,
  // whether or not the cache was on when it was allocated).
  static size_t block_size(size_t nbytes);
  static bool cacheable(size_t block) { return block >= kMinBytes; }

  explicit CpuBlockCache(size_t limit_bytes);
  ~CpuBlockCache();  // frees every idle block
  CpuBlockCache(const CpuBlockCache&) = delete;
  CpuBlockCache& operator=(const CpuBlockCache&) = delete;

  // An idle block of exactly `block` bytes (a block_size() result), or nullptr.
  void* take(size_t block);
  // Keeps the block for reuse; false when it does not fit under the limit (the caller
  // frees it). Older idle blocks of other classes are released to make room.
  bool put(void* ptr, size_t block);
  void release_all();  // frees every idle block (memory pressure, disabling, tests)

  size_t idle_bytes() const;
  int64_t hits() const;
  void set_limit(size_t limit_bytes);
  // fork() while another thread holds the lock would leave the child's copy locked forever:
  // the allocator's pthread_atfork handlers hold it across fork in the forking thread.
  void lock_for_fork() { mutex_.lock(); }
  void unlock_after_fork() { mutex_.unlock(); }

 private:
  struct Bin {
    std::vector<void*> blocks;
    uint64_t last_use = 0;
  };
  void evict_until(size_t needed);  // mutex held: frees LRU-class blocks until needed fits

  mutable std::mutex mutex_;
  std::map<size_t, Bin> bins_;
  size_t idle_bytes_ = 0;
  size_t limit_;
  uint64_t tick_ = 0;
  int64_t hits_ = 0;
};

}  // namespace bigmodel
