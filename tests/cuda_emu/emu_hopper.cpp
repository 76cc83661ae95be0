// CUDA-on-CPU emulation of the sm_90 (Hopper) features the wgmma GEMM (kernels/cuda/
// gemm_wgmma.cu) uses, after the PTX ISA: mbarriers (arrival counts, transaction bytes,
// phases), TMA tile loads (cp.async.bulk.tensor from a tensor map, zero fill outside the
// tensor, the 128-byte swizzle), wgmma.mma_async from shared-memory descriptors, and the
// driver's cuTensorMapEncodeTiled (with its argument rules). Misuse the GPU would punish
// with a hang, a trap or garbage fails the launch with a message instead: an mbarrier used
// before init, more arrivals or bytes than a phase expects, a copy or operand outside the
// launch's dynamic shared memory, a descriptor mode the kernel does not set up.
// The kernel is emulated at the instruction level, so its index math, barrier phases and
// pipeline order are what is tested; the layout rules themselves are this file's reading of
// the PTX ISA and cannot be checked without a GPU.
#include <cuda.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <vector>

#include "tests/cuda_emu/cuda_emu.h"

namespace bm_emu {
namespace {

struct MBar {
  uint32_t expected = 0;  // arrivals per phase
  uint32_t pending = 0;   // arrivals still missing in the current phase
  int64_t tx = 0;         // transaction bytes still missing (expect_tx adds, copies subtract)
  uint32_t phase = 0;     // phases completed
};

struct WgOp {
  float* acc;
  int n;
  uint64_t desc_a, desc_b;
  int scale_d, tnsp_a, tnsp_b;
  bool bf16;
};
struct ThreadWg {
  std::vector<WgOp> open;                  // issued since the last commit
  std::deque<std::vector<WgOp>> groups;    // committed, not yet run
  uint64_t committed = 0;
};

// State of the block being run (reset when block_serial() changes).
struct HopperBlock {
  uint64_t serial = ~uint64_t{0};
  std::unordered_map<uint32_t, MBar> bars;
  std::vector<ThreadWg> threads;
  std::vector<uint64_t> executed;  // groups run, per warpgroup
};
HopperBlock H;

HopperBlock& block() {
  if (H.serial != block_serial()) {
    H.serial = block_serial();
    H.bars.clear();
    H.threads.assign(threads_in_block(), ThreadWg{});
    H.executed.assign((threads_in_block() + 127) / 128, 0);
  }
  return H;
}

MBar& bar_at(uint32_t addr) {
  if (addr % 8 != 0) trap("mbarrier at an address that is not 8-byte aligned");
  auto it = block().bars.find(addr);
  if (it == block().bars.end()) trap("mbarrier used before mbarrier.init");
  return it->second;
}

void complete_if_done(MBar& b) {
  if (b.pending == 0 && b.tx == 0) {
    ++b.phase;
    b.pending = b.expected;
    wake_pollers();
  }
}

// The emulated tensor map, stored in the 128 opaque bytes of a CUtensorMap.
struct EmuTensorMap {
  uint32_t magic;
  uint32_t rank;
  uint32_t elem_bytes;
  uint32_t swizzle_bytes;  // 0 or 128
  const unsigned char* base;
  uint64_t dims[3];
  uint64_t strides[2];  // bytes between consecutive indices of dims 1 and 2
  uint32_t box[3];
};
static_assert(sizeof(EmuTensorMap) <= sizeof(CUtensorMap), "emulated tensor map too large");
constexpr uint32_t kMapMagic = 0x4d54424du;  // "MBTM"

// Offsets inside 1024-byte blocks: the 16-byte chunk index (address bits 4-6) is XORed with
// the row index (bits 7-9), for TMA's writes and wgmma's reads alike.
uint32_t swizzle128(uint32_t addr) { return addr ^ (((addr >> 7) & 7u) << 4); }

void check_smem_range(uint32_t addr, size_t bytes, const char* what) {
  if (static_cast<uint64_t>(addr) + bytes > dynamic_smem_bytes()) {
    static char buf[160];
    std::snprintf(buf, sizeof buf, "%s at shared offset %u (+%zu bytes) outside the launch's %zu bytes of dynamic shared memory",
                  what, addr, bytes, dynamic_smem_bytes());
    trap(buf);
  }
}

// Element (mn, k) of a wgmma operand (rows of A, or columns of B) through its descriptor, for
// the canonical layouts with the 128-byte swizzle: K-major, 8-row groups SBO apart and rows
// 128 bytes apart; MN-major, 64-element column blocks LBO apart, 8-k groups SBO apart and k
// rows 128 bytes apart.
float operand(uint64_t desc, int mn, int k, bool mn_major, bool bf16) {
  const uint32_t start = static_cast<uint32_t>(desc & 0x3FFF) << 4;
  const uint32_t lbo = static_cast<uint32_t>((desc >> 16) & 0x3FFF) << 4;
  const uint32_t sbo = static_cast<uint32_t>((desc >> 32) & 0x3FFF) << 4;
  if ((desc >> 62) != 1 || ((desc >> 49) & 7) != 0)
    trap("wgmma descriptor other than the 128-byte swizzle with base offset 0 (not emulated)");
  const uint32_t addr = mn_major ? start + (mn / 64) * lbo + (k / 8) * sbo + (k % 8) * 128 + (mn % 64) * 2
                                 : start + (mn / 8) * sbo + (mn % 8) * 128 + k * 2;
  const uint32_t a = swizzle128(addr);
  check_smem_range(a, 2, "wgmma operand");
  uint16_t v;
  std::memcpy(&v, smem_ptr(a), 2);
  return half_bits_to_float(v, bf16);
}

// One thread's share of a wgmma: warp w of the warpgroup, lane 4g + q holds rows 16w + g + 8h
// and columns 8j + 2q + e in acc[4j + 2h + e].
void run_op(const WgOp& op, int thread_in_wg) {
  const int w = thread_in_wg / 32, lane = thread_in_wg % 32, g = lane / 4, q = lane % 4;
  float a[2][16];
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 16; ++k) a[h][k] = operand(op.desc_a, 16 * w + g + 8 * h, k, op.tnsp_a != 0, op.bf16);
  for (int j = 0; j < op.n / 8; ++j)
    for (int e = 0; e < 2; ++e) {
      float b[16];
      for (int k = 0; k < 16; ++k) b[k] = operand(op.desc_b, 8 * j + 2 * q + e, k, op.tnsp_b != 0, op.bf16);
      for (int h = 0; h < 2; ++h) {
        float sum = 0.0f;
        for (int k = 0; k < 16; ++k) sum += a[h][k] * b[k];
        float& d = op.acc[4 * j + 2 * h + e];
        d = (op.scale_d ? d : 0.0f) + sum;
      }
    }
}

}  // namespace

