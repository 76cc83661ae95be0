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
//  - every rank must call the same collectives in the same order with the same count,
//    datatype, op and root: each call posts a descriptor, and a mismatch (a skipped or
//    reordered collective included) returns ncclInvalidUsage on every rank and prints both
//    descriptors. The communicator stays usable afterwards (on a GPU it would not be).
//  - AllReduce (sum, prod, max, min, avg; in place when sendbuff == recvbuff), Broadcast
//    (sendbuff read on root only), AllGather (rank q's block at q*sendcount; in place when
//    sendbuff == recvbuff + rank*sendcount), ReduceScatter (rank r gets block r; in place
//    when recvbuff == sendbuff + rank*recvcount), on every nccl.h datatype but fp8.
// Transport: one shared-memory segment per communicator (a header and a 4 MiB staging area
// that large buffers pass through in chunks), phases separated by a sense-reversing barrier
// on atomics. Calls block until every rank has contributed (streams are synchronous in the
// emulator anyway). A wait longer than the timeout, or a peer that aborted or destroyed its
// communicator, sets the communicator's async error to ncclRemoteError and returns it;
// later calls return it at once. The last rank to join unlinks the segment's name (the
// mappings live on), and a failed init unlinks it when its last user leaves, so /dev/shm
// keeps nothing even if a process is killed later (a segment left by a process killed during
// init is removed by the next ncclGetUniqueId on the host).
// Rounding: reductions go in rank order 0..n-1; float16/bfloat16 reduce in float and round
// once per element, integers wrap; avg is the sum divided by nranks (for integers,
// truncated). A real NCCL's order (rings, trees) and half-precision rounding may differ.
#if defined(BIGMODEL_WITH_NCCL)
#include <cuda_runtime.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <nccl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <type_traits>

#include "core/half.h"
#include "tests/cuda_emu/emu_streams.h"

namespace {

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
  std::atomic<int32_t> failed;    // 1 + the rank whose wait timed out; 0 if none
  std::atomic<uint32_t> bar_count, bar_sense;
  RankSlot ranks[kMaxRanks];
  alignas(256) unsigned char stage[kStageBytes];
};
static_assert(std::atomic<int32_t>::is_always_lock_free, "cross-process atomics must be lock free");

thread_local std::string t_last_error;

void report(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void report(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  t_last_error = buf;
  std::fprintf(stderr, "[emu-nccl] %s\n", buf);
}

double timeout_seconds() {
  static const double t = [] {
    const char* e = std::getenv("BIGMODEL_EMU_NCCL_TIMEOUT");
    return e && *e ? std::atof(e) : 120.0;
  }();
  return t;
}

}  // namespace

struct ncclComm {
  Shared* sh = nullptr;
  std::string name;
  int rank = 0, nranks = 1, device = 0;
  uint32_t sense = 0;
  uint64_t seq = 0;
  ncclResult_t async_error = ncclSuccess;
};

