// CUDA-on-CPU emulation: an emulated libnccl (-DBIGMODEL_CUDA=EMULATE with nccl.h found; it
// replaces libnccl in that build), so the NCCL process group runs under `mpirun -np N` on a
// machine without GPUs (with BIGMODEL_EMU_DEVICES=N emulated devices, see emu_cudart.cpp).
// It follows nccl.h and the NCCL user guide, not our wrapper, and checks the rules a real
// NCCL leaves to the caller (where a violation hangs or corrupts on a GPU):
//  - ncclGetUniqueId makes the id (a POSIX shared-memory name, unique by pid + random bits);
//    ncclCommInitRank is collective: every rank must pass that same id, the same nranks and
//    a distinct rank in [0, nranks). A rank that does not arrive within
//    BIGMODEL_EMU_NCCL_TIMEOUT seconds (default 120; 0 = forever) fails the others' init.
//  - a communicator takes the calling thread's current CUDA device; two ranks on the same
//    device of the same host fail with ncclInvalidUsage ("Duplicate GPU detected").
//  - collectives are asynchronous, as on a GPU: a call checks its arguments (errors returned
//    at once), then enqueues the collective on its stream and returns ncclSuccess. Each
//    communicator's worker thread runs its collectives in call order, each once its stream
//    reaches it (emu_streams.h: external work); the stream is busy until it is done, so
//    events recorded after it are not ready, syncs wait for it, later work waits for it.
//  - every rank must call the same collectives in the same order with the same count,
//    datatype, op and root: each collective posts a descriptor, and a mismatch (a skipped or
//    reordered collective included) becomes the communicator's async error
//    (ncclInvalidUsage) on every rank and prints both descriptors.
//  - failures are asynchronous too: a peer that aborted or destroyed its communicator, a peer
//    process that died, or no progress for BIGMODEL_EMU_NCCL_TIMEOUT seconds sets the async
//    error (ncclRemoteError; ncclCommGetAsyncError reports it, later calls return it at once)
//    and the collective hangs, as a GPU kernel waiting for a peer does, until ncclCommAbort
//    gives it up (its stream becomes free). ncclCommDestroy first waits for the enqueued
//    collectives (ncclCommFinalize's flush), giving them up after an error.
//  - AllReduce (sum, prod, max, min, avg; in place when sendbuff == recvbuff), Broadcast
//    (sendbuff read on root only), AllGather (rank q's block at q*sendcount; in place when
//    sendbuff == recvbuff + rank*sendcount), ReduceScatter (rank r gets block r; in place
//    when recvbuff == sendbuff + rank*recvcount), on every nccl.h datatype but fp8
//    (emu_nccl_ops.cpp).
// Transport: one shared-memory segment per communicator (a header and a 4 MiB staging area
// that large buffers pass through in chunks), phases separated by a sense-reversing barrier
// on atomics. The last rank to join unlinks the segment's name (the mappings live on), and a
// failed init unlinks it when its last user leaves, so /dev/shm keeps nothing even if a
// process is killed later (a segment left by a process killed during init is removed by the
// next ncclGetUniqueId on the host).
// Rounding: reductions go in rank order 0..n-1; float16/bfloat16 reduce in float and round
// once per element, integers wrap; avg is the sum divided by nranks (for integers,
// truncated). A real NCCL's order (rings, trees) and half-precision rounding may differ.
#if defined(BIGMODEL_WITH_NCCL)
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "tests/cuda_emu/emu_nccl_impl.h"

