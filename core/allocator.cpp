// The CPU allocator (64-byte aligned, with live/peak byte counters) and the per-device
// allocator registry.
#include "core/allocator.h"

#include <atomic>
#include <cstdlib>

#include "core/error.h"

namespace bigmodel {
namespace {

std::atomic<int64_t> g_cpu_current{0};
std::atomic<int64_t> g_cpu_peak{0};
std::atomic<int64_t> g_cpu_allocs{0};
std::atomic<int64_t> g_cpu_frees{0};

class CpuAllocator : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    size_t rounded = (nbytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw OutOfMemoryError(str_cat("[cpu allocator] could not allocate ", nbytes, " bytes"));
    int64_t now = g_cpu_current.fetch_add(static_cast<int64_t>(nbytes)) + static_cast<int64_t>(nbytes);
    int64_t peak = g_cpu_peak.load();
    while (now > peak && !g_cpu_peak.compare_exchange_weak(peak, now)) {
    }
    g_cpu_allocs.fetch_add(1);
    return p;
  }
  void deallocate(void* ptr, size_t nbytes) override {
    std::free(ptr);
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
  return s;
}

void reset_cpu_peak_memory_stats() { g_cpu_peak.store(g_cpu_current.load()); }

}  // namespace bigmodel
