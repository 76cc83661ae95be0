// CUDA-on-CPU emulation: the data movement of the emulated NCCL's collectives (the worker
// thread of a communicator runs them, emu_nccl.cpp) and the waits between ranks: descriptors
// compared before any data moves, a sense-reversing barrier on atomics in the shared segment,
// staging in chunks. A wait gives up after BIGMODEL_EMU_NCCL_TIMEOUT, when a peer left the
// communicator or its process died (kill(pid, 0) on the pids recorded at init: a real NCCL's
// proxy notices the closed socket), or when the communicator is aborted.
#if defined(BIGMODEL_WITH_NCCL)
#include <signal.h>
#include <sched.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <type_traits>

#include "core/half.h"
#include "tests/cuda_emu/emu_nccl_impl.h"

namespace bm_emu_nccl {
namespace {

// A process that exited (or was killed): gone, or a zombie not yet reaped by its parent.
bool process_dead(int pid) {
  if (pid <= 0 || pid == static_cast<int>(getpid())) return false;
  if (kill(pid, 0) != 0) return errno == ESRCH;
  char path[64], buf[256];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return false;
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* paren = std::strrchr(buf, ')');  // "pid (comm) S ..."
  return paren && (paren[2] == 'Z' || paren[2] == 'X');
}

size_t slot_bytes(const ncclComm* c) { return kStageBytes / static_cast<size_t>(c->nranks) / 256 * 256; }
unsigned char* slot(ncclComm* c, int q) { return c->sh->stage + static_cast<size_t>(q) * slot_bytes(c); }

}  // namespace

ncclResult_t wait_until_impl(Shared* sh, int rank, int nranks, bool (*pred)(const void*), const void* ctx,
                             const char* what, const std::atomic<bool>* abort, ncclComm* c) {
  const auto start = std::chrono::steady_clock::now();
  auto last_liveness = start;
  for (long spin = 0; !pred(ctx); ++spin) {
    if (abort && abort->load()) return ncclInternalError;  // ncclCommAbort: give up quietly
    if (const int f = sh->failed.load()) {
      if (pred(ctx)) break;
      report(c, "rank %d: %s: rank %d's wait failed earlier; this communicator is broken", rank, what, f - 1);
      return ncclRemoteError;
    }
    for (int q = 0; q < nranks; ++q) {
      if (const int g = sh->ranks[q].gone.load()) {
        if (pred(ctx)) return ncclSuccess;  // it left after doing its part
        report(c, "rank %d: %s: rank %d %s its communicator", rank, what, q, g == 2 ? "aborted" : "destroyed");
        return ncclRemoteError;
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_liveness > std::chrono::milliseconds(20)) {  // a syscall per peer: not every spin
      last_liveness = now;
      for (int q = 0; q < nranks; ++q) {
        if (q == rank || !sh->ranks[q].claimed.load() || !process_dead(sh->ranks[q].pid)) continue;
        if (pred(ctx)) return ncclSuccess;
        int expected = 0;
        sh->failed.compare_exchange_strong(expected, rank + 1);
        report(c, "rank %d: %s: rank %d (pid %d) died: its process exited or was killed", rank, what, q,
               sh->ranks[q].pid);
        return ncclRemoteError;
      }
    }
    const double waited = std::chrono::duration<double>(now - start).count();
    const double limit = timeout_seconds();
    if (limit > 0 && waited > limit) {
      int expected = 0;
      sh->failed.compare_exchange_strong(expected, rank + 1);
      report(c, "rank %d: %s: no progress after %.0f s (BIGMODEL_EMU_NCCL_TIMEOUT): a rank has not called the "
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

namespace {

// Sense-reversing barrier over the communicator's ranks (the worker thread only).
ncclResult_t barrier(ncclComm* c, const char* what) {
  Shared* sh = c->sh;
  c->sense ^= 1u;
  const uint32_t s = c->sense;
  if (sh->bar_count.fetch_add(1) + 1 == static_cast<uint32_t>(c->nranks)) {
    sh->bar_count.store(0);
    sh->bar_sense.store(s);
    return ncclSuccess;
  }
  return wait_until(sh, c->rank, c->nranks, [sh, s] { return sh->bar_sense.load() == s; }, what, &c->abort_flag, c);
}

const char* kind_name_impl(int32_t k) {
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
                        kind_name_impl(d.kind), count, static_cast<unsigned long long>(d.count), type_name(d.datatype));
  if (d.kind == kAllReduce || d.kind == kReduceScatter) n += std::snprintf(buf + n, sizeof buf - n, ", %s", op_name(d.op));
  if (d.kind == kBroadcast) n += std::snprintf(buf + n, sizeof buf - n, ", root=%d", d.root);
  std::snprintf(buf + n, sizeof buf - n, ")");
  return buf;
}
bool same_call(const CallDesc& a, const CallDesc& b) {
  return a.seq == b.seq && a.kind == b.kind && a.count == b.count && a.datatype == b.datatype && a.op == b.op &&
         a.root == b.root;
}

size_t type_size_impl(int32_t t) {
  switch (t) {
    case ncclInt8: case ncclUint8: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
  }
  return 0;  // fp8 and unknown types are not emulated
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

// Posts this rank's descriptor and compares every rank's with rank 0's.
ncclResult_t begin(ncclComm* c, const CallDesc& d) {
  c->sh->ranks[c->rank].desc = d;
  if (ncclResult_t r = barrier(c, kind_name_impl(d.kind))) return r;
  const CallDesc d0 = c->sh->ranks[0].desc;
  int bad = -1;
  for (int q = 1; q < c->nranks && bad < 0; ++q)
    if (!same_call(c->sh->ranks[q].desc, d0)) bad = q;
  if (bad >= 0 && (c->rank == 0 || c->rank == bad)) {
    const CallDesc other = c->sh->ranks[c->rank == 0 ? bad : 0].desc;
    report(c, "rank %d: collectives differ between ranks (every rank must call the same collectives in the same "
           "order): rank %d called %s, rank %d called %s",
           c->rank, c->rank, describe(d).c_str(), c->rank == 0 ? bad : 0, describe(other).c_str());
  } else if (bad >= 0) {
    report(c, "rank %d: collectives differ between ranks (ranks %d and 0 called different collectives)", c->rank,
           bad);
  }
  // Nobody posts the next descriptor before everyone has compared this one.
  if (ncclResult_t r = barrier(c, kind_name_impl(d.kind))) return r;
  return bad >= 0 ? ncclInvalidUsage : ncclSuccess;
}

}  // namespace

const char* kind_name(int32_t k) { return kind_name_impl(k); }
size_t type_size(int32_t t) { return type_size_impl(t); }

ncclResult_t check_args(ncclComm* c, const CallDesc& d, const void* send, const void* recv) {
  if (!c || !c->sh) {
    report(nullptr, "%s: the communicator is null or was destroyed", kind_name_impl(d.kind));
    return ncclInvalidArgument;
  }
  if (type_size_impl(d.datatype) == 0) {
    report(c, "rank %d: %s: datatype %d is not supported here", c->rank, kind_name_impl(d.kind), d.datatype);
    return ncclInvalidArgument;
  }
  if ((d.kind == kAllReduce || d.kind == kReduceScatter) && (d.op < ncclSum || d.op > ncclAvg)) {
    report(c, "rank %d: %s: reduction op %d is not a built-in op", c->rank, kind_name_impl(d.kind), d.op);
    return ncclInvalidArgument;
  }
  if (d.kind == kBroadcast && (d.root < 0 || d.root >= c->nranks)) {
    report(c, "rank %d: ncclBroadcast: root %d is out of range for %d ranks", c->rank, d.root, c->nranks);
    return ncclInvalidArgument;
  }
  const bool needs_send = d.kind != kBroadcast || d.root == c->rank;
  if (d.count > 0 && (!recv || (needs_send && !send))) {
    report(c, "rank %d: %s: null buffer", c->rank, kind_name_impl(d.kind));
    return ncclInvalidArgument;
  }
  return ncclSuccess;
}

// The transfers. Every rank's worker runs the same steps, separated by barriers; the data
// passes through the staging area in chunks of a slot per rank.
ncclResult_t run_collective(ncclComm* c, const Op& op) {
  const CallDesc& d = op.d;
  if (ncclResult_t r = begin(c, d)) return r;
  const char* name = kind_name(d.kind);
  const size_t es = type_size(d.datatype), nr = static_cast<size_t>(c->nranks);
  const auto* send = static_cast<const unsigned char*>(op.send);
  auto* recv = static_cast<unsigned char*>(op.recv);
  const int me = c->rank;
  if (d.kind == kAllReduce || d.kind == kBroadcast || d.kind == kAllGather) {
    const size_t per = slot_bytes(c) / es;
    for (size_t off = 0; off < d.count; off += per) {
      const size_t n = std::min(per, d.count - off);
      if (d.kind != kBroadcast) std::memcpy(slot(c, me), send + off * es, n * es);
      else if (me == d.root) std::memcpy(slot(c, d.root), send + off * es, n * es);  // sendbuff: root only
      if (ncclResult_t r = barrier(c, name)) return r;
      if (d.kind == kAllReduce) {
        reduce_slots(recv + off * es, c, d.datatype, 0, n, d.op);
      } else if (d.kind == kBroadcast) {
        std::memcpy(recv + off * es, slot(c, d.root), n * es);
      } else {
        for (int q = 0; q < c->nranks; ++q) std::memcpy(recv + (q * d.count + off) * es, slot(c, q), n * es);
      }
      if (ncclResult_t r = barrier(c, name)) return r;
    }
    return ncclSuccess;
  }
  // ReduceScatter: each slot holds one piece of every rank's block.
  const size_t per = slot_bytes(c) / es / nr;
  for (size_t off = 0; off < d.count; off += per) {
    const size_t n = std::min(per, d.count - off);
    for (size_t p = 0; p < nr; ++p) std::memcpy(slot(c, me) + p * n * es, send + (p * d.count + off) * es, n * es);
    if (ncclResult_t r = barrier(c, name)) return r;
    reduce_slots(recv + off * es, c, d.datatype, me * n, n, d.op);
    if (ncclResult_t r = barrier(c, name)) return r;
  }
  return ncclSuccess;
}

}  // namespace bm_emu_nccl

#endif  // BIGMODEL_WITH_NCCL
