// CUDA-on-CPU emulation, host side (-DBIGMODEL_CUDA=EMULATE only): the block scheduler that
// runs a kernel's threads as fibers, the warp-collective and tensor-core emulation used by
// cuda_emu.h, and the subset of the CUDA runtime API that bigmodel calls, over host memory.
// Blocks run one after another, in the thread order's sense (forward, reverse, shuffled).
// One emulated device ("bigmodel CUDA emulator", compute capability 9.0 by default, 8.0 with
// BIGMODEL_EMU_CC=80; emu_cudart.cpp). By default work is synchronous: a launch or copy is done
// when the call returns. With BIGMODEL_EMU_ASYNC=1 a launch is queued on its stream
// (emu_streams.cpp) with a copy of its arguments and runs when the stream is forced. Threads that poll (mbarrier
// and wgmma waits, emu_hopper.cpp) stay runnable; when a phase completes its pollers run next,
// and a pass in which every live thread only polled is reported as a deadlock.
// Memcheck (built with -DBIGMODEL_SANITIZE=ON, scripts/cuda_emu_test.sh --memcheck): under
// AddressSanitizer the fiber switches are announced to ASan, and dynamic shared memory past
// the launch's request is poisoned while a block runs, so reading or writing past it faults
// like compute-sanitizer's memcheck would report (emu_cudart.cpp does the same for the tail
// of each device allocation).
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "tests/cuda_emu/cuda_emu.h"
#include "tests/cuda_emu/emu_streams.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define BM_EMU_ASAN 1
#else
#define BM_EMU_ASAN 0
#define ASAN_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

#if !defined(__x86_64__)
#error "the CUDA emulator's fiber switch is written for x86-64"
#endif

// Saves the callee-saved registers and the stack pointer of the running context in *save_sp
// and resumes the one whose stack pointer is new_sp (a fresh fiber "returns" into its entry).
extern "C" void bm_emu_switch(void** save_sp, void* new_sp);
asm(R"(
  .text
  .globl bm_emu_switch
  .hidden bm_emu_switch
  .type bm_emu_switch,@function
bm_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size bm_emu_switch, .-bm_emu_switch
)");