namespace {

size_t slot_bytes(const ncclComm* c) { return kStageBytes / static_cast<size_t>(c->nranks) / 256 * 256; }
unsigned char* slot(ncclComm* c, int q) { return c->sh->stage + static_cast<size_t>(q) * slot_bytes(c); }

// Unmaps the segment; the last rank to leave unlinks its name (if the last joiner did not).
void detach(Shared* sh, const std::string& name) {
  if (sh->attached.fetch_sub(1) == 1) shm_unlink(name.c_str());
  munmap(sh, sizeof(Shared));
}

// Waits until pred() holds: yields at first, then sleeps. Fails after the timeout, or at
// once when a peer's wait has timed out or a peer left the communicator.
template <typename Pred>
ncclResult_t wait_until(Shared* sh, int rank, int nranks, Pred pred, const char* what) {
  const auto start = std::chrono::steady_clock::now();
  for (long spin = 0; !pred(); ++spin) {
    if (const int f = sh->failed.load()) {
      if (pred()) break;
      report("rank %d: %s: rank %d's wait timed out earlier; this communicator is broken", rank, what, f - 1);
      return ncclRemoteError;
    }
    for (int q = 0; q < nranks; ++q) {
      if (const int g = sh->ranks[q].gone.load()) {
        if (pred()) return ncclSuccess;  // it left after doing its part
        report("rank %d: %s: rank %d %s its communicator", rank, what, q, g == 2 ? "aborted" : "destroyed");
        return ncclRemoteError;
      }
    }
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double limit = timeout_seconds();
    if (limit > 0 && waited > limit) {
      int expected = 0;
      sh->failed.compare_exchange_strong(expected, rank + 1);
      report("rank %d: %s: no progress after %.0f s (BIGMODEL_EMU_NCCL_TIMEOUT): a rank has not called the "
             "matching NCCL function",
             rank, what, limit);
      return ncclRemoteError;
    }
    if (spin < 2000)
      sched_yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return ncclSuccess;
}

// Sense-reversing barrier over the communicator's ranks.
ncclResult_t barrier(ncclComm* c, const char* what) {
  Shared* sh = c->sh;
  c->sense ^= 1u;
  const uint32_t s = c->sense;
  if (sh->bar_count.fetch_add(1) + 1 == static_cast<uint32_t>(c->nranks)) {
    sh->bar_count.store(0);
    sh->bar_sense.store(s);
    return ncclSuccess;
  }
  return wait_until(sh, c->rank, c->nranks, [sh, s] { return sh->bar_sense.load() == s; }, what);
}

ncclResult_t fail(ncclComm* c, ncclResult_t r) {
  c->async_error = r;
  return r;
}

const char* kind_name(int32_t k) {
  switch (k) {
    case kAllReduce: return "ncclAllReduce";
    case kBroadcast: return "ncclBroadcast";
    case kAllGather: return "ncclAllGather";
    case kReduceScatter: return "ncclReduceScatter";
  }
  return "?";
}
const char* type_name(int32_t t) {
  static const char* names[] = {"int8",    "uint8",   "int32",    "uint32",  "int64",     "uint64",
                                "float16", "float32", "float64",  "bfloat16", "float8e4m3", "float8e5m2"};
  return t >= 0 && t < 12 ? names[t] : "?";
}
const char* op_name(int32_t o) {
  static const char* names[] = {"sum", "prod", "max", "min", "avg"};
  return o >= 0 && o < 5 ? names[o] : "?";
}
std::string describe(const CallDesc& d) {
  char buf[200];
  const char* count = d.kind == kAllGather ? "sendcount" : d.kind == kReduceScatter ? "recvcount" : "count";
  int n = std::snprintf(buf, sizeof buf, "collective #%llu %s(%s=%llu, %s", static_cast<unsigned long long>(d.seq),
                        kind_name(d.kind), count, static_cast<unsigned long long>(d.count), type_name(d.datatype));
  if (d.kind == kAllReduce || d.kind == kReduceScatter) n += std::snprintf(buf + n, sizeof buf - n, ", %s", op_name(d.op));
  if (d.kind == kBroadcast) n += std::snprintf(buf + n, sizeof buf - n, ", root=%d", d.root);
  std::snprintf(buf + n, sizeof buf - n, ")");
  return buf;
}
bool same_call(const CallDesc& a, const CallDesc& b) {
  return a.seq == b.seq && a.kind == b.kind && a.count == b.count && a.datatype == b.datatype && a.op == b.op &&
         a.root == b.root;
}

size_t type_size(int32_t t) {
  switch (t) {
    case ncclInt8: case ncclUint8: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
  }
  return 0;  // fp8 and unknown types are not emulated
}

// Local argument checks (a real NCCL returns these at once, before talking to its peers).
ncclResult_t check_args(ncclComm* c, const CallDesc& d, const void* send, const void* recv) {
  if (!c || !c->sh) {
    report("%s: the communicator is null or was destroyed", kind_name(d.kind));
    return ncclInvalidArgument;
  }
  if (type_size(d.datatype) == 0) {
    report("rank %d: %s: datatype %d is not supported here", c->rank, kind_name(d.kind), d.datatype);
    return ncclInvalidArgument;
  }
  if ((d.kind == kAllReduce || d.kind == kReduceScatter) && (d.op < ncclSum || d.op > ncclAvg)) {
    report("rank %d: %s: reduction op %d is not a built-in op", c->rank, kind_name(d.kind), d.op);
    return ncclInvalidArgument;
  }
  if (d.kind == kBroadcast && (d.root < 0 || d.root >= c->nranks)) {
    report("rank %d: ncclBroadcast: root %d is out of range for %d ranks", c->rank, d.root, c->nranks);
    return ncclInvalidArgument;
  }
  const bool needs_send = d.kind != kBroadcast || d.root == c->rank;
  if (d.count > 0 && (!recv || (needs_send && !send))) {
    report("rank %d: %s: null buffer", c->rank, kind_name(d.kind));
    return ncclInvalidArgument;
  }
  return ncclSuccess;
}

// Posts this rank's descriptor and compares every rank's with rank 0's.
ncclResult_t begin(ncclComm* c, CallDesc d) {
  if (c->async_error != ncclSuccess) return c->async_error;
  d.seq = ++c->seq;
  c->sh->ranks[c->rank].desc = d;
  if (ncclResult_t r = barrier(c, kind_name(d.kind))) return fail(c, r);
  const CallDesc d0 = c->sh->ranks[0].desc;
  int bad = -1;
  for (int q = 1; q < c->nranks && bad < 0; ++q)
    if (!same_call(c->sh->ranks[q].desc, d0)) bad = q;
  if (bad >= 0 && (c->rank == 0 || c->rank == bad)) {
    const CallDesc other = c->sh->ranks[c->rank == 0 ? bad : 0].desc;
    report("rank %d: collectives differ between ranks (every rank must call the same collectives in the same "
           "order): rank %d called %s, rank %d called %s",
           c->rank, c->rank, describe(d).c_str(), c->rank == 0 ? bad : 0, describe(other).c_str());
  } else if (bad >= 0) {
    t_last_error = "collectives differ between ranks";
  }
  // Nobody posts the next descriptor before everyone has compared this one.
  if (ncclResult_t r = barrier(c, kind_name(d.kind))) return fail(c, r);
  return bad >= 0 ? ncclInvalidUsage : ncclSuccess;
}

// ---- reductions ------------------------------------------------------------------------------
template <typename T> struct Acc { using type = T; };
template <> struct Acc<bigmodel::Half> { using type = float; };
template <> struct Acc<bigmodel::BFloat16> { using type = float; };

template <typename A> A combine(A a, A b, int op) {
  if constexpr (std::is_integral_v<A>) {  // two's complement wrap, no signed overflow
    using U = std::make_unsigned_t<A>;
    if (op == ncclProd) return static_cast<A>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
    if (op == ncclSum || op == ncclAvg) return static_cast<A>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    if (op == ncclProd) return a * b;
    if (op == ncclSum || op == ncclAvg) return a + b;
  }
  if (op == ncclMax) return b > a ? b : a;
  return b < a ? b : a;
}

// out[i] = op over q of part_q[i * stride + offset], in rank order.
template <typename T>
void reduce_parts(void* out, ncclComm* c, size_t elem_offset, size_t n, int op) {
  using A = typename Acc<T>::type;
  T* o = static_cast<T*>(out);
  for (size_t i = 0; i < n; ++i) {
    A a = static_cast<A>(reinterpret_cast<const T*>(slot(c, 0))[elem_offset + i]);
    for (int q = 1; q < c->nranks; ++q)
      a = combine<A>(a, static_cast<A>(reinterpret_cast<const T*>(slot(c, q))[elem_offset + i]), op);
    if (op == ncclAvg) a = static_cast<A>(a / static_cast<A>(c->nranks));
    o[i] = static_cast<T>(a);
  }
}

void reduce_slots(void* out, ncclComm* c, int32_t dt, size_t elem_offset, size_t n, int op) {
  switch (dt) {
    case ncclInt8: return reduce_parts<int8_t>(out, c, elem_offset, n, op);
    case ncclUint8: return reduce_parts<uint8_t>(out, c, elem_offset, n, op);
    case ncclInt32: return reduce_parts<int32_t>(out, c, elem_offset, n, op);
    case ncclUint32: return reduce_parts<uint32_t>(out, c, elem_offset, n, op);
    case ncclInt64: return reduce_parts<int64_t>(out, c, elem_offset, n, op);
    case ncclUint64: return reduce_parts<uint64_t>(out, c, elem_offset, n, op);
    case ncclFloat16: return reduce_parts<bigmodel::Half>(out, c, elem_offset, n, op);
    case ncclBfloat16: return reduce_parts<bigmodel::BFloat16>(out, c, elem_offset, n, op);
    case ncclFloat32: return reduce_parts<float>(out, c, elem_offset, n, op);
    case ncclFloat64: return reduce_parts<double>(out, c, elem_offset, n, op);
  }
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

const char* ncclGetLastError(ncclComm_t) { return t_last_error.c_str(); }

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
    report("ncclCommInitRank: rank %d of %d ranks is invalid (the emulator takes 1..%d ranks)", rank, nranks,
           kMaxRanks);
    return ncclInvalidArgument;
  }
  IdBlob blob;
  std::memcpy(&blob, id.internal, sizeof blob);
  if (std::memcmp(blob.magic, kMagic, sizeof kMagic) != 0 || !std::memchr(blob.shm_name, 0, sizeof blob.shm_name)) {
    report("ncclCommInitRank: rank %d was given a unique id that ncclGetUniqueId did not make (one rank must create "
           "it and carry it to every other rank)",
           rank);
    return ncclInvalidArgument;
  }
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return ncclUnhandledCudaError;
  const std::string name = blob.shm_name;

  const int fd = shm_open(name.c_str(), O_CREAT | O_RDWR, 0600);
  if (fd < 0) {
    report("ncclCommInitRank: shm_open(%s) failed: %s", name.c_str(), std::strerror(errno));
    return ncclSystemError;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (static_cast<size_t>(st.st_size) < sizeof(Shared) && ftruncate(fd, sizeof(Shared)) != 0)) {
    report("ncclCommInitRank: sizing %s failed: %s", name.c_str(), std::strerror(errno));
    close(fd);
    shm_unlink(name.c_str());
    return ncclSystemError;
  }
  void* map = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    report("ncclCommInitRank: mmap of %s failed: %s", name.c_str(), std::strerror(errno));
    shm_unlink(name.c_str());
    return ncclSystemError;
  }
  Shared* sh = static_cast<Shared*>(map);
  sh->attached.fetch_add(1);