void mbar_init(uint32_t addr, uint32_t count) {
  if (addr % 8 != 0) trap("mbarrier.init at an address that is not 8-byte aligned");
  if (count == 0 || count > (1u << 20) - 1) trap("mbarrier.init with an arrival count outside 1 .. 2^20 - 1");
  MBar& b = block().bars[addr];
  b = MBar{};
  b.expected = b.pending = count;
  note_progress();
}

void mbar_arrive(uint32_t addr, uint32_t expect_tx_bytes) {
  MBar& b = bar_at(addr);
  if (b.pending == 0) trap("mbarrier arrival beyond the phase's expected count");
  b.tx += expect_tx_bytes;
  --b.pending;
  complete_if_done(b);
  note_progress();
}

bool mbar_try_wait_parity(uint32_t addr, uint32_t parity) {
  // The phase of parity `parity` has completed when the current phase's parity differs.
  const bool done = (bar_at(addr).phase & 1u) != (parity & 1u);
  if (done) note_progress();
  return done;
}

void tma_load(uint32_t dst, const void* map_ptr, const int* coords, int rank, uint32_t bar) {
  EmuTensorMap m;
  std::memcpy(&m, map_ptr, sizeof m);
  if (m.magic != kMapMagic) trap("cp.async.bulk.tensor with a tensor map not made by cuTensorMapEncodeTiled");
  if (static_cast<uint32_t>(rank) != m.rank) trap("cp.async.bulk.tensor of a rank other than the tensor map's");
  if (dst % 128 != 0) trap("cp.async.bulk.tensor into shared memory that is not 128-byte aligned");
  const uint32_t row_bytes = m.box[0] * m.elem_bytes;
  uint32_t box1 = 1, box2 = 1;
  if (m.rank > 1) box1 = m.box[1];
  if (m.rank > 2) box2 = m.box[2];
  const size_t bytes = static_cast<size_t>(row_bytes) * box1 * box2;
  check_smem_range(dst, bytes, "cp.async.bulk.tensor destination");
  for (uint32_t i2 = 0; i2 < box2; ++i2)
    for (uint32_t i1 = 0; i1 < box1; ++i1)
      for (uint32_t i0 = 0; i0 < m.box[0]; ++i0) {
        const int64_t c[3] = {int64_t{coords[0]} + i0, m.rank > 1 ? int64_t{coords[1]} + i1 : 0,
                              m.rank > 2 ? int64_t{coords[2]} + i2 : 0};
        bool inside = true;
        for (uint32_t d = 0; d < m.rank; ++d) inside = inside && c[d] >= 0 && static_cast<uint64_t>(c[d]) < m.dims[d];
        const uint32_t off = dst + ((i2 * box1 + i1) * m.box[0] + i0) * m.elem_bytes;
        unsigned char* out = smem_ptr(m.swizzle_bytes ? swizzle128(off) : off);
        if (inside) {
          const unsigned char* src = m.base + c[0] * m.elem_bytes + (m.rank > 1 ? c[1] * m.strides[0] : 0) +
                                     (m.rank > 2 ? c[2] * m.strides[1] : 0);
          std::memcpy(out, src, m.elem_bytes);
        } else {
          std::memset(out, 0, m.elem_bytes);
        }
      }
  // The whole box counts, inside the tensor or not.
  MBar& b = bar_at(bar);
  b.tx -= static_cast<int64_t>(bytes);
  if (b.tx < 0 && b.pending == 0) trap("cp.async.bulk.tensor completed more bytes than the mbarrier phase expects");
  complete_if_done(b);
  note_progress();
}

