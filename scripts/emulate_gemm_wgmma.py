# Emulates the index math of kernels/cuda/gemm_wgmma.cu on the CPU (NumPy): TMA boxes with the
# 128-byte swizzle and zero fill, skipped boxes (filled with garbage), wgmma descriptor
# addressing of the canonical K- and MN-major layouts as PTX/CUTLASS document them, the
# accumulator fragment layout and the shared-memory staged epilogue. It checks the kernel's own
# offsets against that reading of the hardware, not the hardware. Keep its constants in step
# with the kernel. Run: python3 scripts/emulate_gemm_wgmma.py (about a minute).
import sys

import numpy as np

failures = []
kBM, kBN, kBK, kStages = 128, 256, 64, 4
kBox = 64*64*2; kA = kBM*kBK*2; kB = kBN*kBK*2; kStage = kA + kB
def swz(addr): return addr ^ (((addr >> 7) & 7) << 4)
class Smem:
    def __init__(s, n): s.v = np.full(n//2, np.nan)  # 2-byte cells; NaN = never written
    def put(s, addr, val): s.v[swz(addr)//2] = val
    def get(s, addr): return s.v[swz(addr)//2]
def tma(sm, dst, T, c0, c1, c2, bc, br):
    # T: [batch, rows, cols] (cols innermost); box bc x br; zero fill OOB
    for r in range(br):
        for c in range(bc):
            R, C = c1 + r, c0 + c
            v = T[c2, R, C] if (R < T.shape[1] and C < T.shape[2] and c2 < T.shape[0]) else 0.0
            sm.put(dst + r*(bc*2) + c*2, v)
    return bc*br*2
def desc_read_kmajor(sm, start, rows, sbo):
    out = np.zeros((rows, 16))
    for i in range(rows):
        for k in range(16):
            out[i, k] = sm.get(start + (i%8)*128 + (i//8)*sbo + (k//8)*16 + (k%8)*2)
    return out
def desc_read_mnmajor(sm, start, rows, lbo, sbo):
    out = np.zeros((rows, 16))
    for i in range(rows):
        for k in range(16):
            out[i, k] = sm.get(start + (i%64)*2 + (i//64)*lbo + (k%8)*128 + (k//8)*sbo)
    return out
def run(M, N, K, ta, tb, batch=1, bca=False, bcb=False, seed=0):
    rng = np.random.default_rng(seed)
    lda = ((M if ta else K)+7)//8*8+8; ldb = ((K if tb else N)+7)//8*8+8
    arows = K if ta else M; brows = N if tb else K
    A = rng.uniform(-1,1,(1 if bca else batch, arows, lda)); B = rng.uniform(-1,1,(1 if bcb else batch, brows, ldb))
    # tensor maps: dims (cols, rows, batch) with cols = logical column count (not ld)
    Am = A[:, :, :(M if ta else K)]; Bm = B[:, :, :(K if tb else N)]
    C = np.full((batch, M, N), np.nan)
    tiles_m = (M+kBM-1)//kBM; tiles_n = (N+kBN-1)//kBN; ktiles = (K+kBK-1)//kBK
    for b in range(batch):
      for tm in range(tiles_m):
        for tn in range(tiles_n):
          m0, n0 = tm*kBM, tn*kBN
          ca = 0 if bca else b; cb = 0 if bcb else b
          a_bytes = (2 if m0+64 < M else 1)*kBox if ta else kA
          b_bytes = kB if tb else min(4, (N-n0+63)//64)*kBox
          accs = [np.zeros((64, 256)) for _ in range(2)]
          for kt in range(ktiles):
            sm = Smem(kStage + 4096); sa = 0; sb = kA; k0 = kt*kBK; got = 0
            if not ta: got += tma(sm, sa, Am, k0, m0, ca, 64, 128)
            else:
                got += tma(sm, sa, Am, m0, k0, ca, 64, 64)
                if m0 + 64 < M: got += tma(sm, sa+kBox, Am, m0+64, k0, ca, 64, 64)
            if tb: got += tma(sm, sb, Bm, k0, n0, cb, 64, 256)
            else:
                for j in range(4):
                    if n0 + 64*j < N: got += tma(sm, sb + j*kBox, Bm, n0+64*j, k0, cb, 64, 64)
            assert got == a_bytes + b_bytes, (got, a_bytes, b_bytes)
            for cw in range(2):
              sac = sa + cw*kBox
              for kk in range(4):
                a = desc_read_mnmajor(sm, sac + kk*2048, 64, kBox, 1024) if ta else desc_read_kmajor(sm, sac + kk*32, 64, 1024)
                bb = desc_read_kmajor(sm, sb + kk*32, 256, 1024) if tb else desc_read_mnmajor(sm, sb + kk*2048, 256, kBox, 1024)
                a = np.where(np.isnan(a), 1e30, a); bb = np.where(np.isnan(bb), 1e30, bb)  # stale smem: huge garbage
                accs[cw] += a @ bb.T
          # fragments: per thread (w, lane) d[4j+2h+e] = acc[16w+g+8h, 8j+2q+e]; then epilogue staging
          for cw in range(2):
            acc = accs[cw]
            frag = np.zeros((4, 32, 128))
            for w in range(4):
              for lane in range(32):
                g, q = lane >> 2, lane & 3
                for j in range(32):
                  for h in range(2):
                    for e in range(2):
                      frag[w, lane, 4*j+2*h+e] = acc[16*w+g+8*h, 8*j+2*q+e]
            for c in range(8):
              buf = np.full((64, 40), np.nan)
              for w in range(4):
                for lane in range(32):
                  g, q = lane >> 2, lane & 3
                  for jj in range(4):
                    j = 4*c+jj
                    for h in range(2):
                      buf[w*16+g+8*h, jj*8+2*q:jj*8+2*q+2] = frag[w, lane, 4*j+2*h:4*j+2*h+2]
              for t in range(128):
                n = n0 + 32*c + 2*(t & 15)
                for r in range(t >> 4, 64, 8):
                  m = m0 + cw*64 + r
                  if m < M and n < N:
                    C[b, m, n] = buf[r, 2*(t&15)]
                    if n+1 < N: C[b, m, n+1] = buf[r, 2*(t&15)+1]
    ref = np.zeros((batch, M, N))
    for b in range(batch):
        Ab = A[0 if bca else b][:, :(M if ta else K)]; Bb = B[0 if bcb else b][:, :(K if tb else N)]
        opA = Ab.T if ta else Ab; opB = Bb.T if tb else Bb
        ref[b] = opA @ opB
    err = np.nanmax(np.abs(C - ref)) if not np.isnan(C).any() else float('nan')
    ok = err < 1e-9  # NaN (an output never written) fails too
    print(f"M={M} N={N} K={K} ta={ta} tb={tb} batch={batch} bca={bca} bcb={bcb}: max err {err:.2e}", "OK" if ok else "BAD")
    if not ok:
        failures.append((M, N, K, ta, tb))
for (M,N,K) in [(7,33,7),(130,300,100),(1,1,1),(200,70,65)]:
    for ta in (False, True):
        for tb in (False, True):
            run(M,N,K,ta,tb)
run(70, 40, 30, True, False, batch=2, bcb=True)
run(70, 40, 30, False, True, batch=2, bca=True)
sys.exit(1 if failures else 0)
