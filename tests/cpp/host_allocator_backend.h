// Shared by the caching allocator's tests (test_caching_allocator*.cpp): a host-memory
// AllocatorBackend with a byte budget (to provoke OOM) and events completed by hand or by
// synchronize(), and a fixture owning one behind a CachingAllocator.
#pragma once
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "core/cuda/caching_allocator.h"

namespace bigmodel::cuda::test_util {

struct HostBackend : AllocatorBackend {
  size_t budget = size_t{1} << 40;
  size_t in_use = 0;
  int allocs = 0, frees = 0, syncs = 0;
  std::map<void*, size_t> live;  // pointer -> bytes, of every allocation not yet freed
  std::map<int*, bool> events;   // event -> done
  bool events_complete_on_sync = true;

  void* raw_alloc(size_t n) override {
    if (in_use + n > budget) return nullptr;
    void* p = std::malloc(n);
    live[p] = n;
    in_use += n;
    ++allocs;
    return p;
  }
  void raw_free(void* p) override {
    in_use -= live.at(p);
    live.erase(p);
    std::free(p);
    ++frees;
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
    ++syncs;
    if (events_complete_on_sync)
      for (auto& kv : events) kv.second = true;
  }
  std::string describe_memory() override { return "host budget " + std::to_string(budget); }
  void complete_all() {
    for (auto& kv : events) kv.second = true;
  }
};

// A CachingAllocator ("test:0") over a HostBackend that the test can inspect and steer.
struct HostAllocatorFixture {
  HostBackend* backend = new HostBackend;  // owned by alloc
  CachingAllocator alloc;
  explicit HostAllocatorFixture(bool caching = CachingAllocator::caching_from_env())
      : alloc(std::unique_ptr<AllocatorBackend>(backend), "test:0", caching) {}
};

}  // namespace bigmodel::cuda::test_util
