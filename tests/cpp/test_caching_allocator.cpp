// The caching allocator's bookkeeping (core/cuda/caching_allocator.h) on a host-memory
// backend: rounding and size classes, split and merge, per-stream reuse, cross-stream frees
// waiting for events, statistics, empty_cache and the free-cache-and-retry path before OOM.
// Runs on every machine; the CUDA backend is exercised by test_cuda_runtime.cpp.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/cuda/caching_allocator.h"
#include "core/error.h"
#include "tests/cpp/host_allocator_backend.h"

using namespace bigmodel;
using namespace bigmodel::cuda;

namespace {

// A CachingAllocator over host memory with a byte budget and events completed by hand.
using Fixture = test_util::HostAllocatorFixture;

StreamId stream(int i) { return reinterpret_cast<StreamId>(static_cast<uintptr_t>(i)); }

}  // namespace

TEST(CachingAllocator, RoundsAndChoosesSegments) {
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::segment_size(1 << 20), 2u << 20);         // small pool
  EXPECT_EQ(CachingAllocator::segment_size((1 << 20) + 512), 20u << 20);  // large, shared
  EXPECT_EQ(CachingAllocator::segment_size(11u << 20), 12u << 20);     // large, own, 2 MiB steps
}

TEST(CachingAllocator, ZeroBytesIsNull) {
  Fixture f;
  EXPECT_EQ(f.alloc.allocate(0, nullptr), nullptr);
  f.alloc.free(nullptr);
  EXPECT_EQ(f.backend->allocs, 0);
}

TEST(CachingAllocator, SplitsOneSegmentForSmallBlocksAndReusesFreed) {
  Fixture f;
  void* a = f.alloc.allocate(1000, nullptr);
  void* b = f.alloc.allocate(3000, nullptr);
  EXPECT_EQ(f.backend->allocs, 1);  // both carved from one 2 MiB segment
  EXPECT_EQ(static_cast<char*>(b) - static_cast<char*>(a), 1024);
  EXPECT_EQ(f.alloc.block_size(a), 1024u);
  EXPECT_EQ(f.alloc.block_size(b), 3072u);
  MemoryStats s = f.alloc.stats();
  EXPECT_EQ(s.allocated_bytes, 1024 + 3072);
  EXPECT_EQ(s.requested_bytes, 4000);
  EXPECT_EQ(s.reserved_bytes, 2 << 20);
  EXPECT_EQ(s.num_segments, 1);
  f.alloc.free(a);
  void* c = f.alloc.allocate(900, nullptr);  // best fit: the freed 1 KiB hole
  EXPECT_EQ(c, a);
  EXPECT_EQ(f.backend->allocs, 1);
  f.alloc.free(b);
  f.alloc.free(c);
  s = f.alloc.stats();
  EXPECT_EQ(s.allocated_bytes, 0);
  EXPECT_EQ(s.inactive_split_bytes, 0);  // everything merged back into one whole segment
  EXPECT_EQ(s.num_allocs, 3);
  EXPECT_EQ(s.num_frees, 3);
}

TEST(CachingAllocator, MergesNeighboursInAnyOrder) {
  Fixture f;
  void* p[4];
  for (auto& x : p) x = f.alloc.allocate(4096, nullptr);
  f.alloc.free(p[1]);
  f.alloc.free(p[3]);  // merges with the segment's free tail
  EXPECT_GT(f.alloc.stats().inactive_split_bytes, 0);
  f.alloc.free(p[2]);  // joins p1 and the tail
  f.alloc.free(p[0]);  // joins everything: one free block the size of the segment
  MemoryStats s = f.alloc.stats();
  EXPECT_EQ(s.inactive_split_bytes, 0);
  void* big = f.alloc.allocate(1 << 20, nullptr);  // fits only in the merged segment
  EXPECT_EQ(big, p[0]);
  EXPECT_EQ(f.backend->allocs, 1);
  f.alloc.free(big);
}

TEST(CachingAllocator, FragmentationCountsFreeHolesInUsedSegments) {
  Fixture f;
  void* a = f.alloc.allocate(1 << 19, nullptr);
  void* b = f.alloc.allocate(1 << 19, nullptr);
  f.alloc.free(a);
  MemoryStats s = f.alloc.stats();
  // The freed half-MiB and the 1 MiB tail are both stuck in a segment b keeps alive.
  EXPECT_EQ(s.inactive_split_bytes, (1 << 19) + (1 << 20));
  EXPECT_NEAR(s.fragmentation(), 0.75, 1e-12);
  f.alloc.free(b);
}

TEST(CachingAllocator, LargeBlocksUseTheirOwnPool) {
  Fixture f;
  void* small = f.alloc.allocate(1024, nullptr);
  void* large = f.alloc.allocate(3 << 20, nullptr);  // 20 MiB segment, 17 MiB tail split off
  EXPECT_EQ(f.backend->allocs, 2);
  EXPECT_EQ(f.alloc.stats().reserved_bytes, (2 << 20) + (20 << 20));
  void* large2 = f.alloc.allocate(5 << 20, nullptr);  // from the large segment's tail
  EXPECT_EQ(f.backend->allocs, 2);
  EXPECT_EQ(static_cast<char*>(large2) - static_cast<char*>(large), 3 << 20);
  void* huge = f.alloc.allocate(33 << 20, nullptr);  // its own 34 MiB segment
  EXPECT_EQ(f.backend->live.at(huge), 34u << 20);
  for (void* p : {small, large, large2, huge}) f.alloc.free(p);
  EXPECT_EQ(f.alloc.stats().allocated_bytes, 0);
}

