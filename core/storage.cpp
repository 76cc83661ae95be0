// Storage lifetime: allocation through the device allocator, or adoption of foreign memory.
#include "core/storage.h"

namespace bigmodel {

Storage::Storage(size_t nbytes, Device device)
    : nbytes_(nbytes), device_(device), allocator_(get_allocator(device)) {
  data_ = allocator_->allocate_on(nbytes, device);
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release)
    : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
  if (release_) {
    release_(data_);
  } else if (allocator_) {
    allocator_->deallocate_on(data_, nbytes_, device_);
  }
}

}  // namespace bigmodel