namespace bm_emu {
namespace {

constexpr size_t kStackBytes = 128 * 1024;  // per CUDA thread; a guard page below each
constexpr size_t kPage = 4096;
constexpr int kMaxThreads = 1024;
constexpr size_t kSmemBytes = 228 * 1024;

enum class St : uint8_t { run, wait_block, wait_warp, wait_named, done };
constexpr int kNamedBarriers = 16;

struct Fiber {
  void* sp = nullptr;
  void* fake_stack = nullptr;  // ASan's bookkeeping while the fiber is switched out
  St st = St::run;
  bool spinning = false;  // yielded from a polling loop (mbarrier or wgmma wait): still runnable
  unsigned mask = 0;
  int bar_id = 0, bar_count = 0;  // bar.sync id, count
  uint3 tid{};
};

struct Scheduler {
  void* sched_sp = nullptr;
  std::vector<Fiber> fibers;
  std::vector<int> order;
  std::vector<unsigned char> slots;  // per warp: 32 lanes x kSlotBytes
  int cur = 0;
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
  bool abort = false;
  std::string error;
  unsigned char* stacks = nullptr;
  void* sched_fake_stack = nullptr;  // ASan: the scheduler's side of each switch
  const void* sched_stack_bottom = nullptr;
  size_t sched_stack_size = 0;
  bool stale_stacks = false;  // a block was abandoned mid-run: its stack frames stay poisoned
  uint64_t progress = 0;      // bumped by every state change a polling thread could be waiting for
  uint64_t serial = 0;        // counts blocks run, so per-block state elsewhere knows when to reset
  bool wake = false;          // an mbarrier phase completed: its pollers run before anyone else
};

Scheduler S;
std::recursive_mutex g_launch_mutex;  // one kernel at a time: __shared__ storage is static
alignas(128) unsigned char g_smem[kSmemBytes];

std::string& last_message() {
  static thread_local std::string m;
  return m;
}
thread_local cudaError_t t_last_error = cudaSuccess;

void set_error(cudaError_t e, std::string msg) {
  t_last_error = e;
  last_message() = std::move(msg);
}

unsigned char* fiber_stack(int i) {
  if (!S.stacks) {
    void* p = mmap(nullptr, kStackBytes * kMaxThreads, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "[cuda-emu] cannot map fiber stacks\n");
      std::abort();
    }
    S.stacks = static_cast<unsigned char*>(p);
    for (int t = 0; t < kMaxThreads; ++t) mprotect(S.stacks + t * kStackBytes, kPage, PROT_NONE);
  }
  return S.stacks + static_cast<size_t>(i) * kStackBytes;
}

// ASan keeps one stack's bounds at a time: every switch is announced (start) and confirmed
// on the other side (finish), or ASan takes the fiber stacks for a stack overflow.
// fake_save == nullptr announces that the leaving fiber is finished.
inline void asan_leave_fiber(void** fake_save) {
#if BM_EMU_ASAN
  __sanitizer_start_switch_fiber(fake_save, S.sched_stack_bottom, S.sched_stack_size);
#else
  (void)fake_save;
#endif
}
inline void asan_enter_fiber(void* fake) {
#if BM_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, &S.sched_stack_bottom, &S.sched_stack_size);
#else
  (void)fake;
#endif
}

[[noreturn]] void fiber_main() {
  asan_enter_fiber(nullptr);
  S.body(S.ctx);
  S.fibers[S.cur].st = St::done;
  asan_leave_fiber(nullptr);
  bm_emu_switch(&S.fibers[S.cur].sp, S.sched_sp);
  __builtin_unreachable();
}

void yield() {
  Fiber& f = S.fibers[S.cur];
  asan_leave_fiber(&f.fake_stack);
  bm_emu_switch(&f.sp, S.sched_sp);
  asan_enter_fiber(f.fake_stack);
}

// Scheduler side: runs fiber t until it yields, finishes or faults.
void resume_fiber(int t) {
#if BM_EMU_ASAN
  __sanitizer_start_switch_fiber(&S.sched_fake_stack, fiber_stack(t) + kPage, kStackBytes - kPage);
#endif
  bm_emu_switch(&S.sched_sp, S.fibers[t].sp);
#if BM_EMU_ASAN
  __sanitizer_finish_switch_fiber(S.sched_fake_stack, nullptr, nullptr);
#endif
}

void start_fiber(int i) {
  unsigned char* top = fiber_stack(i) + kStackBytes;
  auto* slot = reinterpret_cast<void**>(top - 16);  // fiber_main's "return address"
  slot[0] = reinterpret_cast<void*>(&fiber_main);
  slot[1] = nullptr;
  void** regs = reinterpret_cast<void**>(slot) - 6;
  for (int r = 0; r < 6; ++r) regs[r] = nullptr;
  S.fibers[i].sp = regs;
  S.fibers[i].st = St::run;
}

// After an abandoned block the fiber stacks keep the redzones of frames that never returned.
void clear_stale_stacks() {
#if BM_EMU_ASAN
  if (S.stale_stacks && S.stacks)
    for (int t = 0; t < kMaxThreads; ++t) ASAN_UNPOISON_MEMORY_REGION(fiber_stack(t) + kPage, kStackBytes - kPage);
#endif
  S.stale_stacks = false;
}

enum class Order { forward, reverse, shuffled };
Order order_from_env() {
  const char* e = std::getenv("BIGMODEL_EMU_ORDER");
  if (!e || !*e || std::strcmp(e, "forward") == 0) return Order::forward;
  if (std::strcmp(e, "reverse") == 0) return Order::reverse;
  return Order::shuffled;
}

std::string where(const char* name, const uint3& b, int t) {
  const Fiber& f = S.fibers[t];
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s, block (%u,%u,%u), thread (%u,%u,%u)", name, b.x, b.y, b.z, f.tid.x, f.tid.y,
                f.tid.z);
  return buf;
}

// Releases the named barriers (bar.sync id, count) that `count` threads have reached; false
// (with S.error set) when more threads wait at one than it counts or they disagree on the count.
bool release_named_barriers(const char* name, const uint3& b, bool& moved) {
  int waiting[kNamedBarriers] = {}, count[kNamedBarriers] = {}, first[kNamedBarriers];
  for (int t = 0; t < static_cast<int>(S.fibers.size()); ++t) {
    const Fiber& f = S.fibers[t];
    if (f.st != St::wait_named) continue;
    if (waiting[f.bar_id]++ == 0) {
      count[f.bar_id] = f.bar_count;
      first[f.bar_id] = t;
    } else if (count[f.bar_id] != f.bar_count) {
      S.error = "[cuda-emu] threads disagree on the thread count of named barrier " + std::to_string(f.bar_id) +
                " (" + std::to_string(count[f.bar_id]) + " and " + std::to_string(f.bar_count) + ") in " +
                where(name, b, t);
      return false;
    }
  }
  for (int id = 0; id < kNamedBarriers; ++id) {
    if (waiting[id] > count[id]) {
      S.error = "[cuda-emu] " + std::to_string(waiting[id]) + " threads wait at named barrier " + std::to_string(id) +
                " of " + std::to_string(count[id]) + " in " + where(name, b, first[id]);
      return false;
    }
    if (waiting[id] == 0 || waiting[id] < count[id]) continue;
    for (Fiber& f : S.fibers)
      if (f.st == St::wait_named && f.bar_id == id) f.st = St::run;
    moved = true;
  }
  return true;
}

