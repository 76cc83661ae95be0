// float16 / bfloat16 GEMM for Hopper (sm_90a): TMA tile loads into 128-byte-swizzled shared
// memory, a 4-stage mbarrier pipeline, one producer warpgroup and two consumer warpgroups
// issuing wgmma.mma_async m64n256k16 (float32 accumulators), 128 x 256 x 64 block tiles, a
// persistent grid (one block per SM looping over batch x tiles), and the epilogue of
// gemm_common.cuh (alpha, beta, bias, activation, aux) staged through shared memory.
// All four layouts run on one code path: TMA reads either storage order and wgmma's transpose
// bits take the M/N-major tiles. Built for sm_90a only (its own object library in CMake);
// chosen by gemm_ours on compute capability 9.0 (BIGMODEL_GEMM_WGMMA=0 turns it off).
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled (fetched from the driver at run time)

#include <array>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_common.cuh"
#include "kernels/cuda/gemm_wgmma.cuh"

namespace bigmodel::cuda::gemm_detail {
namespace {

constexpr int kBM = 128, kBN = 256, kBK = 64;  // 64 halves = 128 bytes: one swizzle row
constexpr int kStages = 4;
constexpr int kConsumers = 2;                          // warpgroups doing math, 64 rows of C each
constexpr int kThreads = 128 * (1 + kConsumers);       // warpgroup 0 is the producer
constexpr int kBoxBytes = 64 * 64 * 2;                 // one 64 x 64 box (an MN-major column block)
constexpr int kATileBytes = kBM * kBK * 2;             // 16 KB
constexpr int kBTileBytes = kBN * kBK * 2;             // 32 KB
constexpr int kStageBytes = kATileBytes + kBTileBytes;  // 48 KB
constexpr int kEpiStride = 40;  // floats per row of the epilogue buffer: 32 + 8 keeps float2 stores conflict-free
constexpr int kEpiBytes = kConsumers * 64 * kEpiStride * 4;  // 20 KB
constexpr int kSmemBytes = kStages * kStageBytes + kEpiBytes + 1024;  // + slack to align the tiles to 1024

struct WgArgs {
  int M, N, K;
  void* C;
  int64_t ldc, stride_c;
  int64_t batch;
  int batch_a, batch_b;  // 1, or 0 where the operand is broadcast (its tensor map has 1 matrix)
  int tiles_m, tiles_n;
  bool ta, tb;   // A stored K x M (M-major tiles); B stored N x K (K-major tiles)
  bool out_f32;  // C is float32 (else the input dtype)
  bool vec_c;    // pairs of C elements may be stored as one 4- or 8-byte word
  bool vec_aux;  // the same for the aux output (when there is one)
  Epilogue ep;
};

#ifdef BIGMODEL_CUDA_EMU  // the CUDA-on-CPU test build (tests/cuda_emu)
__device__ __forceinline__ void st_global_f32x2(void* p, float x, float y) {
  const float v[2] = {x, y};
  std::memcpy(p, v, sizeof v);
}
__device__ __forceinline__ void st_global_b32(void* p, uint32_t v) { std::memcpy(p, &v, sizeof v); }
#else
__device__ __forceinline__ void st_global_f32x2(void* p, float x, float y) {
  asm volatile("st.global.v2.f32 [%0], {%1, %2};\n" ::"l"(__cvta_generic_to_global(p)), "f"(x), "f"(y) : "memory");
}
__device__ __forceinline__ void st_global_b32(void* p, uint32_t v) {
  asm volatile("st.global.b32 [%0], %1;\n" ::"l"(__cvta_generic_to_global(p)), "r"(v) : "memory");
}
#endif
__device__ __forceinline__ uint32_t bits16(__half v) { return __half_as_ushort(v); }
__device__ __forceinline__ uint32_t bits16(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }

// Two adjacent elements as one 8-byte (float) or 4-byte (half) store.
template <typename TOut>
__device__ __forceinline__ void st_two(TOut* p, float x, float y) {
  if constexpr (std::is_same_v<TOut, float>) {
    st_global_f32x2(p, x, y);
  } else {
    st_global_b32(p, bits16(from_float<TOut>(x)) | (bits16(from_float<TOut>(y)) << 16));
  }
}

// C[m, n] and C[m, n + 1] (and aux, when not null) through the epilogue; wide stores when
// both columns exist and the alignment allows.
template <typename TOut>
__device__ __forceinline__ void store_pair(TOut* c, TOut* aux, const Epilogue& ep, int n, int N, bool vec,
                                           bool vec_aux, float v0, float v1) {
  if (vec && n + 1 < N) {
    float r0 = ep.alpha * v0, r1 = ep.alpha * v1;
    if (ep.beta != 0.0f) {
      r0 += ep.beta * to_float(c[0]);
      r1 += ep.beta * to_float(c[1]);
    }
    if (ep.bias) {
      const TOut* bias = static_cast<const TOut*>(ep.bias);
      r0 += to_float(bias[n]);
      r1 += to_float(bias[n + 1]);
    }
    if (aux) {
      if (vec_aux) {
        st_two<TOut>(aux, r0, r1);
      } else {
        aux[0] = from_float<TOut>(r0);
        aux[1] = from_float<TOut>(r1);
      }
    }
    st_two<TOut>(c, activate(r0, ep.act), activate(r1, ep.act));
  } else {
    if (n < N) store_result<TOut, float>(c, aux, ep, n, v0);
    if (n + 1 < N) store_result<TOut, float>(c + 1, aux ? aux + 1 : nullptr, ep, n + 1, v1);
  }
}

// Named barrier over one consumer warpgroup (ids 1, 2; 0 is __syncthreads).
__device__ __forceinline__ void warpgroup_sync(int cw) {
#ifdef BIGMODEL_CUDA_EMU
  bm_emu::named_barrier(1 + cw, 128);
#else
  asm volatile("bar.sync %0, 128;\n" ::"r"(1 + cw) : "memory");
#endif
}

// Writes one consumer warpgroup's 64 x 256 accumulators (rows m_base.., columns n_base..) of
// batch b. The fragments go through shared memory 32 columns at a time (`buf`: 64 rows of
// kEpiStride floats), so that the epilogue code is one loop, not 64 unrolled copies, and each
// half-warp stores 16 adjacent column pairs of one row.
template <typename TOut>
__device__ __forceinline__ void epilogue(const WgArgs& args, TOut* C, int64_t b, const float (&acc)[128],
                                         float* buf, int m_base, int n_base, int cw, int t) {
  const int warp = t >> 5, lane = t & 31, g = lane >> 2, q = lane & 3;
#pragma unroll
  for (int c = 0; c < kBN / 32; ++c) {
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      const int j = 4 * c + jj;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float2 v = make_float2(acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
        *reinterpret_cast<float2*>(buf + (warp * 16 + g + 8 * h) * kEpiStride + jj * 8 + 2 * q) = v;
      }
    }
    warpgroup_sync(cw);
    const int n = n_base + 32 * c + 2 * (t & 15);
#pragma unroll 1
    for (int r = t >> 4; r < 64; r += 8) {
      const int m = m_base + r;
      if (m < args.M && n < args.N) {
        const float2 v = *reinterpret_cast<const float2*>(buf + r * kEpiStride + 2 * (t & 15));
        store_pair<TOut>(C + static_cast<int64_t>(m) * args.ldc + n, aux_at<TOut>(args.ep, b, m, n), args.ep, n,
                         args.N, args.vec_c, args.vec_aux, v.x, v.y);
      }
    }
    warpgroup_sync(cw);  // the buffer is rewritten by the next chunk
  }
}

// The producer's copies for one stage: A's 128 x 64 and B's 256 x 64 tiles of k-tile k0.
// K-major operands come as one box (rows of 64 k), M/N-major ones as 64 x 64 column blocks.
// Boxes wholly past M or N are not loaded (stage_bytes leaves them out): the stale shared
// memory there only reaches rows / columns of C that are never stored. Boxes partly out of
// range are zero-filled by the copy engine.
template <bool TA, bool TB>
__device__ __forceinline__ void load_stage(const CUtensorMap* map_a, const CUtensorMap* map_b, uint32_t sa,
                                           uint32_t full, int m0, int n0, int k0, int ca, int cb, int M, int N) {
  using namespace sm90;
  if (!TA) {
    tma_load_3d(sa, map_a, k0, m0, ca, full);
  } else {
    tma_load_3d(sa, map_a, m0, k0, ca, full);
    if (m0 + 64 < M) tma_load_3d(sa + kBoxBytes, map_a, m0 + 64, k0, ca, full);
  }
  const uint32_t sb = sa + kATileBytes;
  if (TB) {
    tma_load_3d(sb, map_b, k0, n0, cb, full);
  } else {
#pragma unroll
    for (int j = 0; j < kBN / 64; ++j)
      if (n0 + 64 * j < N) tma_load_3d(sb + j * kBoxBytes, map_b, n0 + 64 * j, k0, cb, full);
  }
}

// The bytes load_stage brings in for the tile at (m0, n0): what the full barrier waits for.
__device__ __forceinline__ uint32_t stage_bytes(bool ta, bool tb, int m0, int n0, int M, int N) {
  const uint32_t a = ta ? (m0 + 64 < M ? 2u : 1u) * kBoxBytes : kATileBytes;
  const int b_boxes = min(kBN / 64, (N - n0 + 63) / 64);
  const uint32_t b = tb ? kBTileBytes : static_cast<uint32_t>(b_boxes) * kBoxBytes;
  return a + b;
}

// One consumer warpgroup's main loop over the k-tiles of one output tile: acc += A B.
// `it` counts stages used so far (across batches), which gives the slot and phase.
template <bool BF16, bool TA, bool TB>
__device__ __forceinline__ void consume(float (&acc)[128], uint32_t tiles, uint32_t full0, uint32_t empty0, int cw,
                                        int lane, int ktiles, uint32_t& it) {
  using namespace sm90;
  for (int kt = 0; kt < ktiles; ++kt, ++it) {
    const uint32_t s = it % kStages;
    mbar_wait(full0 + 8 * s, (it / kStages) & 1);
    // This warpgroup's 64 rows of A: 64 rows of 128 bytes (K-major) or the cw-th 64 x 64
    // column block (M-major); both start cw * 8 KB into the A tile.
    const uint32_t sa = tiles + s * kStageBytes + cw * kBoxBytes, sb = tiles + s * kStageBytes + kATileBytes;
    wgmma_fence();
    fence_regs(acc);
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      // k16 step: 32 bytes along a K-major row, or 16 rows of 128 bytes in an MN-major tile.
      const uint64_t da = TA ? smem_desc(sa + kk * 2048, kBoxBytes, 1024) : smem_desc(sa + kk * 32, 16, 1024);
      const uint64_t db = TB ? smem_desc(sb + kk * 32, 16, 1024) : smem_desc(sb + kk * 2048, kBoxBytes, 1024);
      wgmma_m64n256k16<BF16, TA ? 1 : 0, TB ? 0 : 1>(acc, da, db, 1);
    }
    wgmma_commit();
    fence_regs(acc);
    // Keep this tile's group in flight; the previous one is done, so its stage is free.
    wgmma_wait<1>();
    fence_regs(acc);
    if (kt > 0 && lane == 0) mbar_arrive(empty0 + 8 * ((it - 1) % kStages));
  }
  wgmma_wait<0>();
  fence_regs(acc);
  if (ktiles > 0 && lane == 0) mbar_arrive(empty0 + 8 * ((it - 1) % kStages));
}

