// The CPU allocator (64-byte aligned, large blocks cached for reuse, live/peak byte
// counters) and the per-device allocator registry.
#include "core/allocator.h"

#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/allocator_cache.h"
#include "core/error.h"

namespace bigmodel {
namespace {

std::atomic<int64_t> g_cpu_current{0};
std::atomic<int64_t> g_cpu_peak{0};
std::atomic<int64_t> g_cpu_allocs{0};
std::atomic<int64_t> g_cpu_frees{0};

bool cache_enabled_by_default() {
  if (const char* v = std::getenv("BIGMODEL_CPU_CACHE")) return std::strcmp(v, "0") != 0;
#if defined(__SANITIZE_ADDRESS__)
  return false;  // a reused block would hide a use-after-free from ASan
#else
  return true;
#endif
}

size_t cache_limit_from_env() {
  size_t mb = 1024;
  if (const char* v = std::getenv("BIGMODEL_CPU_CACHE_MB")) mb = static_cast<size_t>(std::strtoull(v, nullptr, 10));
  return mb << 20;
}

std::atomic<bool> g_cache_enabled{cache_enabled_by_default()};

// Never destroyed: storages freed during static destruction (or never) must still find it.
CpuBlockCache& block_cache() {
  static CpuBlockCache* cache = [] {
    auto* c = new CpuBlockCache(cache_limit_from_env());
    pthread_atfork([] { block_cache().lock_for_fork(); }, [] { block_cache().unlock_after_fork(); },
                   [] { block_cache().unlock_after_fork(); });
    return c;
  }();
  return *cache;
}

class CpuAllocator : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    // Every large block has its class's size, so a block allocated while the cache was off
    // can still be cached and serve any request of its class later.
    const size_t block = CpuBlockCache::block_size(nbytes);
    const bool cacheable = CpuBlockCache::cacheable(block);
    void* p = nullptr;
    if (cacheable && g_cache_enabled.load(std::memory_order_relaxed)) p = block_cache().take(block);
    if (!p) p = std::aligned_alloc(64, block);
    if (!p && cacheable) {  // memory pressure: give the idle blocks back and try once more
      block_cache().release_all();
      p = std::aligned_alloc(64, block);
    }
    if (!p) throw OutOfMemoryError(str_cat("[cpu allocator] could not allocate ", nbytes, " bytes"));
    int64_t now = g_cpu_current.fetch_add(static_cast<int64_t>(nbytes)) + static_cast<int64_t>(nbytes);
    int64_t peak = g_cpu_peak.load();
    while (now > peak && !g_cpu_peak.compare_exchange_weak(peak, now)) {
    }
    g_cpu_allocs.fetch_add(1);
    return p;
  }
  void deallocate(void* ptr, size_t nbytes) override {
    const size_t block = CpuBlockCache::block_size(nbytes);
    bool cached = false;
    if (CpuBlockCache::cacheable(block) && g_cache_enabled.load(std::memory_order_relaxed)) {
      try {  // deallocate must not throw (Storage's destructor); a full bin's vector might
        cached = block_cache().put(ptr, block);
      } catch (...) {
        cached = false;
      }
    }
    if (!cached) std::free(ptr);
    g_cpu_current.fetch_sub(static_cast<int64_t>(nbytes));
    g_cpu_frees.fetch_add(1);
  }
};

// Function-local so a registration from another translation unit's static initialiser
// (kernels/cuda) can never run before the table exists and then be overwritten by it.
Allocator** allocator_table() {
  static Allocator* table[kNumDeviceTypes] = {cpu_allocator(), nullptr};
  return table;
}

}  // namespace

Allocator* cpu_allocator() {
  static CpuAllocator alloc;
  return &alloc;
}

Allocator* get_allocator(Device device) {
  Allocator* a = allocator_table()[static_cast<int>(device.type)];
  if (!a) {
    throw DeviceError(str_cat("[allocator] can't allocate on ", device.str(),
                              ": bigmodel was built without CUDA (BIGMODEL_CUDA=OFF)"));
  }
  return a;
}

void register_allocator(DeviceType type, Allocator* allocator) {
  allocator_table()[static_cast<int>(type)] = allocator;
}

CpuMemoryStats cpu_memory_stats() {
  CpuMemoryStats s;
  s.allocated_bytes = g_cpu_current.load();
  s.peak_allocated_bytes = g_cpu_peak.load();
  s.num_allocs = g_cpu_allocs.load();
  s.num_frees = g_cpu_frees.load();
  s.cached_bytes = static_cast<int64_t>(block_cache().idle_bytes());
  s.cache_hits = block_cache().hits();
  return s;
}

void reset_cpu_peak_memory_stats() { g_cpu_peak.store(g_cpu_current.load()); }

bool set_cpu_cache_enabled(bool enabled) {
  const bool was = g_cache_enabled.exchange(enabled);
  if (!enabled) block_cache().release_all();
  return was;
}

bool cpu_cache_enabled() { return g_cache_enabled.load(); }

void cpu_empty_cache() { block_cache().release_all(); }

}  // namespace bigmodel