// Runs one block to completion; false (with S.error set) on a fault.
bool run_block(const char* name, const uint3& b, int n, std::mt19937& rng, Order ord) {
  S.fibers.assign(n, Fiber{});
  ++S.serial;
  const int bx = static_cast<int>(blockDim.x), by = static_cast<int>(blockDim.y);
  for (int t = 0; t < n; ++t) {
    S.fibers[t].tid = make_uint3(static_cast<unsigned>(t % bx), static_cast<unsigned>((t / bx) % by),
                                 static_cast<unsigned>(t / (bx * by)));
    start_fiber(t);
  }
  S.order.resize(n);
  for (int t = 0; t < n; ++t) S.order[t] = ord == Order::reverse ? n - 1 - t : t;
  const int warps = (n + 31) / 32;
  S.slots.assign(static_cast<size_t>(warps) * 32 * kSlotBytes, 0);
  blockIdx = b;
  int live = n;
  while (live > 0) {
    if (ord == Order::shuffled) std::shuffle(S.order.begin(), S.order.end(), rng);
    // A pass moved when some thread got past a point it waits at, or changed state another
    // thread polls for; a pass in which every thread only polled again changes nothing.
    bool moved = false;
    const uint64_t progress0 = S.progress;
    auto run = [&](int t) {
      Fiber& f = S.fibers[t];
      threadIdx = f.tid;
      S.cur = t;
      resume_fiber(t);
      if (S.abort) {
        S.error = "[cuda-emu] " + S.error + " in " + where(name, b, t);
        return false;
      }
      if (f.st == St::done) --live;
      if (!f.spinning) moved = true;
      return true;
    };
    for (int t : S.order) {
      if (S.fibers[t].st != St::run) continue;
      if (!run(t)) return false;
      // When a phase completes, the threads polling for it move before the rest of the pass
      // (a producer refills a released stage at once), so a stage released before the
      // wgmma groups reading it have run gets overwritten and shows as a wrong result.
      while (S.wake) {
        S.wake = false;
        for (int u : S.order)
          if (S.fibers[u].st == St::run && S.fibers[u].spinning && !run(u)) return false;
      }
    }
    if (S.progress != progress0) moved = true;
    // Warp barriers: released once every live lane named by the waiters' mask has arrived.
    for (int w = 0; w < warps; ++w) {
      unsigned waiting = 0, mask = 0, done = 0, present = 0;
      for (int l = 0; l < 32 && w * 32 + l < n; ++l) {
        const Fiber& f = S.fibers[w * 32 + l];
        present |= 1u << l;
        if (f.st == St::done) done |= 1u << l;
        if (f.st == St::wait_warp) {
          waiting |= 1u << l;
          mask |= f.mask;
        }
      }
      if (!waiting) continue;
      mask &= present;
      if (mask & done) {
        const int t = w * 32 + __builtin_ctz(waiting);
        S.error = "[cuda-emu] a warp collective's mask names lanes that have exited (mask " + std::to_string(mask) +
                  ", exited " + std::to_string(done) + ") in " + where(name, b, t);
        return false;
      }
      if ((waiting & mask) == mask) {
        for (int l = 0; l < 32; ++l)
          if ((waiting >> l) & 1u) S.fibers[w * 32 + l].st = St::run;
        moved = true;
      }
    }
    if (!release_named_barriers(name, b, moved)) return false;
    if (moved) continue;
    // Nobody can move: a block barrier that every live thread has reached, or a deadlock
    // (on a GPU: a hang, or the trap of a bounded mbarrier wait).
    int at_block = 0, at_warp = 0, at_named = 0, polling = 0, first = -1;
    for (int t = 0; t < n; ++t) {
      const Fiber& f = S.fibers[t];
      at_block += f.st == St::wait_block;
      at_warp += f.st == St::wait_warp;
      at_named += f.st == St::wait_named;
      polling += f.st == St::run;
      if (first < 0 && f.st != St::done && f.st != St::wait_block) first = t;
    }
    if (at_block == live) {
      for (Fiber& f : S.fibers)
        if (f.st == St::wait_block) f.st = St::run;
      continue;
    }
    S.error = "[cuda-emu] deadlock: of " + std::to_string(live) + " live threads, " + std::to_string(at_block) +
              " wait at __syncthreads, " + std::to_string(at_warp) + " at a warp collective, " +
              std::to_string(at_named) + " at a named barrier and " + std::to_string(polling) +
              " poll an mbarrier or wgmma wait that never completes; first " + where(name, b, first);
    return false;
  }
  return true;
}

