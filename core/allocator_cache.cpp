// CpuBlockCache: size classes, LRU-by-class eviction under a byte limit, and ASan
// poisoning of idle blocks (when a sanitizer build turns the cache on explicitly, touching
// a cached block is still reported).
#include "core/allocator_cache.h"

#include <cstdint>
#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define BM_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define BM_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define BM_POISON(p, n) ((void)(p), (void)(n))
#define BM_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace bigmodel {

size_t CpuBlockCache::block_size(size_t nbytes) {
  // Absurd sizes stay unrounded (no wrap-around to a small block): the allocation fails.
  if (nbytes > (SIZE_MAX >> 2)) return nbytes;
  size_t r = (nbytes + 63) / 64 * 64;
  if (r == 0) r = 64;
  if (r < kMinBytes) return r;
  int top = 63 - __builtin_clzll(static_cast<unsigned long long>(r));  // 2^top <= r
  const size_t step = size_t{1} << (top - 3);                         // 8 classes per doubling
  return (r + step - 1) / step * step;
}

CpuBlockCache::CpuBlockCache(size_t limit_bytes) : limit_(limit_bytes) {}

CpuBlockCache::~CpuBlockCache() { release_all(); }

void* CpuBlockCache::take(size_t block) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = bins_.find(block);
  if (it == bins_.end() || it->second.blocks.empty()) return nullptr;
  void* p = it->second.blocks.back();
  it->second.blocks.pop_back();
  it->second.last_use = ++tick_;
  idle_bytes_ -= block;
  ++hits_;
  BM_UNPOISON(p, block);
  return p;
}

bool CpuBlockCache::put(void* ptr, size_t block) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (block > limit_) return false;
  if (idle_bytes_ + block > limit_) evict_until(block);
  Bin& bin = bins_[block];
  bin.blocks.push_back(ptr);
  bin.last_use = ++tick_;
  idle_bytes_ += block;
  BM_POISON(ptr, block);
  return true;
}

void CpuBlockCache::evict_until(size_t needed) {
  while (idle_bytes_ + needed > limit_ && idle_bytes_ > 0) {
    // The least recently used class goes first: a step's working set keeps its own classes warm.
    auto victim = bins_.end();
    for (auto it = bins_.begin(); it != bins_.end(); ++it) {
      if (!it->second.blocks.empty() && (victim == bins_.end() || it->second.last_use < victim->second.last_use))
        victim = it;
    }
    void* p = victim->second.blocks.back();
    victim->second.blocks.pop_back();
    idle_bytes_ -= victim->first;
    BM_UNPOISON(p, victim->first);
    std::free(p);
  }
}

void CpuBlockCache::release_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, bin] : bins_) {
    for (void* p : bin.blocks) {
      BM_UNPOISON(p, size);
      std::free(p);
    }
  }
  bins_.clear();
  idle_bytes_ = 0;
}

size_t CpuBlockCache::idle_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return idle_bytes_;
}

int64_t CpuBlockCache::hits() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return hits_;
}

void CpuBlockCache::set_limit(size_t limit_bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  limit_ = limit_bytes;
  evict_until(0);
}

}  // namespace bigmodel
