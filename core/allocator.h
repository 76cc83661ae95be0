// Allocator interface behind every Storage. The CPU allocator hands out 64-byte aligned
// blocks; the CUDA caching allocator (kernels/cuda) plugs in through the same interface.
#pragma once
#include <cstddef>

#include "core/device.h"

namespace bigmodel {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;  // throws OutOfMemoryError on failure
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
};

Allocator* cpu_allocator();
// The allocator registered for a device type; throws DeviceError if there is none
// ("built without CUDA" or "no CUDA device").
Allocator* get_allocator(Device device);
void register_allocator(DeviceType type, Allocator* allocator);

}  // namespace bigmodel