// One launch per dtype; the layout (args.ta, args.tb) is a uniform branch around the loops.
template <typename T>
__global__ void __launch_bounds__(kThreads, 1)
    gemm_wgmma_128x256(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b,
                       WgArgs args) {
#if (defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)) || defined(BIGMODEL_CUDA_EMU)
  using namespace sm90;
  constexpr bool kBF16 = std::is_same_v<T, __nv_bfloat16>;
  extern __shared__ uint8_t smem_raw[];
  __shared__ __align__(8) uint64_t full_bar[kStages];   // stage filled (TMA bytes landed)
  __shared__ __align__(8) uint64_t empty_bar[kStages];  // stage free (both consumers done)
  // The swizzle is a function of address bits 4..9: every tile starts 1024-byte aligned.
  const uint32_t raw = smem_addr(smem_raw);
  const uint32_t tiles = (raw + 1023u) & ~1023u;
  const uint32_t full0 = smem_addr(full_bar), empty0 = smem_addr(empty_bar);
  const int wg = threadIdx.x >> 7, t = threadIdx.x & 127;

  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full0 + 8 * s, 1);                // the producer's arrive_expect_tx
      mbar_init(empty0 + 8 * s, kConsumers * 4);  // lane 0 of every consumer warp
    }
    fence_mbar_init();
    prefetch_tensor_map(&map_a);
    prefetch_tensor_map(&map_b);
  }
  __syncthreads();

  // Persistent: block i takes work items i, i + gridDim.x, ... (item = batch * tiles + tile).
  // The producer runs ahead into the next item while the consumers store this one's results.
  const int64_t tiles_per_batch = static_cast<int64_t>(args.tiles_m) * args.tiles_n;
  const int64_t work = tiles_per_batch * args.batch;
  const int ktiles = (args.K + kBK - 1) / kBK;
  auto item_coords = [&](int64_t w, int64_t& b, int& m0, int& n0) {
    b = w / tiles_per_batch;
    int tm, tn;
    tile_coords(static_cast<int>(w - b * tiles_per_batch), args.tiles_m, args.tiles_n, tm, tn);
    m0 = tm * kBM;
    n0 = tn * kBN;
  };

  if (wg == 0) {
    // Producer: one thread issues every copy; the stage counter `it` runs on across work
    // items so that the barrier phases of producer and consumers stay in step. (No setmaxnreg:
    // the consumers fit the 168 registers of 384 threads without spilling, and one block per
    // SM leaves the producer's unused registers idle either way.)
    if (t == 0) {
      uint32_t it = 0;
      const int M = args.M, N = args.N;
      for (int64_t w = blockIdx.x; w < work; w += gridDim.x) {
        int64_t b;
        int m0, n0;
        item_coords(w, b, m0, n0);
        const uint32_t bytes = stage_bytes(args.ta, args.tb, m0, n0, M, N);
        const int ca = static_cast<int>(b) * args.batch_a, cb = static_cast<int>(b) * args.batch_b;
        for (int kt = 0; kt < ktiles; ++kt, ++it) {
          const uint32_t s = it % kStages;
          mbar_wait(empty0 + 8 * s, ((it / kStages) & 1) ^ 1);
          const uint32_t full = full0 + 8 * s, sa = tiles + s * kStageBytes;
          mbar_arrive_expect_tx(full, bytes);
          const int k0 = kt * kBK;
          if (!args.ta && !args.tb) load_stage<false, false>(&map_a, &map_b, sa, full, m0, n0, k0, ca, cb, M, N);
          else if (!args.ta) load_stage<false, true>(&map_a, &map_b, sa, full, m0, n0, k0, ca, cb, M, N);
          else if (!args.tb) load_stage<true, false>(&map_a, &map_b, sa, full, m0, n0, k0, ca, cb, M, N);
          else load_stage<true, true>(&map_a, &map_b, sa, full, m0, n0, k0, ca, cb, M, N);
        }
      }
    }
  } else {
    const int cw = wg - 1;  // rows cw*64.. of the block tile
    const int lane = t & 31;
    float* buf = reinterpret_cast<float*>(smem_raw + (tiles - raw) + kStages * kStageBytes) + cw * 64 * kEpiStride;
    float acc[128];
    uint32_t it = 0;
    for (int64_t w = blockIdx.x; w < work; w += gridDim.x) {
      int64_t b;
      int m0, n0;
      item_coords(w, b, m0, n0);
#pragma unroll
      for (int i = 0; i < 128; ++i) acc[i] = 0.0f;
      if (!args.ta && !args.tb) consume<kBF16, false, false>(acc, tiles, full0, empty0, cw, lane, ktiles, it);
      else if (!args.ta) consume<kBF16, false, true>(acc, tiles, full0, empty0, cw, lane, ktiles, it);
      else if (!args.tb) consume<kBF16, true, false>(acc, tiles, full0, empty0, cw, lane, ktiles, it);
      else consume<kBF16, true, true>(acc, tiles, full0, empty0, cw, lane, ktiles, it);

      const int m_base = m0 + cw * 64;
      if (args.out_f32)
        epilogue<float>(args, static_cast<float*>(args.C) + b * args.stride_c, b, acc, buf, m_base, n0, cw, t);
      else
        epilogue<T>(args, static_cast<T*>(args.C) + b * args.stride_c, b, acc, buf, m_base, n0, cw, t);
    }
  }
