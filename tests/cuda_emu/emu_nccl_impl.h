// CUDA-on-CPU emulation: what the emulated NCCL's two files share (emu_nccl.cpp: the API,
// communicators and their worker threads; emu_nccl_ops.cpp: the data movement of one
// collective, the call descriptors and the waits between ranks). -DBIGMODEL_CUDA=EMULATE only.
#pragma once
#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tests/cuda_emu/emu_streams.h"

namespace bm_emu_nccl {

constexpr char kMagic[8] = "BMEMNCL";
constexpr int kMaxRanks = 64;
constexpr size_t kStageBytes = size_t{4} << 20;

// What the 128-byte ncclUniqueId carries.
struct IdBlob {
  char magic[8];
  char shm_name[64];
  uint64_t nonce;
};
static_assert(sizeof(IdBlob) <= NCCL_UNIQUE_ID_BYTES, "the id blob must fit ncclUniqueId");

enum Kind : int32_t { kAllReduce = 1, kBroadcast, kAllGather, kReduceScatter };

// One rank's view of a collective call, compared across ranks before any data moves.
struct CallDesc {
  uint64_t seq;  // 1 for a communicator's first collective, then 2, 3, ...
  int32_t kind, datatype, op, root;
  uint64_t count;  // count (AllReduce, Broadcast), sendcount (AllGather), recvcount (ReduceScatter)
};

struct RankSlot {
  std::atomic<int32_t> claimed;  // 1 once a rank took this rank number
  std::atomic<int32_t> gone;     // 1 destroyed, 2 aborted
  int32_t device, pid;
  char host[64];
  CallDesc desc;
};

// The shared segment. A zero-filled segment (fresh from ftruncate) is a valid initial state.
struct Shared {
  std::atomic<int32_t> nranks;    // set by the first rank to attach
  std::atomic<int32_t> attached;  // ranks that have it mapped
  std::atomic<int32_t> joined;    // ranks registered by ncclCommInitRank
  std::atomic<int32_t> failed;    // 1 + the rank whose wait failed (timeout, dead peer); 0 if none
  std::atomic<uint32_t> bar_count, bar_sense;
  RankSlot ranks[kMaxRanks];
  alignas(256) unsigned char stage[kStageBytes];
};
static_assert(std::atomic<int32_t>::is_always_lock_free, "cross-process atomics must be lock free");

// One enqueued collective: what it does, and its external work on the stream (finished when
// the transfer is done, or given up by ncclCommAbort).
struct Op {
  CallDesc d;
  const void* send;
  void* recv;
  bm_emu::ExternalPtr work;
};

}  // namespace bm_emu_nccl

struct ncclComm {
  bm_emu_nccl::Shared* sh = nullptr;
  std::string name;
  int rank = 0, nranks = 1, device = 0;
  uint64_t seq = 0;      // collectives enqueued (the host thread's count)
  uint32_t sense = 0;    // the worker's barrier sense
  std::atomic<int> async_error{ncclSuccess};
  std::atomic<bool> abort_flag{false};
  // The worker: runs the queue in call order, one collective at a time.
  std::mutex m;
  std::condition_variable cv;
  std::deque<bm_emu_nccl::Op> queue;  // front: running (or waiting to start)
  bool stop = false;
  std::thread worker;
  std::mutex err_m;
  std::string last_error;  // the worker's last report (ncclGetLastError)
};

namespace bm_emu_nccl {

// Prints "[emu-nccl] ..." and keeps it as the calling thread's (and `c`'s) last error.
void report(ncclComm* c, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
double timeout_seconds();  // BIGMODEL_EMU_NCCL_TIMEOUT (default 120; 0 = forever)

// Waits until pred() holds (yields, then sleeps). Fails (ncclRemoteError, reported) after the
// timeout, when a peer's wait failed, a peer left the communicator or its process died, and
// (ncclInternalError, quietly) when `abort` is set.
ncclResult_t wait_until_impl(Shared* sh, int rank, int nranks, bool (*pred)(const void*), const void* ctx,
                             const char* what, const std::atomic<bool>* abort, ncclComm* c);
template <typename Pred>
ncclResult_t wait_until(Shared* sh, int rank, int nranks, Pred pred, const char* what,
                        const std::atomic<bool>* abort = nullptr, ncclComm* c = nullptr) {
  return wait_until_impl(sh, rank, nranks, [](const void* p) { return (*static_cast<const Pred*>(p))(); }, &pred,
                         what, abort, c);
}

const char* kind_name(int32_t k);
size_t type_size(int32_t t);
// Local argument checks (a real NCCL returns these at once, before talking to its peers).
ncclResult_t check_args(ncclComm* c, const CallDesc& d, const void* send, const void* recv);
// Runs one collective with the peers (the worker thread): compares the descriptors, then
// moves the data through the staging area.
ncclResult_t run_collective(ncclComm* c, const Op& op);

}  // namespace bm_emu_nccl