namespace bm_emu_nccl {

thread_local std::string t_last_error;

void report(ncclComm* c, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  t_last_error = buf;
  if (c) {
    std::lock_guard<std::mutex> lock(c->err_m);
    c->last_error = buf;
  }
  std::fprintf(stderr, "[emu-nccl] %s\n", buf);
}

double timeout_seconds() {
  static const double t = [] {
    const char* e = std::getenv("BIGMODEL_EMU_NCCL_TIMEOUT");
    return e && *e ? std::atof(e) : 120.0;
  }();
  return t;
}

namespace {

// Unmaps the segment; the last rank to leave unlinks its name (if the last joiner did not).
void detach(Shared* sh, const std::string& name) {
  if (sh->attached.fetch_sub(1) == 1) shm_unlink(name.c_str());
  munmap(sh, sizeof(Shared));
}

// The communicator's worker: runs the queued collectives in call order, each once its stream
// has reached it. After a failure it sets the async error and leaves the collective (and
// those behind it) pending until ncclCommAbort or ncclCommDestroy gives them up.
void worker_main(ncclComm* c) {
  for (;;) {
    Op op;
    {
      std::unique_lock<std::mutex> lock(c->m);
      c->cv.wait(lock, [c] { return c->stop || c->abort_flag.load() || !c->queue.empty(); });
      if (c->abort_flag.load() || c->queue.empty()) break;  // aborted, or destroyed with nothing left
      op = c->queue.front();
    }
    for (long spin = 0; !op.work->startable(); ++spin) {  // its stream has not reached it yet
      if (c->abort_flag.load()) break;
      if (spin < 200) {
        sched_yield();
        continue;
      }
      // BIGMODEL_EMU_ASYNC=1 runs a stream's work only when the host forces it; a GPU runs it
      // anyway, and the peers wait for this collective: after ~5 ms the worker runs the stream
      // up to it (not the streams it does not wait for, so missing waits still show).
      if (spin % 100 == 0) bm_emu::kick_external(op.work, true);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    if (c->abort_flag.load()) break;
    const ncclResult_t r = run_collective(c, op);
    if (r == ncclSuccess) {
      {
        std::lock_guard<std::mutex> lock(c->m);
        c->queue.pop_front();
      }
      op.work->finish();
      continue;
    }
    if (c->abort_flag.load()) break;
    int expected = ncclSuccess;
    c->async_error.compare_exchange_strong(expected, r);
    std::unique_lock<std::mutex> lock(c->m);  // hangs, as the kernel would, until given up
    c->cv.wait(lock, [c] { return c->stop || c->abort_flag.load(); });
    break;
  }
  // Give up what is left: its streams become free (its results are undefined).
  std::deque<Op> left;
  {
    std::lock_guard<std::mutex> lock(c->m);
    left.swap(c->queue);
  }
  for (Op& op : left) op.work->finish();
}

// Stops the worker (aborting: at once; destroying: after the flush) and frees the comm.
void shut_down(ncclComm* c, int gone) {
  {
    std::lock_guard<std::mutex> lock(c->m);
    c->stop = true;
    if (gone == 2) c->abort_flag.store(true);
  }
  c->cv.notify_all();
  if (c->worker.joinable()) c->worker.join();
  if (c->sh) {
    c->sh->ranks[c->rank].gone.store(gone);
    detach(c->sh, c->name);
  }
  delete c;
}

ncclResult_t enqueue(ncclComm* c, CallDesc d, const void* send, void* recv, cudaStream_t stream) {
  if (ncclResult_t r = check_args(c, d, send, recv)) return r;
  if (const int e = c->async_error.load()) {
    report(c, "rank %d: %s: the communicator has failed (async error %d); abort it", c->rank, kind_name(d.kind), e);
    return static_cast<ncclResult_t>(e);
  }
  d.seq = ++c->seq;
  auto w = std::make_shared<bm_emu::ExternalWork>();
  w->what = kind_name(d.kind);
  bm_emu::enqueue_external(stream, w);
  {
    std::lock_guard<std::mutex> lock(c->m);
    c->queue.push_back(Op{d, send, recv, w});
  }
  c->cv.notify_all();
  return ncclSuccess;
}

// A process killed inside ncclCommInitRank (before every rank joined) leaves its segment's
// name behind: names whose creator (the pid in the name) is gone are removed here.
void remove_stale_segments() {
  DIR* dir = opendir("/dev/shm");
  if (!dir) return;
  while (const dirent* e = readdir(dir)) {
    int pid = 0;
    if (std::sscanf(e->d_name, "bm_emu_nccl_%d_", &pid) == 1 && pid > 0 && kill(pid, 0) != 0 && errno == ESRCH)
      shm_unlink((std::string("/") + e->d_name).c_str());
  }
  closedir(dir);
}

}  // namespace
}  // namespace bm_emu_nccl

using namespace bm_emu_nccl;

extern "C" {

const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (emulated NCCL)";
    case ncclSystemError: return "unhandled system error (emulated NCCL: shared memory)";
    case ncclInternalError: return "internal error (emulated NCCL)";
    case ncclInvalidArgument: return "invalid argument (emulated NCCL)";
    case ncclInvalidUsage: return "invalid usage (emulated NCCL)";
    case ncclRemoteError: return "remote process exited or did not take part in time (emulated NCCL)";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code (emulated NCCL)";
  }
}

