// The caching allocator with caching off (BIGMODEL_CUDA_CACHING=0): every block is its own
// backend allocation of exactly the requested bytes, returned on free (after the events of
// other streams that used it), with the statistics to match. Host-memory backend.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/cuda/caching_allocator.h"
#include "tests/cpp/host_allocator_backend.h"

using namespace bigmodel::cuda;

TEST(CachingAllocatorNoCache, EachBlockIsAnExactBackendAllocation) {
  test_util::HostAllocatorFixture f(/*caching=*/false);
  CachingAllocator& a = f.alloc;
  test_util::HostBackend* be = f.backend;
  EXPECT_FALSE(a.caching());
  void* p = a.allocate(7, nullptr);
  void* q = a.allocate(3000, nullptr);
  ASSERT_EQ(be->live.size(), 2u);
  EXPECT_EQ(be->live.at(p), 7u);
  EXPECT_EQ(be->live.at(q), 3000u);
  EXPECT_EQ(a.block_size(p), 7u);
  MemoryStats s = a.stats();
  EXPECT_EQ(s.allocated_bytes, 3007);
  EXPECT_EQ(s.reserved_bytes, 3007);
  EXPECT_EQ(s.num_segments, 2);
  a.free(p);
  EXPECT_EQ(be->live.count(p), 0u);  // back to the backend at once, nothing cached
  s = a.stats();
  EXPECT_EQ(s.reserved_bytes, 3000);
  EXPECT_EQ(s.num_segments, 1);
  a.free(q);
  EXPECT_TRUE(be->live.empty());
  EXPECT_EQ(a.stats().reserved_bytes, 0);
  EXPECT_EQ(a.stats().peak_reserved_bytes, 3007);
}

TEST(CachingAllocatorNoCache, CrossStreamFreeWaitsForTheEvent) {
  test_util::HostAllocatorFixture f(/*caching=*/false);
  CachingAllocator& a = f.alloc;
  test_util::HostBackend* be = f.backend;
  int other_stream = 0;
  void* p = a.allocate(100, nullptr);
  a.record_stream(p, &other_stream);
  a.free(p);
  EXPECT_EQ(be->live.count(p), 1u);  // the other stream may still use it
  EXPECT_EQ(a.stats().reserved_bytes, 100);
  a.empty_cache();  // synchronizes: the event completes and the block is released
  EXPECT_TRUE(be->live.empty());
  EXPECT_EQ(a.stats().reserved_bytes, 0);
  EXPECT_EQ(a.stats().num_segments, 0);
}

TEST(CachingAllocatorNoCache, CachingIsOnUnlessTheEnvironmentSaysZero) {
  const char* old = std::getenv("BIGMODEL_CUDA_CACHING");
  const std::string saved = old ? old : "";
  setenv("BIGMODEL_CUDA_CACHING", "0", 1);
  EXPECT_FALSE(CachingAllocator::caching_from_env());
  setenv("BIGMODEL_CUDA_CACHING", "1", 1);
  EXPECT_TRUE(CachingAllocator::caching_from_env());
  unsetenv("BIGMODEL_CUDA_CACHING");
  EXPECT_TRUE(CachingAllocator::caching_from_env());
  if (old) setenv("BIGMODEL_CUDA_CACHING", saved.c_str(), 1);
}