#endif
}

// ---- host side ------------------------------------------------------------------------------

PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult status{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &status) !=
            cudaSuccess ||
        status != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      p = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

// Compute capability 9.0 on the current device (cached per device).
bool current_device_is_sm90() {
  static std::array<std::atomic<int>, 64> cache{};  // 0 unknown, 1 yes, 2 no
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) {
    cudaGetLastError();
    return false;
  }
  int known = cache[dev].load(std::memory_order_relaxed);
  if (known == 0) {
    int major = 0, minor = 0;
    const bool ok = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
                    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess;
    if (!ok) cudaGetLastError();
    known = ok && major == 9 && minor == 0 ? 1 : 2;
    cache[dev].store(known, std::memory_order_relaxed);
  }
  return known == 1;
}

// Multiprocessors of the current device (cached per device).
int sm_count() {
  static std::array<std::atomic<int>, 64> cache{};  // 0 unknown
  int dev = 0;
  BM_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) return 132;
  int n = cache[dev].load(std::memory_order_relaxed);
  if (n == 0) {
    BM_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
    n = std::max(n, 1);
    cache[dev].store(n, std::memory_order_relaxed);
  }
  return n;
}

bool env_disabled() {
  const char* v = std::getenv("BIGMODEL_GEMM_WGMMA");
  return v && std::strcmp(v, "0") == 0;
}