const char* ncclGetLastError(ncclComm_t comm) {
  if (comm) {
    std::lock_guard<std::mutex> lock(comm->err_m);
    if (!comm->last_error.empty()) t_last_error = comm->last_error;  // the worker's report
  }
  return t_last_error.c_str();
}

ncclResult_t ncclGetVersion(int* version) {
  if (!version) return ncclInvalidArgument;
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (!id) return ncclInvalidArgument;
  remove_stale_segments();
  std::memset(id, 0, sizeof *id);
  IdBlob blob{};
  std::memcpy(blob.magic, kMagic, sizeof kMagic);
  std::random_device rd;
  blob.nonce = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  std::snprintf(blob.shm_name, sizeof blob.shm_name, "/bm_emu_nccl_%d_%016llx", static_cast<int>(getpid()),
                static_cast<unsigned long long>(blob.nonce));
  std::memcpy(id->internal, &blob, sizeof blob);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  if (!comm) return ncclInvalidArgument;
  *comm = nullptr;
  if (nranks < 1 || nranks > kMaxRanks || rank < 0 || rank >= nranks) {
    report(nullptr, "ncclCommInitRank: rank %d of %d ranks is invalid (the emulator takes 1..%d ranks)", rank, nranks,
           kMaxRanks);
    return ncclInvalidArgument;
  }
  IdBlob blob;
  std::memcpy(&blob, id.internal, sizeof blob);
  if (std::memcmp(blob.magic, kMagic, sizeof kMagic) != 0 || !std::memchr(blob.shm_name, 0, sizeof blob.shm_name)) {
    report(nullptr, "ncclCommInitRank: rank %d was given a unique id that ncclGetUniqueId did not make (one rank must create "
           "it and carry it to every other rank)",
           rank);
    return ncclInvalidArgument;
  }
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return ncclUnhandledCudaError;
  const std::string name = blob.shm_name;

  const int fd = shm_open(name.c_str(), O_CREAT | O_RDWR, 0600);
  if (fd < 0) {
    report(nullptr, "ncclCommInitRank: shm_open(%s) failed: %s", name.c_str(), std::strerror(errno));
    return ncclSystemError;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (static_cast<size_t>(st.st_size) < sizeof(Shared) && ftruncate(fd, sizeof(Shared)) != 0)) {
    report(nullptr, "ncclCommInitRank: sizing %s failed: %s", name.c_str(), std::strerror(errno));
    close(fd);
    shm_unlink(name.c_str());
    return ncclSystemError;
  }
  void* map = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    report(nullptr, "ncclCommInitRank: mmap of %s failed: %s", name.c_str(), std::strerror(errno));
    shm_unlink(name.c_str());
    return ncclSystemError;
  }
  Shared* sh = static_cast<Shared*>(map);
  sh->attached.fetch_add(1);

  int expected = 0;
  if (!sh->nranks.compare_exchange_strong(expected, nranks) && expected != nranks) {
    report(nullptr, "ncclCommInitRank: rank %d says the communicator has %d ranks, another rank says %d", rank, nranks,
           expected);
    detach(sh, name);
    return ncclInvalidUsage;
  }
  int32_t unclaimed = 0;
  if (!sh->ranks[rank].claimed.compare_exchange_strong(unclaimed, 1)) {
    report(nullptr, "ncclCommInitRank: two callers asked for rank %d of the same communicator", rank);
    detach(sh, name);
    return ncclInvalidUsage;
  }
  RankSlot& me = sh->ranks[rank];
  me.device = device;
  me.pid = static_cast<int32_t>(getpid());
  if (gethostname(me.host, sizeof me.host) != 0) std::snprintf(me.host, sizeof me.host, "?");
  me.host[sizeof me.host - 1] = 0;
  if (sh->joined.fetch_add(1) + 1 == nranks) shm_unlink(name.c_str());  // all attached: the name can go

  ncclResult_t r = wait_until(sh, rank, nranks, [sh, nranks] { return sh->joined.load() == nranks; },
                              "ncclCommInitRank");
  if (r != ncclSuccess) {
    report(nullptr, "ncclCommInitRank: rank %d: only %d of %d ranks joined: does every rank call ncclCommInitRank with the "
           "unique id that one rank made with ncclGetUniqueId?",
           rank, sh->joined.load(), nranks);
    detach(sh, name);
    return r;
  }
  // NCCL allows one rank per GPU: two ranks on one device of one host are refused.
  for (int q = 0; q < nranks && r == ncclSuccess; ++q) {
    if (q == rank) continue;
    const RankSlot& other = sh->ranks[q];
    if (other.device == device && std::strncmp(other.host, me.host, sizeof me.host) == 0) {
      report(nullptr, "ncclCommInitRank: Duplicate GPU detected: rank %d and rank %d both on CUDA device %d of host %s "
             "(each rank must make its own GPU current before ncclCommInitRank)",
             rank, q, device, me.host);
      r = ncclInvalidUsage;
    }
  }
  if (r != ncclSuccess) {
    detach(sh, name);
    return r;
  }
  auto* c = new ncclComm;
  c->sh = sh;
  c->name = name;
  c->rank = rank;
  c->nranks = nranks;
  c->device = device;
  c->worker = std::thread(worker_main, c);
  *comm = c;
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclInvalidArgument;
  // As ncclCommFinalize: the enqueued collectives complete first (their streams are run up to
  // them in the async mode), unless the communicator has failed.
  for (;;) {
    std::vector<bm_emu::ExternalPtr> pending;
    {
      std::lock_guard<std::mutex> lock(comm->m);
      if (comm->queue.empty() || comm->async_error.load() != ncclSuccess) break;
      for (const Op& op : comm->queue) pending.push_back(op.work);
    }
    for (const auto& w : pending) bm_emu::kick_external(w);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  shut_down(comm, 1);
  return ncclSuccess;
}

