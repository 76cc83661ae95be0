// The CPU allocator's block cache (core/allocator_cache.h): size classes, reuse of freed
// large blocks, zeros() still zeroing a reused block, empty_cache, the byte limit with
// least-recently-used eviction, switching off, and allocation from several threads.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "core/allocator.h"
#include "core/allocator_cache.h"
#include "core/ops/creation.h"
#include "core/tensor.h"

using namespace bigmodel;

namespace {

// Turns the cache on for one test (sanitizer builds have it off by default) and restores
// the previous setting; starts and ends with an empty cache.
struct CacheOn {
  bool was = set_cpu_cache_enabled(true);
  CacheOn() { cpu_empty_cache(); }
  ~CacheOn() {
    cpu_empty_cache();
    set_cpu_cache_enabled(was);
  }
};

constexpr int64_t kLarge = 300000;  // floats: 1.2 MB, above CpuBlockCache::kMinBytes

}  // namespace

TEST(CpuAllocatorCache, SizeClassesRoundUpByAtMostAnEighth) {
  EXPECT_EQ(CpuBlockCache::block_size(0), 64u);
  EXPECT_EQ(CpuBlockCache::block_size(1), 64u);
  EXPECT_EQ(CpuBlockCache::block_size(100), 128u);
  EXPECT_EQ(CpuBlockCache::block_size(CpuBlockCache::kMinBytes - 64), CpuBlockCache::kMinBytes - 64);
  EXPECT_FALSE(CpuBlockCache::cacheable(CpuBlockCache::block_size(CpuBlockCache::kMinBytes - 64)));
  EXPECT_EQ(CpuBlockCache::block_size(size_t{1} << 20), size_t{1} << 20);
  EXPECT_EQ(CpuBlockCache::block_size((size_t{1} << 20) + 1), (size_t{1} << 20) + (size_t{1} << 17));
  std::mt19937_64 gen(7);
  for (int i = 0; i < 2000; ++i) {
    const size_t n = gen() % (size_t{1} << 32);
    const size_t b = CpuBlockCache::block_size(n);
    ASSERT_GE(b, n);
    ASSERT_EQ(b % 64, 0u);
    if (b >= CpuBlockCache::kMinBytes) {
      ASSERT_LE(b - n, n / 8 + 64) << n;
    }
    ASSERT_EQ(CpuBlockCache::block_size(b), b) << n;  // a class bound is its own class
  }
}

TEST(CpuAllocatorCache, FreedLargeBlockIsReusedAndZerosStillZero) {
  CacheOn on;
  const CpuMemoryStats before = cpu_memory_stats();
  void* first = nullptr;
  {
    Tensor t = full({kLarge}, 7.5, DType::Float32);
    first = t.data_ptr();
  }
  EXPECT_GE(cpu_memory_stats().cached_bytes, static_cast<int64_t>(kLarge * 4));
  // A slightly smaller request of the same class takes the same block; zeros() must still
  // clear the 7.5s the block holds.
  Tensor z = zeros({kLarge - 10}, DType::Float32);
  EXPECT_EQ(z.data_ptr(), first);
  const float* p = z.data<float>();
  for (int64_t i = 0; i < kLarge - 10; ++i) ASSERT_EQ(p[i], 0.0f) << i;
  const CpuMemoryStats after = cpu_memory_stats();
  EXPECT_EQ(after.cache_hits - before.cache_hits, 1);
  EXPECT_EQ(after.cached_bytes, 0);
  EXPECT_EQ(after.allocated_bytes - before.allocated_bytes, (kLarge - 10) * 4);  // requested bytes
}

TEST(CpuAllocatorCache, SmallBlocksAndOtherClassesAreNotServedFromTheCache) {
  CacheOn on;
  { Tensor small = empty({100}, DType::Float32); }
  EXPECT_EQ(cpu_memory_stats().cached_bytes, 0);
  { Tensor big = empty({kLarge}, DType::Float32); }
  const int64_t hits = cpu_memory_stats().cache_hits;
  Tensor twice = empty({2 * kLarge}, DType::Float32);  // another class: a fresh block
  EXPECT_EQ(cpu_memory_stats().cache_hits, hits);
  EXPECT_GT(cpu_memory_stats().cached_bytes, 0);  // the first block still waits
}

TEST(CpuAllocatorCache, EmptyCacheReleasesEverythingAndAllocationStillWorks) {
  CacheOn on;
  { Tensor a = empty({kLarge}, DType::Float32), b = empty({3 * kLarge}, DType::Float32); }
  EXPECT_GE(cpu_memory_stats().cached_bytes, 4 * kLarge * 4);
  cpu_empty_cache();
  EXPECT_EQ(cpu_memory_stats().cached_bytes, 0);
  cpu_empty_cache();  // on an empty cache: nothing to do
  const int64_t hits = cpu_memory_stats().cache_hits;
  Tensor c = full({kLarge}, 2.0, DType::Float32);
  EXPECT_EQ(c.data<float>()[kLarge - 1], 2.0f);
  EXPECT_EQ(cpu_memory_stats().cache_hits, hits);
}

