// The CPU allocator (64-byte aligned) and the per-device allocator registry.
#include "core/allocator.h"

#include <cstdlib>

#include "core/error.h"

namespace bigmodel {
namespace {

class CpuAllocator : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    size_t rounded = (nbytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw OutOfMemoryError(str_cat("[cpu allocator] could not allocate ", nbytes, " bytes"));
    return p;
  }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
};

Allocator* g_allocators[kNumDeviceTypes] = {cpu_allocator(), nullptr};

}  // namespace

Allocator* cpu_allocator() {
  static CpuAllocator alloc;
  return &alloc;
}

Allocator* get_allocator(Device device) {
  Allocator* a = g_allocators[static_cast<int>(device.type)];
  if (!a) {
    throw DeviceError(str_cat("[allocator] no allocator for ", device.str(),
                              " (bigmodel was built without CUDA or no GPU is visible)"));
  }
  return a;
}

void register_allocator(DeviceType type, Allocator* allocator) {
  g_allocators[static_cast<int>(type)] = allocator;
}

}  // namespace bigmodel