// Gives up the pending collectives (their streams become free) and frees the communicator.
ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (!comm) return ncclSuccess;  // NCCL accepts a null communicator here
  shut_down(comm, 2);
  return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
  if (!comm || !async_error) return ncclInvalidArgument;
  *async_error = static_cast<ncclResult_t>(comm->async_error.load());
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  if (!comm || !count) return ncclInvalidArgument;
  *count = comm->nranks;
  return ncclSuccess;
}
ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device) {
  if (!comm || !device) return ncclInvalidArgument;
  *device = comm->device;
  return ncclSuccess;
}
ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  if (!comm || !rank) return ncclInvalidArgument;
  *rank = comm->rank;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  return enqueue(comm, CallDesc{0, kAllReduce, datatype, op, -1, count}, sendbuff, recvbuff, stream);
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  return enqueue(comm, CallDesc{0, kBroadcast, datatype, -1, root, count}, sendbuff, recvbuff, stream);
}

ncclResult_t ncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                       cudaStream_t stream) {
  return ncclBroadcast(buff, buff, count, datatype, root, comm, stream);
}

ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
  return enqueue(comm, CallDesc{0, kAllGather, datatype, -1, -1, sendcount}, sendbuff, recvbuff, stream);
}

ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  return enqueue(comm, CallDesc{0, kReduceScatter, datatype, op, -1, recvcount}, sendbuff, recvbuff, stream);
}

ncclResult_t ncclGroupStart() { return ncclSuccess; }
ncclResult_t ncclGroupEnd() { return ncclSuccess; }

}  // extern "C"

#endif  // BIGMODEL_WITH_NCCL