TEST(CpuAllocatorCache, SwitchedOffItKeepsNothing) {
  CacheOn on;
  { Tensor a = empty({kLarge}, DType::Float32); }
  EXPECT_GT(cpu_memory_stats().cached_bytes, 0);
  EXPECT_TRUE(set_cpu_cache_enabled(false));
  EXPECT_FALSE(cpu_cache_enabled());
  EXPECT_EQ(cpu_memory_stats().cached_bytes, 0);  // turning it off released the block
  { Tensor b = empty({kLarge}, DType::Float32); }
  EXPECT_EQ(cpu_memory_stats().cached_bytes, 0);
  // A block allocated while off has its class's size, so it may be cached once back on.
  Tensor c = empty({kLarge}, DType::Float32);
  set_cpu_cache_enabled(true);
  void* p = c.data_ptr();
  c = Tensor();
  Tensor d = empty({kLarge + 5}, DType::Float32);
  EXPECT_EQ(d.data_ptr(), p);
}

TEST(CpuAllocatorCache, LimitEvictsLeastRecentlyUsedClassFirst) {
  const size_t a = CpuBlockCache::block_size(1 << 18), b = CpuBlockCache::block_size(1 << 19);
  CpuBlockCache cache(a + b);
  void* pa = std::aligned_alloc(64, a);
  void* pb = std::aligned_alloc(64, b);
  void* pa2 = std::aligned_alloc(64, a);
  ASSERT_TRUE(cache.put(pa, a));
  ASSERT_TRUE(cache.put(pb, b));
  EXPECT_EQ(cache.idle_bytes(), a + b);
  ASSERT_TRUE(cache.put(pa2, a));  // over the limit: class a (older) is evicted first
  EXPECT_EQ(cache.idle_bytes(), a + b);
  EXPECT_EQ(cache.take(a), pa2);
  EXPECT_EQ(cache.take(a), nullptr);
  EXPECT_EQ(cache.take(b), pb);
  EXPECT_EQ(cache.hits(), 2);
  void* huge = std::aligned_alloc(64, 2 * (a + b));
  EXPECT_FALSE(cache.put(huge, 2 * (a + b)));  // larger than the limit: the caller frees it
  std::free(huge);
  ASSERT_TRUE(cache.put(pa2, a));
  ASSERT_TRUE(cache.put(pb, b));
  cache.set_limit(b);  // shrinking evicts down to the new limit
  EXPECT_LE(cache.idle_bytes(), b);
  cache.release_all();
  EXPECT_EQ(cache.idle_bytes(), 0u);
}

TEST(CpuAllocatorCache, ThreadsNeverShareALiveBlock) {
  CacheOn on;
  const int64_t base = cpu_memory_stats().allocated_bytes;
  auto worker = [](int seed, bool* ok) {
    std::mt19937 gen(seed);
    std::vector<Tensor> live;
    for (int i = 0; i < 150; ++i) {
      const int64_t n = 40000 + static_cast<int64_t>(gen() % 4) * 40000;  // four size classes
      Tensor t = full({n}, static_cast<double>(seed), DType::Int32);
      live.push_back(t);
      if (live.size() > 3) {
        // Every element still holds this thread's value: no other thread got the block.
        const Tensor& old = live.front();
        const int32_t* p = old.data<int32_t>();
        for (int64_t j = 0; j < old.numel(); j += 997) {
          if (p[j] != seed) *ok = false;
        }
        live.erase(live.begin());
      }
    }
  };
  constexpr int kThreads = 4;
  bool ok[kThreads] = {true, true, true, true};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i + 1, &ok[i]);
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_TRUE(ok[i]) << "thread " << i;
  EXPECT_EQ(cpu_memory_stats().allocated_bytes, base);
  EXPECT_GT(cpu_memory_stats().cache_hits, 0);
}

#if !defined(__SANITIZE_ADDRESS__)  // ASan aborts on an absurd request instead of returning null
TEST(CpuAllocatorCache, FailedAllocationReleasesTheCacheAndThrows) {
  CacheOn on;
  { Tensor a = empty({kLarge}, DType::Float32); }
  EXPECT_GT(cpu_memory_stats().cached_bytes, 0);
  EXPECT_THROW(cpu_allocator()->allocate(size_t{1} << 50), OutOfMemoryError);
  EXPECT_EQ(cpu_memory_stats().cached_bytes, 0);
}
#endif

// fork() while other threads allocate large blocks: the child's cache lock is free (the
// atfork handlers hold it across the fork), so a child that allocates does not hang. alarm()
// turns a hang into a signal the parent sees, never a stuck test.
TEST(CpuAllocatorCache, ForkWhileOtherThreadsAllocateDoesNotDeadlockTheChild) {
  CacheOn on;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&stop] {
      while (!stop.load()) Tensor t = empty({kLarge}, DType::Float32);
    });
  int bad = 0;
  for (int round = 0; round < 100; ++round) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      alarm(5);
      // Only the allocator: no kernels (OpenMP's thread pool is not usable after fork).
      Tensor t = empty({kLarge}, DType::Float32);
      float* p = t.data<float>();
      p[kLarge - 1] = 1.0f;
      _exit(p[kLarge - 1] == 1.0f ? 0 : 3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++bad;
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad, 0) << "children that hung (SIGALRM) or failed";
}