int g_max_opt_in = 0;
size_t g_dynamic_smem = 0;

}  // namespace

// ---- fiber-side calls ---------------------------------------------------------------------------
void sync_block() {
  S.fibers[S.cur].st = St::wait_block;
  yield();
}
void sync_warp(unsigned mask) {
  Fiber& f = S.fibers[S.cur];
  f.st = St::wait_warp;
  f.mask = mask;
  yield();
}
void spin_wait() {
  Fiber& f = S.fibers[S.cur];
  f.spinning = true;
  yield();
  f.spinning = false;
}
void note_progress() { ++S.progress; }
void wake_pollers() { S.wake = true; }
void named_barrier(int id, int count) {
  if (id < 0 || id >= kNamedBarriers || count <= 0 || count % 32 != 0 ||
      count > static_cast<int>(S.fibers.size()))
    trap("bar.sync with an invalid barrier id or thread count");
  Fiber& f = S.fibers[S.cur];
  f.st = St::wait_named;
  f.bar_id = id;
  f.bar_count = count;
  yield();
}
int thread_in_block() { return S.cur; }
int threads_in_block() { return static_cast<int>(S.fibers.size()); }
bool thread_done(int t) { return S.fibers[t].st == St::done; }
uint64_t block_serial() { return S.serial; }
size_t dynamic_smem_bytes() { return g_dynamic_smem; }
int lane_id() { return S.cur & 31; }
int warp_in_block() { return S.cur >> 5; }
void* warp_slots() { return S.slots.data() + static_cast<size_t>(S.cur >> 5) * 32 * kSlotBytes; }
void trap(const char* why) {
  S.abort = true;
  S.error = why;
  S.stale_stacks = true;
  yield();
  std::abort();  // never resumed
}
void* dynamic_smem() { return g_smem; }
void fresh_shared(void* p, size_t bytes) {
  static std::unordered_map<void*, uint64_t> filled_in_block;
  uint64_t& serial = filled_in_block[p];
  if (serial == S.serial) return;
  serial = S.serial;
  std::memset(p, 0xA5, bytes);
}
uintptr_t smem_base() { return reinterpret_cast<uintptr_t>(g_smem); }

// ---- grid ----------------------------------------------------------------------------------------
namespace {
// The launch-configuration checks, made when the launch is issued (in async mode too, as the
// real runtime reports them at the launch); false with the error set.
bool launch_config_ok(const LaunchCfg& c, const char* name) {
  std::lock_guard<std::recursive_mutex> lock(g_launch_mutex);
  const unsigned long long threads = 1ull * c.block.x * c.block.y * c.block.z;
  const unsigned long long blocks = 1ull * c.grid.x * c.grid.y * c.grid.z;
  // The launch does not know which function it runs (the rewriter passes a lambda), so past
  // the default 48 KB the check is that some kernel opted in to at least this much.
  const int limit = std::max(48 * 1024, g_max_opt_in);
  char buf[512];
  if (threads == 0 || blocks == 0 || threads > kMaxThreads || c.block.z > 64 || c.grid.y > 65535 ||
      c.grid.z > 65535) {
    std::snprintf(buf, sizeof buf, "[cuda-emu] invalid launch of %s: grid (%u,%u,%u), block (%u,%u,%u)", name,
                  c.grid.x, c.grid.y, c.grid.z, c.block.x, c.block.y, c.block.z);
    set_error(cudaErrorInvalidConfiguration, buf);
    return false;
  }
  if (c.smem > static_cast<size_t>(limit)) {
    std::snprintf(buf, sizeof buf, "[cuda-emu] launch of %s asks %zu bytes of dynamic shared memory, limit %d", name,
                  c.smem, limit);
    set_error(cudaErrorInvalidValue, buf);
    return false;
  }
  return true;
}
}  // namespace