// A 3-d map (columns, rows, batch) over one operand as stored, boxes of box_cols x box_rows x 1
// with the 128-byte swizzle. False when the driver rejects it (the caller falls back).
bool encode_map(CUtensorMap* map, DType dt, const void* base, int64_t cols, int64_t rows, int64_t ld,
                int64_t batch, int64_t stride, uint32_t box_cols, uint32_t box_rows) {
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows),
                              static_cast<cuuint64_t>(batch)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(ld) * 2, static_cast<cuuint64_t>(stride) * 2};
  const cuuint32_t box[3] = {box_cols, box_rows, 1};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  const CUresult r = tensor_map_encoder()(
      map, dt == DType::BFloat16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 3,
      const_cast<void*>(base), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
      CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS;
}

template <typename T>
void launch_one(const CUtensorMap& ma, const CUtensorMap& mb, const WgArgs& a, dim3 grid, cudaStream_t s) {
  static SmemOptIn opt_in;  // one per instantiation: the attribute belongs to the function
  opt_in.ensure(reinterpret_cast<const void*>(gemm_wgmma_128x256<T>), kSmemBytes);
  gemm_wgmma_128x256<T><<<grid, kThreads, kSmemBytes, s>>>(ma, mb, a);
  BM_CUDA_CHECK_LAUNCH();
}