  int expected = 0;
  if (!sh->nranks.compare_exchange_strong(expected, nranks) && expected != nranks) {
    report("ncclCommInitRank: rank %d says the communicator has %d ranks, another rank says %d", rank, nranks,
           expected);
    detach(sh, name);
    return ncclInvalidUsage;
  }
  int32_t unclaimed = 0;
  if (!sh->ranks[rank].claimed.compare_exchange_strong(unclaimed, 1)) {
    report("ncclCommInitRank: two callers asked for rank %d of the same communicator", rank);
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
    report("ncclCommInitRank: rank %d: only %d of %d ranks joined: does every rank call ncclCommInitRank with the "
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
      report("ncclCommInitRank: Duplicate GPU detected: rank %d and rank %d both on CUDA device %d of host %s "
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
  *comm = c;
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclInvalidArgument;
  if (comm->sh) {
    comm->sh->ranks[comm->rank].gone.store(1);
    detach(comm->sh, comm->name);
  }
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (!comm) return ncclSuccess;  // NCCL accepts a null communicator here
  if (comm->sh) {
    comm->sh->ranks[comm->rank].gone.store(2);
    detach(comm->sh, comm->name);
  }
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
  if (!comm || !async_error) return ncclInvalidArgument;
  *async_error = comm->async_error;
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
  bm_emu::library_call_waits(stream);  // BIGMODEL_EMU_ASYNC=1: after the stream's queued work
  const CallDesc d{0, kAllReduce, datatype, op, -1, count};
  if (ncclResult_t r = check_args(comm, d, sendbuff, recvbuff)) return r;
  if (ncclResult_t r = begin(comm, d)) return r;
  const size_t es = type_size(datatype), per = slot_bytes(comm) / es;
  for (size_t off = 0; off < count; off += per) {
    const size_t n = std::min(per, count - off);
    std::memcpy(slot(comm, comm->rank), static_cast<const unsigned char*>(sendbuff) + off * es, n * es);
    if (ncclResult_t r = barrier(comm, "ncclAllReduce")) return fail(comm, r);
    reduce_slots(static_cast<unsigned char*>(recvbuff) + off * es, comm, datatype, 0, n, op);
    if (ncclResult_t r = barrier(comm, "ncclAllReduce")) return fail(comm, r);
  }
  return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  bm_emu::library_call_waits(stream);  // BIGMODEL_EMU_ASYNC=1: after the stream's queued work
  const CallDesc d{0, kBroadcast, datatype, -1, root, count};
  if (ncclResult_t r = check_args(comm, d, sendbuff, recvbuff)) return r;
  if (ncclResult_t r = begin(comm, d)) return r;
  const size_t es = type_size(datatype), per = slot_bytes(comm) / es;
  for (size_t off = 0; off < count; off += per) {
    const size_t n = std::min(per, count - off);
    if (comm->rank == root)  // sendbuff is read on the root only
      std::memcpy(slot(comm, root), static_cast<const unsigned char*>(sendbuff) + off * es, n * es);
    if (ncclResult_t r = barrier(comm, "ncclBroadcast")) return fail(comm, r);
    std::memcpy(static_cast<unsigned char*>(recvbuff) + off * es, slot(comm, root), n * es);
    if (ncclResult_t r = barrier(comm, "ncclBroadcast")) return fail(comm, r);
  }
  return ncclSuccess;
}

ncclResult_t ncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                       cudaStream_t stream) {
  return ncclBroadcast(buff, buff, count, datatype, root, comm, stream);
}

ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
  bm_emu::library_call_waits(stream);  // BIGMODEL_EMU_ASYNC=1: after the stream's queued work
  const CallDesc d{0, kAllGather, datatype, -1, -1, sendcount};
  if (ncclResult_t r = check_args(comm, d, sendbuff, recvbuff)) return r;
  if (ncclResult_t r = begin(comm, d)) return r;
  const size_t es = type_size(datatype), per = slot_bytes(comm) / es;
  for (size_t off = 0; off < sendcount; off += per) {
    const size_t n = std::min(per, sendcount - off);
    std::memcpy(slot(comm, comm->rank), static_cast<const unsigned char*>(sendbuff) + off * es, n * es);
    if (ncclResult_t r = barrier(comm, "ncclAllGather")) return fail(comm, r);
    for (int q = 0; q < comm->nranks; ++q)
      std::memcpy(static_cast<unsigned char*>(recvbuff) + (q * sendcount + off) * es, slot(comm, q), n * es);
    if (ncclResult_t r = barrier(comm, "ncclAllGather")) return fail(comm, r);
  }
  return ncclSuccess;
}

ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  bm_emu::library_call_waits(stream);  // BIGMODEL_EMU_ASYNC=1: after the stream's queued work
  const CallDesc d{0, kReduceScatter, datatype, op, -1, recvcount};
  if (ncclResult_t r = check_args(comm, d, sendbuff, recvbuff)) return r;
  if (ncclResult_t r = begin(comm, d)) return r;
  const size_t es = type_size(datatype), nr = static_cast<size_t>(comm->nranks);
  const size_t per = slot_bytes(comm) / es / nr;  // each slot holds one piece of every rank's block
  for (size_t off = 0; off < recvcount; off += per) {
    const size_t n = std::min(per, recvcount - off);
    for (size_t p = 0; p < nr; ++p)
      std::memcpy(slot(comm, comm->rank) + p * n * es,
                  static_cast<const unsigned char*>(sendbuff) + (p * recvcount + off) * es, n * es);
    if (ncclResult_t r = barrier(comm, "ncclReduceScatter")) return fail(comm, r);
    reduce_slots(static_cast<unsigned char*>(recvbuff) + off * es, comm, datatype, comm->rank * n, n, op);
    if (ncclResult_t r = barrier(comm, "ncclReduceScatter")) return fail(comm, r);
  }
  return ncclSuccess;
}

ncclResult_t ncclGroupStart() { return ncclSuccess; }
ncclResult_t ncclGroupEnd() { return ncclSuccess; }

}  // extern "C"

#endif  // BIGMODEL_WITH_NCCL