bool async_launches() { return async_mode(); }

// Async mode: the launch's copy of its arguments (`ctx`, released by `destroy`) is queued on
// the launch's stream; a fault while it runs becomes the stream's sticky error.
void enqueue_grid(const LaunchCfg& c, const char* name, void (*body)(void*), void* ctx, void (*destroy)(void*)) {
  std::shared_ptr<void> hold(ctx, destroy);
  if (!launch_config_ok(c, name)) return;
  const LaunchCfg cc = c;
  enqueue(c.stream, std::string("kernel ") + name, [cc, name, body, hold] { run_grid(cc, name, body, hold.get()); });
}

void run_grid(const LaunchCfg& c, const char* name, void (*body)(void*), void* ctx) {
  // Default mode: a launch runs after the collectives its stream waits for (emu_streams.h).
  if (!in_stream_job()) wait_external(c.stream);
  std::lock_guard<std::recursive_mutex> lock(g_launch_mutex);
  const unsigned long long threads = 1ull * c.block.x * c.block.y * c.block.z;
  const unsigned long long blocks = 1ull * c.grid.x * c.grid.y * c.grid.z;
  if (!launch_config_ok(c, name)) return;
  const Order ord = order_from_env();
  std::mt19937 rng(12345);
  gridDim = c.grid;
  blockDim = c.block;
  g_dynamic_smem = c.smem;
  S.body = body;
  S.ctx = ctx;
  S.abort = false;
  S.error.clear();
  clear_stale_stacks();
  const size_t smem_used = std::min(kSmemBytes, c.smem);
  // Blocks run one at a time, in the order the thread order names too (forward, reverse or
  // shuffled), so a kernel whose result depends on which block runs first shows.
  std::vector<unsigned long long> perm;
  if (ord == Order::shuffled && blocks <= (1ull << 20)) {
    perm.resize(blocks);
    for (unsigned long long i = 0; i < blocks; ++i) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
  }
  for (unsigned long long i = 0; i < blocks; ++i) {
    const unsigned long long lin = !perm.empty() ? perm[i] : (ord == Order::forward ? i : blocks - 1 - i);
    const unsigned x = static_cast<unsigned>(lin % c.grid.x), y = static_cast<unsigned>(lin / c.grid.x % c.grid.y),
                   z = static_cast<unsigned>(lin / (1ull * c.grid.x * c.grid.y));
    // Fresh garbage in dynamic shared memory, so reading it before writing shows; under
    // ASan the arena past the launch's request is off limits while the block runs.
    std::memset(g_smem, 0xA5, smem_used);
    ASAN_POISON_MEMORY_REGION(g_smem + smem_used, kSmemBytes - smem_used);
    const bool ok = run_block(name, make_uint3(x, y, z), static_cast<int>(threads), rng, ord);
    ASAN_UNPOISON_MEMORY_REGION(g_smem + smem_used, kSmemBytes - smem_used);
    if (!ok) {
      S.stale_stacks = true;
      std::fprintf(stderr, "%s\n", S.error.c_str());
      set_error(cudaErrorLaunchFailure, S.error);
      return;
    }
  }
}

// ---- tensor-core fragments (PTX ISA, mma.m16n8k16 / m16n8k32 and ldmatrix) -----------------------
void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr, bool trans) {
  const int lane = lane_id();
  uint32_t out[4];
  warp_exchange(0xffffffffu, &addr, sizeof addr, [&](const unsigned char* s) {
    for (int m = 0; m < 4; ++m) {
      uint16_t e[2];
      for (int h = 0; h < 2; ++h) {
        // Matrix m's rows come from lanes 8m..8m+7; lane l holds (row l/4, cols 2(l%4)+h),
        // or with .trans the element (row 2(l%4)+h, col l/4).
        const int row = trans ? 2 * (lane % 4) + h : lane / 4;
        const int col = trans ? lane / 4 : 2 * (lane % 4) + h;
        uint32_t row_addr;
        std::memcpy(&row_addr, s + (8 * m + row) * kSlotBytes, 4);
        std::memcpy(&e[h], smem_ptr(row_addr) + 2 * col, 2);
      }
      out[m] = static_cast<uint32_t>(e[0]) | (static_cast<uint32_t>(e[1]) << 16);
    }
  });
  for (int m = 0; m < 4; ++m) r[m] = out[m];
}