// The TMA rules: a 16-byte aligned base, row and batch strides multiples of 16 bytes.
bool operand_ok(const void* ptr, int64_t ld, int64_t stride, int64_t batch) {
  return pointer_alignment(ptr) >= 16 && ld % 8 == 0 && (batch == 1 || stride % 8 == 0) && stride >= 0;
}

}  // namespace

bool wgmma_gemm_available() { return tensor_map_encoder() != nullptr && current_device_is_sm90(); }

bool wgmma_gemm_supported(const GemmParams& p) {
  const bool dtypes = (p.in_dtype == DType::Float16 || p.in_dtype == DType::BFloat16) &&
                      (p.out_dtype == p.in_dtype || p.out_dtype == DType::Float32);
  // Coordinates and the tile count stay in int32 (the box may reach 256 past the last row).
  const int64_t lim = int64_t{INT_MAX} - 512;
  const int64_t tiles = ((p.M + kBM - 1) / kBM) * ((p.N + kBN - 1) / kBN);
  return dtypes && !env_disabled() && p.K >= 1 && p.M <= lim && p.N <= lim && p.K <= lim && tiles <= INT_MAX &&
         p.batch <= INT_MAX && operand_ok(p.A, p.lda, p.stride_a, p.batch) &&
         operand_ok(p.B, p.ldb, p.stride_b, p.batch) && wgmma_gemm_available();
}