void wgmma_issue(float* acc, int n, uint64_t desc_a, uint64_t desc_b, int scale_d, int tnsp_a, int tnsp_b,
                 bool bf16) {
  if (threads_in_block() % 128 != 0) trap("wgmma in a block whose size is not a multiple of a warpgroup");
  block().threads[thread_in_block()].open.push_back({acc, n, desc_a, desc_b, scale_d, tnsp_a, tnsp_b, bf16});
}

void wgmma_commit() {
  ThreadWg& me = block().threads[thread_in_block()];
  me.groups.push_back(std::move(me.open));
  me.open.clear();
  ++me.committed;
}

void wgmma_wait(int pending) {
  HopperBlock& hb = block();
  const int t = thread_in_block(), wg = t / 128;
  for (;;) {
    const uint64_t committed = hb.threads[t].committed;
    if (committed <= static_cast<uint64_t>(pending) || hb.executed[wg] >= committed - pending) return;
    // The oldest group not yet run starts when every thread of the warpgroup has committed it.
    const uint64_t g = hb.executed[wg];
    bool ready = true;
    for (int u = wg * 128; u < wg * 128 + 128; ++u) {
      if (hb.threads[u].committed > g) continue;
      if (thread_done(u)) trap("wgmma.wait_group on a group that an exited thread of the warpgroup never committed");
      ready = false;
    }
    if (!ready) {
      spin_wait();
      continue;
    }
    for (int u = wg * 128; u < wg * 128 + 128; ++u) {
      for (const WgOp& op : hb.threads[u].groups.front()) run_op(op, u - wg * 128);
      hb.threads[u].groups.pop_front();
    }
    ++hb.executed[wg];
    note_progress();
  }
}

