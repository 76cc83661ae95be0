// CUDA-side access to the device caching allocators and the pinned staging buffers
// (kernels/cuda only).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "core/cuda/caching_allocator.h"

namespace bigmodel::cuda {

CachingAllocator& device_pool(int device);  // created on first use

// Page-locked host buffers for staging transfers. A buffer is handed out again only after
// the copy last recorded on it (pinned_record_use) has finished.
void* pinned_alloc(size_t nbytes);
void pinned_record_use(void* ptr, int device, cudaStream_t stream);
void pinned_free(void* ptr);
void empty_pinned_cache();

}  // namespace bigmodel::cuda