void launch_gemm_wgmma(const GemmParams& p, void* stream) {
  // op(A) is M x K: stored M x K (K innermost, boxes 64 k x 128 rows) or K x M (M innermost,
  // boxes 64 m x 64 k). op(B) is K x N: stored N x K (boxes 64 k x 256 rows) or K x N (boxes
  // 64 n x 64 k). A broadcast operand (stride 0) gets a batch extent of 1 and coordinate 0.
  const bool bcast_a = p.batch == 1 || p.stride_a == 0, bcast_b = p.batch == 1 || p.stride_b == 0;
  const int64_t a_rows = p.trans_a ? p.K : p.M, a_cols = p.trans_a ? p.M : p.K;
  const int64_t b_rows = p.trans_b ? p.N : p.K, b_cols = p.trans_b ? p.K : p.N;
  CUtensorMap ma, mb;
  std::memset(&ma, 0, sizeof ma);
  std::memset(&mb, 0, sizeof mb);
  const bool ok =
      encode_map(&ma, p.in_dtype, p.A, a_cols, a_rows, p.lda, bcast_a ? 1 : p.batch,
                 bcast_a ? a_rows * p.lda : p.stride_a, 64, p.trans_a ? 64 : kBM) &&
      encode_map(&mb, p.in_dtype, p.B, b_cols, b_rows, p.ldb, bcast_b ? 1 : p.batch,
                 bcast_b ? b_rows * p.ldb : p.stride_b, 64, p.trans_b ? kBN : 64);
  if (!ok) {  // e.g. overlapping batch strides the driver will not describe
    if (tc_gemm_supported(p)) {
      launch_gemm_tc(p, stream);
    } else {
      BM_CHECK_VALUE(p.M <= int64_t{65535} * 32, "gemm", "M=", p.M, " is too large for the fallback kernel");
      launch_gemm_generic(p, stream);
    }
    return;
  }
  WgArgs a;
  a.M = static_cast<int>(p.M);
  a.N = static_cast<int>(p.N);
  a.K = static_cast<int>(p.K);
  a.C = p.C;
  a.ldc = p.ldc;
  a.stride_c = p.stride_c;
  a.batch = p.batch;
  a.batch_a = bcast_a ? 0 : 1;
  a.batch_b = bcast_b ? 0 : 1;
  a.ta = p.trans_a;
  a.tb = p.trans_b;
  a.tiles_m = static_cast<int>((p.M + kBM - 1) / kBM);
  a.tiles_n = static_cast<int>((p.N + kBN - 1) / kBN);
  a.out_f32 = p.out_dtype == DType::Float32;
  const int pair_bytes = a.out_f32 ? 8 : 4;
  a.vec_c = pointer_alignment(p.C) >= pair_bytes && p.ldc % 2 == 0 && (p.batch == 1 || p.stride_c % 2 == 0);
  a.vec_aux = p.aux && pointer_alignment(p.aux) >= pair_bytes && p.ld_aux % 2 == 0 &&
              (p.batch == 1 || p.stride_aux % 2 == 0);
  a.ep = make_epilogue(p);
  // One block per SM (the shared memory allows no second), each looping over work items.
  // BIGMODEL_GEMM_WGMMA_BLOCKS=n caps the grid (the tests use it to give every block several).
  const int64_t work = int64_t{a.tiles_m} * a.tiles_n * p.batch;
  int64_t blocks = std::min<int64_t>(work, sm_count());
  if (const char* cap = std::getenv("BIGMODEL_GEMM_WGMMA_BLOCKS")) {
    const long v = std::strtol(cap, nullptr, 10);
    if (v > 0) blocks = std::min<int64_t>(blocks, v);
  }
  const dim3 grid(static_cast<unsigned>(blocks));
  auto s = static_cast<cudaStream_t>(stream);
  if (p.in_dtype == DType::BFloat16) launch_one<__nv_bfloat16>(ma, mb, a, grid, s);
  else launch_one<__half>(ma, mb, a, grid, s);
}

}  // namespace bigmodel::cuda::gemm_detail
