// The caching allocator with caching off (BIGMODEL_CUDA_CACHING=0): every block is its own
// backend allocation of exactly the requested bytes, returned on free (after the events of
// other streams that used it), with the statistics to match. Host-memory backend.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "core/cuda/caching_allocator.h"

using namespace bigmodel::cuda;

namespace {

struct ExactBackend : AllocatorBackend {
  std::map<void*, size_t> live;
  std::map<int*, bool> events;
  void* raw_alloc(size_t n) override {
    void* p = std::malloc(n);
    live[p] = n;
    return p;
  }
  void raw_free(void* p) override {
    live.erase(p);
    std::free(p);
  }
  void* record_event(StreamId) override {
    int* e = new int(0);
    events[e] = false;
    return e;
  }
  bool event_done(void* e) override { return events.at(static_cast<int*>(e)); }
  void release_event(void* e) override {
    events.erase(static_cast<int*>(e));
    delete static_cast<int*>(e);
  }
  void synchronize() override {
    for (auto& kv : events) kv.second = true;
  }
};

}  // namespace

TEST(CachingAllocatorNoCache, EachBlockIsAnExactBackendAllocation) {
  auto owned = std::make_unique<ExactBackend>();
  ExactBackend* be = owned.get();
  CachingAllocator a(std::move(owned), "test", /*caching=*/false);
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
  auto owned = std::make_unique<ExactBackend>();
  ExactBackend* be = owned.get();
  CachingAllocator a(std::move(owned), "test", /*caching=*/false);
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
