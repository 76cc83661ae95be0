// Figures a device caching allocator reports (bm.cuda.memory_stats()).
#pragma once
#include <cstdint>

namespace bigmodel::cuda {

struct MemoryStats {
  int64_t allocated_bytes = 0;       // in blocks handed out (sizes rounded to 512 bytes)
  int64_t requested_bytes = 0;       // what callers asked for
  int64_t reserved_bytes = 0;        // held from the device (segments), used or cached
  int64_t peak_allocated_bytes = 0;
  int64_t peak_reserved_bytes = 0;
  int64_t inactive_split_bytes = 0;  // free bytes inside segments that are partly in use
  int64_t num_allocs = 0;
  int64_t num_frees = 0;
  int64_t num_segments = 0;
  int64_t num_alloc_retries = 0;     // device allocations that failed, then the cache was freed
  int64_t num_ooms = 0;              // OutOfMemoryError raised
  // Share of reserved memory that is free but stuck in split segments (0 = none).
  double fragmentation() const {
    return reserved_bytes ? static_cast<double>(inactive_split_bytes) / static_cast<double>(reserved_bytes) : 0.0;
  }
};

}  // namespace bigmodel::cuda
