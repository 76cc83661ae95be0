// Allocator interface behind every Storage. The CPU allocator hands out 64-byte aligned
// blocks, keeps freed large blocks for reuse (core/allocator_cache.h) and counts live bytes
// (current/peak, for memory measurements); the CUDA caching allocator
// (kernels/cuda/cuda_allocator.cpp) plugs in through the same interface.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace bigmodel {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;  // throws OutOfMemoryError on failure
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  // Device-aware forms (a CUDA allocator needs the index); the CPU ignores the device.
  // deallocate_on must not throw: it runs from Storage's destructor.
  virtual void* allocate_on(size_t nbytes, Device /*device*/) { return allocate(nbytes); }
  virtual void deallocate_on(void* ptr, size_t nbytes, Device /*device*/) { deallocate(ptr, nbytes); }
};

Allocator* cpu_allocator();
// The allocator registered for a device type; throws DeviceError if there is none
// ("built without CUDA" or "no CUDA device").
Allocator* get_allocator(Device device);
void register_allocator(DeviceType type, Allocator* allocator);

// Bytes held by live CPU storages allocated through cpu_allocator() (requested sizes, not
// the 64-byte rounding); storages that wrap NumPy memory are not counted.
struct CpuMemoryStats {
  int64_t allocated_bytes = 0;
  int64_t peak_allocated_bytes = 0;
  int64_t num_allocs = 0;
  int64_t num_frees = 0;
  int64_t cached_bytes = 0;  // idle blocks held by the cache (not in allocated_bytes)
  int64_t cache_hits = 0;    // allocations served from the cache
};
CpuMemoryStats cpu_memory_stats();
void reset_cpu_peak_memory_stats();  // peak := current

// The CPU block cache: on by default, off under AddressSanitizer or BIGMODEL_CPU_CACHE=0
// (BIGMODEL_CPU_CACHE=1 turns it on even there). Turning it off releases its idle blocks;
// returns the previous setting.
bool set_cpu_cache_enabled(bool enabled);
bool cpu_cache_enabled();
void cpu_empty_cache();  // returns every idle cached block to the system

}  // namespace bigmodel
