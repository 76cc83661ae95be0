// Hopper (sm_90a) primitives of the wgmma GEMM (kernels/cuda/gemm_wgmma.cu) as thin inline-asm
// wrappers: mbarriers, TMA tile loads (cp.async.bulk.tensor), shared-memory matrix descriptors
// and wgmma.mma_async m64n256k16 with float32 accumulators. Include from sm_90a code only.
// The BIGMODEL_CUDA_EMU branches are the CUDA-on-CPU test build (tests/cuda_emu/emu_hopper.cpp
// emulates each primitive after the PTX ISA).
#pragma once
#include <cuda.h>  // CUtensorMap (a type only: nothing here links libcuda)
#include <cuda_runtime.h>

#include <cstdint>

namespace bigmodel::cuda::gemm_detail::sm90 {

#ifdef BIGMODEL_CUDA_EMU
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) { bm_emu::mbar_init(bar, count); }
__device__ __forceinline__ void fence_mbar_init() {}
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) { bm_emu::mbar_arrive(bar, bytes); }
__device__ __forceinline__ void mbar_arrive(uint32_t bar) { bm_emu::mbar_arrive(bar, 0); }
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  while (!bm_emu::mbar_try_wait_parity(bar, parity)) bm_emu::spin_wait();
}
__device__ __forceinline__ void prefetch_tensor_map(const CUtensorMap*) {}
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2,
                                            uint32_t bar) {
  const int coords[3] = {c0, c1, c2};
  bm_emu::tma_load(dst, map, coords, 3, bar);
}
#else
// ---- mbarrier ---------------------------------------------------------------------------
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Makes the initialisations visible to the copy engine (the async proxy) and other threads.
__device__ __forceinline__ void fence_mbar_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// One arrival that also announces `bytes` of TMA traffic the phase must wait for.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Spins until the phase of parity `parity` has completed. A fresh barrier counts its (never
// run) phase of parity 1 as complete, so a producer's first wait on an empty slot passes.
// A wait that lasts ~10 s (a byte count or phase bug: the barrier never completes) traps, so
// a broken pipeline fails the launch instead of hanging the process.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  const long long start = clock64();
  uint32_t done;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
    // (No printf here: a call inside the loop makes ptxas serialise every wgmma, C7510.)
    if (!done && clock64() - start > 20000000000LL) __trap();
  } while (!done);
}

// ---- TMA ----------------------------------------------------------------------------------
__device__ __forceinline__ void prefetch_tensor_map(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}
// Copies the box at element coordinates (c0 innermost, c1, c2) of `map` into shared memory at
// `dst` (1024-byte aligned for the 128-byte swizzle); completion is counted on `bar` in bytes.
// Parts of the box outside the tensor are filled with zeros (and still counted).
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2,
                                            uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], "
      "[%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}
#endif  // BIGMODEL_CUDA_EMU

// ---- wgmma --------------------------------------------------------------------------------
// Shared-memory matrix descriptor for a tile written by TMA with the 128-byte swizzle:
// start address, leading- and stride-dimension byte offsets (all in 16-byte units), swizzle
// mode 1 (128B) in bits 62-63, base offset 0 (every tile starts 1024-byte aligned, and the
// k-step advances inside a tile keep the row phase the swizzle is computed from).
// K-major tile (rows of 64 k = 128 bytes): SBO = 1024 (8 rows), LBO unused (1).
// MN-major tile (rows of 64 m/n, one row per k): SBO = 1024 (8 k rows), LBO = the distance
// between the 64-wide column blocks.
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>((lbo_bytes >> 4) & 0x3FFF) << 16) |
         (static_cast<uint64_t>((sbo_bytes >> 4) & 0x3FFF) << 32) | (uint64_t{1} << 62);
}

#ifdef BIGMODEL_CUDA_EMU
__device__ __forceinline__ void wgmma_fence() {}
__device__ __forceinline__ void wgmma_commit() { bm_emu::wgmma_commit(); }
template <int N> __device__ __forceinline__ void wgmma_wait() { bm_emu::wgmma_wait(N); }
__device__ __forceinline__ void fence_regs(float (&)[128]) {}
template <bool BF16, int TnspA, int TnspB>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  bm_emu::wgmma_issue(d, 256, desc_a, desc_b, scale_d, TnspA, TnspB, BF16);
}
#else
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving reads or writes of the accumulators across a wgmma boundary
// (the tensor cores own them between the issue and the wait).
__device__ __forceinline__ void fence_regs(float (&d)[128]) {
#pragma unroll
  for (int i = 0; i < 128; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// wgmma's 128 float accumulators of one m64n256k16 (a warpgroup holds the 64 x 256 tile, 128
// registers per thread): the operand list both element types share.
#define BM_WGMMA_N256_ACC_REGS \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
#define BM_WGMMA_N256_ACC_OUTS \
      "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), \
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), \
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), \
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), \
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), \
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), \
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), \
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), \
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
#define BM_WGMMA_N256(TYPE)                                                                  \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"                                \
               "wgmma.mma_async.sync.aligned.m64n256k16.f32." TYPE "." TYPE " {"             \
               BM_WGMMA_N256_ACC_REGS "}, %128, %129, p, 1, 1, %131, %132;\n}\n"             \
               : BM_WGMMA_N256_ACC_OUTS                                                       \
               : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(TnspA), "n"(TnspB))

// d (64 x 256 per warpgroup, float32) = A (64 x 16) * B (16 x 256) + (scale_d ? d : 0).
// TnspA / TnspB: 0 when that operand's tile is K-major in shared memory, 1 when MN-major.
// Accumulator layout (per warp w of the group, lane = 4g + q): d[4j + 2h + e] holds row
// 16w + g + 8h, column 8j + 2q + e.
template <bool BF16, int TnspA, int TnspB>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  if constexpr (BF16) {
    BM_WGMMA_N256("bf16");
  } else {
    BM_WGMMA_N256("f16");
  }
}
#undef BM_WGMMA_N256
#undef BM_WGMMA_N256_ACC_OUTS
#undef BM_WGMMA_N256_ACC_REGS
#endif  // BIGMODEL_CUDA_EMU

}  // namespace bigmodel::cuda::gemm_detail::sm90
