"""cuda tier: the fused optimizer ops (SGD, Adam/AdamW, norm, scale), the LSTM/GRU cell kernels
and the int8 kernels on the GPU against the same ops on the CPU. The fused optimizer kernels
use round-to-nearest intrinsics in the CPU's order, so they must match the CPU bit for bit.
Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from bigmodel import _C, nn, optim
from bigmodel.nn.utils import clip_grad_norm_
from _cuda import host, requires_cuda

pytestmark = requires_cuda

SIZES = [(1,), (7,), (33,), (1000,), (1023,), (3, 77), (40000,)]  # 40000: several 16384-element chunks
TOL = {bm.float32: (1e-6, 1e-5), bm.float64: (1e-12, 1e-12), bm.float16: (1e-3, 1e-3), bm.bfloat16: (1e-2, 1e-2)}


def assert_bitwise(gpu, cpu, what):
    a, b = host(gpu), host(cpu)
    if a.tobytes() != b.tobytes():
        diff = np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))
        raise AssertionError(f"{what}: CUDA differs from CPU (max |diff| {diff:.3e})")


def rand_list(rng, dtype, sizes=SIZES, scale=1.0):
    return [bm.tensor(rng.standard_normal(s) * scale).to(dtype) for s in sizes]


def to_gpu(ts):
    return [t.cuda() for t in ts]


# ------------------------------------------------------------------ fused optimizer ops
@pytest.mark.parametrize("dtype", [bm.float32, bm.float64])
@pytest.mark.parametrize("cfg", [dict(momentum=0.0), dict(momentum=0.9, weight_decay=0.01),
                                 dict(momentum=0.9, nesterov=True, maximize=True),
                                 dict(momentum=0.7, dampening=0.2, weight_decay=0.1)])
def test_fused_sgd_cuda_equals_cpu(rng, dtype, cfg):
    p_cpu = rand_list(rng, dtype)
    p_gpu = to_gpu(p_cpu)
    bufs_cpu = [None] * len(p_cpu)
    bufs_gpu = [None] * len(p_cpu)
    for _ in range(3):
        g = rand_list(rng, dtype)
        bufs_cpu = _C._fused_sgd_(p_cpu, g, bufs_cpu if cfg["momentum"] else [], lr=0.05, **cfg) or bufs_cpu
        bufs_gpu = _C._fused_sgd_(p_gpu, to_gpu(g), bufs_gpu if cfg["momentum"] else [], lr=0.05, **cfg) or bufs_gpu
    for i, (a, b) in enumerate(zip(p_gpu, p_cpu)):
        assert a.is_cuda
        assert_bitwise(a, b, f"param {i}")
    if cfg["momentum"]:
        for i, (a, b) in enumerate(zip(bufs_gpu, bufs_cpu)):
            assert_bitwise(a, b, f"momentum buffer {i}")


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64])
@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_fused_adam_cuda_equals_cpu(rng, dtype, decoupled, amsgrad):
    p_cpu = rand_list(rng, dtype)
    zeros = lambda: [bm.zeros(t.shape, dtype=dtype) for t in p_cpu]  # noqa: E731
    m_cpu, v_cpu, vm_cpu = zeros(), zeros(), zeros() if amsgrad else []
    steps_cpu = [bm.zeros([]) for _ in p_cpu]
    p_gpu, m_gpu, v_gpu, vm_gpu = to_gpu(p_cpu), to_gpu(m_cpu), to_gpu(v_cpu), to_gpu(vm_cpu)
    steps_gpu = [bm.zeros([]) for _ in p_cpu]
    kw = dict(lr=3e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.05, amsgrad=amsgrad, decoupled=decoupled)
    for s in range(3):
        g = rand_list(rng, dtype)
        _C._fused_adam_(p_cpu, g, m_cpu, v_cpu, vm_cpu, steps_cpu, maximize=s == 1, **kw)
        _C._fused_adam_(p_gpu, to_gpu(g), m_gpu, v_gpu, vm_gpu, steps_gpu, maximize=s == 1, **kw)
    for name, gl, cl in [("param", p_gpu, p_cpu), ("exp_avg", m_gpu, m_cpu), ("exp_avg_sq", v_gpu, v_cpu),
                         ("max_exp_avg_sq", vm_gpu, vm_cpu)]:
        for i, (a, b) in enumerate(zip(gl, cl)):
            assert_bitwise(a, b, f"{name} {i}")
    assert [float(s.item()) for s in steps_gpu] == [3.0] * len(p_cpu)


def test_fused_adam_cuda_unaligned_views(rng):
    """Tensors whose data starts off a 16-byte boundary take the scalar path of the kernel."""
    base = bm.tensor(rng.standard_normal(1001).astype(np.float32))
    # clone(): contiguous() of a contiguous slice is the same view, and overlapping CPU params
    # would be updated twice.
    p_cpu = [base[1:1001].clone(), base[3:8].clone()]
    p_gpu = [base.cuda()[1:1001], base.cuda()[3:8]]  # contiguous views at offsets 4 and 12 bytes
    g = [bm.tensor(rng.standard_normal(1000).astype(np.float32)), bm.tensor(rng.standard_normal(5).astype(np.float32))]
    g_gpu = [bm.zeros(1001).cuda()[1:1001], bm.zeros(8).cuda()[3:8]]
    for a, b in zip(g_gpu, g):
        a.copy_(b.cuda())
    mk = lambda ts: [bm.zeros(t.shape) for t in ts]  # noqa: E731
    m, v = mk(p_cpu), mk(p_cpu)
    mg, vg = to_gpu(m), to_gpu(v)
    kw = dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8)
    _C._fused_adam_(p_cpu, g, m, v, [], [bm.zeros([]), bm.zeros([])], **kw)
    _C._fused_adam_(p_gpu, g_gpu, mg, vg, [], [bm.zeros([]), bm.zeros([])], **kw)
    for a, b in zip(p_gpu, p_cpu):
        assert_bitwise(a, b, "unaligned param")


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.float16, bm.bfloat16])
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, float("inf")])
def test_fused_norm_cuda_equals_cpu(rng, dtype, p):
    ts = rand_list(rng, dtype)
    got, want = _C._fused_norm(to_gpu(ts), p), _C._fused_norm(ts, p)
    assert got.is_cuda and got.dtype == dtype and got.dim() == 0
    atol, rtol = TOL[dtype]
    np.testing.assert_allclose(host(got), host(want), rtol=max(rtol, 1e-6), atol=0)


def test_fused_norm_cuda_nan_and_empty(rng):
    a = rng.standard_normal(50000).astype(np.float32)
    a[33333] = np.nan
    for p in (2.0, float("inf"), 1.0):
        assert np.isnan(float(_C._fused_norm([bm.ones(3).cuda(), bm.tensor(a).cuda()], p).item()))
    assert float(_C._fused_norm([bm.zeros(0).cuda()]).item()) == 0.0


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.float16, bm.bfloat16])
def test_fused_mul_cuda_equals_cpu(rng, dtype):
    ts = rand_list(rng, dtype)
    tg = to_gpu(ts)
    scale = bm.tensor(np.float32(0.3711)).reshape(())
    _C._fused_mul_(ts, scale)
    _C._fused_mul_(tg, scale.cuda())
    for i, (a, b) in enumerate(zip(tg, ts)):
        assert_bitwise(a, b, f"tensor {i}")


@pytest.mark.parametrize("cls,kw", [(optim.AdamW, dict(lr=1e-2, weight_decay=0.1)),
                                    (optim.Adam, dict(lr=1e-2, amsgrad=True)),
                                    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True))])
def test_optimizers_on_cuda_params_equal_cpu(rng, cls, kw):
    init = [rng.standard_normal(s).astype(np.float32) for s in SIZES]
    pc = [nn.Parameter(bm.tensor(a)) for a in init]
    pg = [nn.Parameter(bm.tensor(a).cuda()) for a in init]
    oc, og = cls(pc, **kw), cls(pg, **kw)
    for _ in range(3):
        for a, b in zip(pc, pg):
            g = bm.tensor(rng.standard_normal(a.shape).astype(np.float32))
            a.grad, b.grad = g, g.cuda()
        clip_grad_norm_(pc, 5.0)
        clip_grad_norm_(pg, 5.0)
        oc.step()
        og.step()
    for i, (a, b) in enumerate(zip(pg, pc)):
        assert a.is_cuda
        # The two fused norms sum in different orders, so the clip factor may differ in the last bit.
        np.testing.assert_allclose(host(a.detach()), host(b.detach()), rtol=1e-5, atol=1e-6, err_msg=f"param {i}")


# ------------------------------------------------------------------ LSTM / GRU cells
CELL_SIZES = [(1, 1), (1, 7), (3, 33), (2, 1023), (5, 64)]


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.float16, bm.bfloat16])
@pytest.mark.parametrize("B,H", CELL_SIZES)
def test_lstm_cell_cuda_equals_cpu(rng, dtype, B, H):
    gates = bm.tensor(rng.standard_normal((B, 4 * H)) * 2).to(dtype)
    c_prev = bm.tensor(rng.standard_normal((B, H))).to(dtype)
    gh = bm.tensor(rng.standard_normal((B, H))).to(dtype)
    gc = bm.tensor(rng.standard_normal((B, H))).to(dtype)
    results = []
    for dev in ("cpu", "cuda"):
        g = gates.to(dev).detach().requires_grad_(True)
        c0 = c_prev.to(dev).detach().requires_grad_(True)
        h, c = bm.lstm_cell_pointwise(g, c0)
        _C._run_backward([h, c], [gh.to(dev), gc.to(dev)], False)
        results.append((h, c, g.grad, c0.grad))
    atol, rtol = TOL[dtype]
    for name, a, b in zip(("h", "c", "grad_gates", "grad_c_prev"), results[1], results[0]):
        assert a.is_cuda
        np.testing.assert_allclose(host(a.detach()), host(b.detach()), atol=atol * 4, rtol=rtol * 4, err_msg=name)


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.float16, bm.bfloat16])
@pytest.mark.parametrize("B,H", CELL_SIZES)
def test_gru_cell_cuda_equals_cpu(rng, dtype, B, H):
    gi = bm.tensor(rng.standard_normal((B, 3 * H)) * 2).to(dtype)
    ghh = bm.tensor(rng.standard_normal((B, 3 * H)) * 2).to(dtype)
    h_prev = bm.tensor(rng.standard_normal((B, H))).to(dtype)
    grad_h = bm.tensor(rng.standard_normal((B, H))).to(dtype)
    results = []
    for dev in ("cpu", "cuda"):
        a = gi.to(dev).detach().requires_grad_(True)
        b = ghh.to(dev).detach().requires_grad_(True)
        hp = h_prev.to(dev).detach().requires_grad_(True)
        h = bm.gru_cell_pointwise(a, b, hp)
        _C._run_backward([h], [grad_h.to(dev)], False)
        results.append((h, a.grad, b.grad, hp.grad))
    atol, rtol = TOL[dtype]
    for name, x, y in zip(("h", "grad_gi", "grad_gh", "grad_h_prev"), results[1], results[0]):
        np.testing.assert_allclose(host(x.detach()), host(y.detach()), atol=atol * 4, rtol=rtol * 4, err_msg=name)


def test_lstm_and_gru_layers_on_cuda(rng):
    """nn.LSTM / nn.GRU forward + backward on CUDA against the CPU (needs the rest of the ops on CUDA)."""
    for cls in (nn.LSTM, nn.GRU):
        bm.manual_seed(0)
        cpu = cls(5, 7, num_layers=2)
        x = bm.tensor(rng.standard_normal((4, 3, 5)).astype(np.float32))
        try:
            gpu = cls(5, 7, num_layers=2).cuda() if hasattr(cls, "cuda") else None
        except Exception as e:  # noqa: BLE001
            pytest.skip(f"{cls.__name__}.cuda() unavailable: {e}")
        if gpu is None:
            pytest.skip("Module.cuda() is not there")
        gpu.load_state_dict({k: v.cuda() for k, v in cpu.state_dict().items()})
        try:
            out_g, _ = gpu(x.cuda())
        except Exception as e:  # noqa: BLE001
            if "no kernel for device cuda" in str(e):
                pytest.skip(f"an op nn.{cls.__name__} uses has no CUDA kernel yet: {e}")
            raise
        out_c, _ = cpu(x)
        np.testing.assert_allclose(host(out_g.detach()), host(out_c.detach()), atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------ int8
@pytest.mark.parametrize("R,K", [(1, 1), (1, 7), (3, 33), (5, 1000), (2, 1023), (9, 64)])
@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.float16, bm.bfloat16])
def test_quantize_dequantize_cuda_equals_cpu(rng, R, K, dtype):
    x = bm.tensor(rng.standard_normal((R, K)) * 3).to(dtype)
    for scale in (bm.tensor(np.abs(rng.standard_normal(R)).astype(np.float32) / 40 + 1e-3), bm.tensor([0.025])):
        q_cpu = _C._quantize_int8(x, scale)
        q_gpu = _C._quantize_int8(x.cuda(), scale.cuda())
        assert q_gpu.is_cuda and np.array_equal(host(q_gpu), host(q_cpu))
        d_cpu = _C._dequantize_int8(q_cpu, K, scale)
        d_gpu = _C._dequantize_int8(q_gpu, K, scale.cuda())
        assert_bitwise(d_gpu, d_cpu, "dequantize")


def test_quantize_cuda_noncontiguous_and_nan(rng):
    a = (rng.standard_normal((40, 9)) * 3).astype(np.float32)
    a[3, 4] = np.nan
    a[5, 5] = 1e9
    x = bm.tensor(a).transpose(0, 1)  # [9, 40], strides (1, 9)
    s = bm.tensor([0.05])
    assert np.array_equal(host(_C._quantize_int8(x.cuda(), s.cuda())), host(_C._quantize_int8(x, s)))


@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (3, 5, 7), (7, 9, 33), (64, 48, 64), (33, 17, 1000), (16, 16, 0)])
def test_int8_gemm_cuda_equals_cpu(rng, M, N, K):
    w = max(K, 1)
    a = bm.tensor(rng.standard_normal((M, w)).astype(np.float32))[:, :K] if K else bm.zeros(M, 0)
    b = bm.tensor(rng.standard_normal((N, w)).astype(np.float32))[:, :K] if K else bm.zeros(N, 0)
    sa, sb = bm.tensor(np.full(M, 0.02, np.float32)), bm.tensor(np.abs(rng.standard_normal(N)).astype(np.float32) / 50)
    qa, qb = _C._quantize_int8(a.contiguous(), sa), _C._quantize_int8(b.contiguous(), sb)
    acc_cpu = _C._int8_gemm(qa, qb, K)
    acc_gpu = _C._int8_gemm(qa.cuda(), qb.cuda(), K)
    assert np.array_equal(host(acc_gpu), host(acc_cpu))
    bias = bm.tensor(rng.standard_normal(N).astype(np.float32))
    y_cpu = _C._int8_gemm(qa, qb, K, sa, sb, bias)
    y_gpu = _C._int8_gemm(qa.cuda(), qb.cuda(), K, sa.cuda(), sb.cuda(), bias.cuda())
    assert_bitwise(y_gpu, y_cpu, "int8 gemm epilogue")


def test_quantized_linear_and_conv_cuda_equal_cpu(rng):
    x = bm.tensor(rng.standard_normal((6, 40)).astype(np.float32))
    w = bm.tensor(rng.standard_normal((12, 40)).astype(np.float32))
    ws = bm.tensor(np.abs(rng.standard_normal(12)).astype(np.float32) / 40)
    wq = _C._quantize_int8(w, ws)
    xs = bm.tensor([0.03])
    bias = bm.tensor(rng.standard_normal(12).astype(np.float32))
    y_cpu = _C._quantized_linear(x, wq, 40, ws, xs, bias)
    y_gpu = _C._quantized_linear(x.cuda(), wq.cuda(), 40, ws.cuda(), xs.cuda(), bias.cuda())
    assert_bitwise(y_gpu, y_cpu, "quantized_linear")
    inp = bm.tensor(rng.standard_normal((2, 3, 9, 11)).astype(np.float32))
    wc = bm.tensor(rng.standard_normal((5, 3, 3, 2)).astype(np.float32))
    wcs = bm.tensor(np.full(5, 0.02, np.float32))
    wcq = _C._quantize_int8(wc.reshape(5, -1), wcs)
    for stride, padding, dilation in [((1, 1), (0, 0), (1, 1)), ((2, 1), (1, 2), (2, 1))]:
        args = ([5, 3, 3, 2], wcs, xs, None, list(stride), list(padding), list(dilation))
        y_cpu = _C._quantized_conv2d(inp, wcq, *args)
        y_gpu = _C._quantized_conv2d(inp.cuda(), wcq.cuda(), args[0], wcs.cuda(), xs.cuda(), None, *args[4:])
        assert_bitwise(y_gpu, y_cpu, f"quantized_conv2d stride={stride} padding={padding} dilation={dilation}")