float half_bits_to_float(uint16_t v, bool bf16) {
  if (bf16) {
    const uint32_t x = static_cast<uint32_t>(v) << 16;
    float f;
    std::memcpy(&f, &x, 4);
    return f;
  }
  __half h;
  std::memcpy(static_cast<void*>(&h), &v, 2);
  return __half2float(h);
}

namespace {
struct Frag {
  uint32_t a[4];
  uint32_t b[2];
};

// m16n8k16 with 16-bit inputs: A[r][k] sits in lane (r%8)*4 + (k%8)/2, register
// (r>=8) + 2*(k>=8), half k%2; B[k][c] in lane c*4 + (k%8)/2, register k>=8, half k%2;
// D[r][c] in lane (r%8)*4 + c/2, element 2*(r>=8) + c%2.
void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, bool bf16) {
  const int lane = lane_id();
  Frag mine{{a[0], a[1], a[2], a[3]}, {b0, b1}};
  float acc[4] = {d[0], d[1], d[2], d[3]};
  warp_exchange(0xffffffffu, &mine, sizeof mine, [&](const unsigned char* s) {
    auto frag = [&](int l) {
      Frag f;
      std::memcpy(&f, s + l * kSlotBytes, sizeof f);
      return f;
    };
    auto A = [&](int r, int k) {
      const uint32_t reg = frag((r % 8) * 4 + (k % 8) / 2).a[(r >= 8) + 2 * (k >= 8)];
      return half_bits_to_float(static_cast<uint16_t>(reg >> (16 * (k % 2))), bf16);
    };
    auto B = [&](int k, int c) {
      const uint32_t reg = frag(c * 4 + (k % 8) / 2).b[k >= 8];
      return half_bits_to_float(static_cast<uint16_t>(reg >> (16 * (k % 2))), bf16);
    };
    for (int e = 0; e < 4; ++e) {
      const int r = lane / 4 + 8 * (e / 2), c = 2 * (lane % 4) + e % 2;
      float sum = 0.0f;
      for (int k = 0; k < 16; ++k) sum += A(r, k) * B(k, c);
      acc[e] += sum;
    }
  });
  for (int e = 0; e < 4; ++e) d[e] = acc[e];
}
}  // namespace

void mma_16816_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) { mma_16816(d, a, b0, b1, true); }
void mma_16816_f16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) { mma_16816(d, a, b0, b1, false); }

// m16n8k32 int8: A[r][k] in lane (r%8)*4 + (k%16)/4, register (r>=8) + 2*(k>=16), byte k%4;
// B[k][c] in lane c*4 + (k%16)/4, register k>=16, byte k%4; D as in m16n8k16.
void mma_16832_s8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const int lane = lane_id();
  Frag mine{{a[0], a[1], a[2], a[3]}, {b0, b1}};
  int acc[4] = {d[0], d[1], d[2], d[3]};
  warp_exchange(0xffffffffu, &mine, sizeof mine, [&](const unsigned char* s) {
    auto frag = [&](int l) {
      Frag f;
      std::memcpy(&f, s + l * kSlotBytes, sizeof f);
      return f;
    };
    auto byte = [](uint32_t reg, int i) { return static_cast<int>(static_cast<int8_t>(reg >> (8 * i))); };
    for (int e = 0; e < 4; ++e) {
      const int r = lane / 4 + 8 * (e / 2), c = 2 * (lane % 4) + e % 2;
      int sum = 0;
      for (int k = 0; k < 32; ++k)
        sum += byte(frag((r % 8) * 4 + (k % 16) / 4).a[(r >= 8) + 2 * (k >= 16)], k % 4) *
               byte(frag(c * 4 + (k % 16) / 4).b[k >= 16], k % 4);
      acc[e] += sum;
    }
  });
  for (int e = 0; e < 4; ++e) d[e] = acc[e];
}

void set_func_max_dynamic_smem(const void*, int bytes) {
  std::lock_guard<std::recursive_mutex> lock(g_launch_mutex);
  g_max_opt_in = std::max(g_max_opt_in, bytes);
}
cudaError_t take_last_error() {
  const cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}
cudaError_t peek_last_error() { return t_last_error; }
void set_last_error(cudaError_t e, const std::string& msg) { set_error(e, msg); }
const char* last_error_message() { return last_message().c_str(); }

}  // namespace bm_emu