// cuTensorMapEncodeTiled (tile mode), as the driver checks it: rank 1-3 here, a 16-byte aligned
// base, strides multiples of 16 bytes below 2^40, boxes of 1-256 elements whose rows are a
// multiple of 16 bytes, element strides of 1, no interleave; the 128-byte swizzle needs rows of
// exactly 128 bytes here (the only case the kernel and this emulator use).
CUresult encode_tensor_map_tiled(CUtensorMap* map, CUtensorMapDataType dtype, cuuint32_t rank, void* base,
                                 const cuuint64_t* dims, const cuuint64_t* strides, const cuuint32_t* box,
                                 const cuuint32_t* elem_strides, CUtensorMapInterleave interleave,
                                 CUtensorMapSwizzle swizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill fill) {
  auto bad = [](const char* why) {
    std::fprintf(stderr, "[cuda-emu] cuTensorMapEncodeTiled: %s\n", why);
    return CUDA_ERROR_INVALID_VALUE;
  };
  if (!map || reinterpret_cast<uintptr_t>(map) % 64 != 0) return bad("the map is not 64-byte aligned");
  EmuTensorMap m{};
  m.magic = kMapMagic;
  switch (dtype) {
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT16:
    case CU_TENSOR_MAP_DATA_TYPE_BFLOAT16:
    case CU_TENSOR_MAP_DATA_TYPE_UINT16: m.elem_bytes = 2; break;
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT32:
    case CU_TENSOR_MAP_DATA_TYPE_INT32:
    case CU_TENSOR_MAP_DATA_TYPE_UINT32: m.elem_bytes = 4; break;
    case CU_TENSOR_MAP_DATA_TYPE_UINT8: m.elem_bytes = 1; break;
    default: return bad("data type not emulated");
  }
  if (rank < 1 || rank > 3) return bad("rank outside 1..3 (not emulated)");
  if (reinterpret_cast<uintptr_t>(base) % 16 != 0) return bad("global address not 16-byte aligned");
  if (interleave != CU_TENSOR_MAP_INTERLEAVE_NONE) return bad("interleave not emulated");
  if (fill != CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) return bad("NaN fill not emulated");
  m.rank = rank;
  m.base = static_cast<const unsigned char*>(base);
  for (cuuint32_t d = 0; d < rank; ++d) {
    if (dims[d] == 0 || dims[d] > (uint64_t{1} << 32)) return bad("a dimension outside 1..2^32");
    if (box[d] == 0 || box[d] > 256) return bad("a box dimension outside 1..256");
    if (elem_strides[d] != 1) return bad("element strides other than 1 not emulated");
    m.dims[d] = dims[d];
    m.box[d] = box[d];
    if (d > 0) {
      if (strides[d - 1] % 16 != 0 || strides[d - 1] >= (uint64_t{1} << 40))
        return bad("a global stride not a multiple of 16 bytes or not below 2^40");
      m.strides[d - 1] = strides[d - 1];
    }
  }
  if ((box[0] * m.elem_bytes) % 16 != 0) return bad("the box's inner dimension is not a multiple of 16 bytes");
  if (swizzle == CU_TENSOR_MAP_SWIZZLE_128B) {
    if (box[0] * m.elem_bytes != 128) return bad("the 128-byte swizzle with rows other than 128 bytes (not emulated)");
    m.swizzle_bytes = 128;
  } else if (swizzle != CU_TENSOR_MAP_SWIZZLE_NONE) {
    return bad("swizzle modes other than none and 128B not emulated");
  }
  std::memset(map, 0, sizeof *map);
  std::memcpy(map, &m, sizeof m);
  return CUDA_SUCCESS;
}

}  // namespace bm_emu