TEST(CachingAllocator, ReusesOnlyOnTheSameStream) {
  Fixture f;
  void* a = f.alloc.allocate(4096, stream(1));
  f.alloc.free(a);
  void* b = f.alloc.allocate(4096, stream(2));  // stream 1's cache is not shared
  EXPECT_NE(b, a);
  EXPECT_EQ(f.backend->allocs, 2);
  void* c = f.alloc.allocate(4096, stream(1));
  EXPECT_EQ(c, a);
  f.alloc.free(b);
  f.alloc.free(c);
}

TEST(CachingAllocator, RecordStreamDelaysReuseUntilEventsComplete) {
  Fixture f;
  void* a = f.alloc.allocate(4096, stream(1));
  f.alloc.record_stream(a, stream(2));
  f.alloc.record_stream(a, stream(1));  // its own stream: no event needed
  f.alloc.free(a);
  EXPECT_EQ(f.backend->events.size(), 1u);  // one event, on stream 2
  EXPECT_EQ(f.alloc.stats().allocated_bytes, 0);
  void* b = f.alloc.allocate(4096, stream(1));
  EXPECT_NE(b, a);  // stream 2 may still use a
  f.backend->complete_all();
  void* c = f.alloc.allocate(4096, stream(1));
  EXPECT_EQ(c, a);  // the event completed: a is back in the cache
  EXPECT_TRUE(f.backend->events.empty());
  f.alloc.free(b);
  f.alloc.free(c);
}

TEST(CachingAllocator, EmptyCacheReleasesWholeSegmentsOnly) {
  Fixture f;
  void* keep = f.alloc.allocate(4096, nullptr);
  void* big = f.alloc.allocate(12 << 20, nullptr);
  f.alloc.free(big);
  EXPECT_EQ(f.alloc.stats().reserved_bytes, (2 << 20) + (12 << 20));
  f.alloc.empty_cache();
  MemoryStats s = f.alloc.stats();
  EXPECT_EQ(s.reserved_bytes, 2 << 20);  // the small segment still holds `keep`
  EXPECT_EQ(s.num_segments, 1);
  EXPECT_EQ(f.backend->frees, 1);
  f.alloc.free(keep);
  f.alloc.empty_cache();
  EXPECT_EQ(f.alloc.stats().reserved_bytes, 0);
  EXPECT_TRUE(f.backend->live.empty());
}

TEST(CachingAllocator, EmptyCacheWaitsForPendingCrossStreamFrees) {
  Fixture f;
  void* a = f.alloc.allocate(4096, stream(1));
  f.alloc.record_stream(a, stream(2));
  f.alloc.free(a);
  f.alloc.empty_cache();  // synchronises, completes the event, then frees the segment
  EXPECT_EQ(f.backend->syncs, 1);
  EXPECT_EQ(f.alloc.stats().reserved_bytes, 0);
}

TEST(CachingAllocator, PeaksAndReset) {
  Fixture f;
  void* a = f.alloc.allocate(1 << 20, nullptr);
  void* b = f.alloc.allocate(1 << 20, nullptr);
  f.alloc.free(a);
  MemoryStats s = f.alloc.stats();
  EXPECT_EQ(s.peak_allocated_bytes, 2 << 20);
  EXPECT_EQ(s.allocated_bytes, 1 << 20);
  f.alloc.reset_peak_stats();
  EXPECT_EQ(f.alloc.stats().peak_allocated_bytes, 1 << 20);
  f.alloc.free(b);
}

TEST(CachingAllocator, FreesCacheAndRetriesBeforeOom) {
  Fixture f;
  f.backend->budget = 40u << 20;
  void* a = f.alloc.allocate(30 << 20, nullptr);
  f.alloc.free(a);  // 30 MiB cached, 10 MiB left in the budget
  void* b = f.alloc.allocate(20 << 20, stream(1));  // other stream: needs a new segment
  ASSERT_NE(b, nullptr);
  MemoryStats s = f.alloc.stats();
  EXPECT_EQ(s.num_alloc_retries, 1);  // failed once, released the 30 MiB, retried
  EXPECT_EQ(s.num_ooms, 0);
  EXPECT_EQ(s.reserved_bytes, 20 << 20);
  f.alloc.free(b);
}

TEST(CachingAllocator, OomNamesTheRequestAndFiguresAndRecovers) {
  Fixture f;
  f.backend->budget = 24u << 20;
  void* a = f.alloc.allocate(15 << 20, nullptr);
  try {
    f.alloc.allocate(100 << 20, nullptr);
    FAIL() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("[cuda allocator]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("test:0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("100.00 MiB"), std::string::npos) << msg;
    EXPECT_NE(msg.find("16.00 MiB allocated"), std::string::npos) << msg;
    EXPECT_NE(msg.find("host budget"), std::string::npos) << msg;
  }
  MemoryStats s = f.alloc.stats();
  EXPECT_EQ(s.num_ooms, 1);
  EXPECT_EQ(s.allocated_bytes, 16 << 20);
  void* b = f.alloc.allocate(1 << 20, nullptr);  // the allocator keeps working
  EXPECT_NE(b, nullptr);
  f.alloc.free(a);
  f.alloc.free(b);
}

TEST(CachingAllocator, FreeOfUnknownPointerThrows) {
  Fixture f;
  int x = 0;
  EXPECT_THROW(f.alloc.free(&x), Error);
}
