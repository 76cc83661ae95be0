"""cuda tier: mixed-precision fused optimizer steps on the GPU against the same steps on the CPU:
float16/bfloat16 parameters with float32 state, with and without float32 master weights (SGD,
Adam, AdamW through bm.optim), the fused GradScaler unscale + inf check, and mixed-device
errors. The kernels use round-to-nearest intrinsics in the CPU's order and the same rounding
to half, so parameters, masters and state must match the CPU bit for bit. Skips without a GPU.
(BM_CUDA_TESTS_ON_CPU=1 runs the file with "cuda" mapped to the CPU, to check the tests.)"""
import os

import numpy as np
import pytest

import bigmodel as bm
from bigmodel import _C, nn, optim

_ON_CPU = os.environ.get("BM_CUDA_TESTS_ON_CPU") == "1"
DEV = "cpu" if _ON_CPU else "cuda"
pytestmark = pytest.mark.skipif(not (_ON_CPU or bm.cuda.is_available()),
                                reason="no CUDA GPU visible (bm.cuda.is_available() is False)")

# odd sizes; 40000 spans several 16384-element chunks; (3, 77) has an odd tail per vector step
SIZES = [(1,), (7,), (33,), (1000,), (1023,), (3, 77), (40000,)]
HALF = [bm.bfloat16, bm.float16]


def host_bits(t):
    t = t.detach().cpu()
    return (t.float() if t.dtype in HALF else t).numpy().tobytes()


def assert_bitwise(gpu, cpu, what):
    if host_bits(gpu) != host_bits(cpu):
        a = gpu.detach().cpu().float().numpy().astype(np.float64)
        b = cpu.detach().float().numpy().astype(np.float64)
        raise AssertionError(f"{what}: CUDA differs from CPU (max |diff| {np.max(np.abs(a - b)):.3e})")


def run(cls, init, grads, dtype, device, **kw):
    params = [nn.Parameter(bm.tensor(a).to(dtype=dtype).to(device=device)) for a in init]
    opt = cls(params, **kw)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = None if g is None else bm.tensor(g).to(dtype=dtype).to(device=device)
        opt.step()
    return params, opt


def data(rng, steps, scale=1.0):
    init = [rng.standard_normal(s).astype(np.float32) for s in SIZES]
    grads = []
    for s in range(steps):
        gs = [(scale * rng.standard_normal(a.shape)).astype(np.float32) for a in init]
        if s == 1:
            gs[3] = None  # a parameter without a gradient this step
        grads.append(gs)
    return init, grads


CASES = [
    (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, maximize=True)),
    (optim.Adam, dict(lr=1e-2, weight_decay=0.05)),
    (optim.AdamW, dict(lr=1e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, amsgrad=True)),
]


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("master", [False, True])
@pytest.mark.parametrize("cls,kw", CASES)
def test_half_step_cuda_matches_cpu_bitwise(rng, dtype, master, cls, kw):
    init, grads = data(rng, 4)
    pg, og = run(cls, init, grads, dtype, DEV, master_weights=master, fused=True, **kw)
    pc, oc = run(cls, init, grads, dtype, "cpu", master_weights=master, fused=True, **kw)
    for i, (a, b) in enumerate(zip(pg, pc)):
        assert a.dtype == dtype
        assert_bitwise(a, b, f"{cls.__name__} param {i}")
        sa, sb = og.state[a], oc.state[b]
        assert set(sa) == set(sb) and (("master_param" in sa) == master)
        for k in sa:
            assert str(sa[k].device).startswith(DEV if k != "step" else "cpu")
            assert_bitwise(sa[k], sb[k], f"{cls.__name__} state {k} of param {i}")


@pytest.mark.parametrize("dtype", HALF)
def test_master_copy_is_float32_and_p_its_rounding_on_cuda(rng, dtype):
    init, grads = data(rng, 3, scale=1e-3)
    params, opt = run(optim.AdamW, init, grads, dtype, DEV, lr=1e-4, master_weights=True)
    for p in params:
        m = opt.state[p]["master_param"]
        assert m.dtype == bm.float32 and str(m.device).startswith(DEV)
        assert host_bits(m.to(dtype=dtype)) == host_bits(p)


@pytest.mark.parametrize("dtype", [bm.float32, bm.bfloat16, bm.float16])
def test_fused_unscale_cuda_matches_cpu(rng, dtype):
    gc = [bm.tensor(rng.standard_normal(s).astype(np.float32) * 1024).to(dtype=dtype) for s in SIZES]
    gg = [g.to(device=DEV) for g in gc]
    fc, fg = bm.zeros([1]), bm.zeros([1]).to(device=DEV)
    _C._fused_unscale_(gc, fc, bm.full([1], 1 / 1024))
    _C._fused_unscale_(gg, fg, bm.full([1], 1 / 1024).to(device=DEV))
    assert float(fg.item()) == 0.0 == float(fc.item())
    for i, (a, b) in enumerate(zip(gg, gc)):
        assert_bitwise(a, b, f"unscaled grad {i}")
    gg[6][39999] = float("inf")  # the very last element of the last chunk
    _C._fused_unscale_(gg, fg, bm.full([1], 1.0).to(device=DEV))
    assert float(fg.item()) == 1.0


def test_grad_scaler_skips_on_inf_on_cuda(rng):
    init, _ = data(rng, 0)
    params = [nn.Parameter(bm.tensor(a).to(dtype=bm.float16).to(device=DEV)) for a in init[:3]]
    opt = optim.AdamW(params, lr=1e-2, master_weights=True)
    scaler = bm.amp.GradScaler(DEV, init_scale=256.0)
    for p in params:
        p.grad = bm.full(list(p.shape), 64.0, dtype=bm.float16).to(device=DEV)
    scaler.step(opt)
    scaler.update()
    before = [host_bits(p) for p in params] + [host_bits(opt.state[p]["master_param"]) for p in params]
    for p in params:
        p.grad = bm.full(list(p.shape), 64.0, dtype=bm.float16).to(device=DEV)
    params[2].grad[0] = float("nan")
    assert scaler.step(opt) is None
    scaler.update()
    assert scaler.get_scale() == 128.0
    assert [host_bits(p) for p in params] + [host_bits(opt.state[p]["master_param"]) for p in params] == before


@pytest.mark.skipif(_ON_CPU, reason="needs a real second device")
def test_mixed_devices_raise_naming_the_op():
    p = [bm.ones(3, dtype=bm.bfloat16).to(device=DEV)]
    with pytest.raises(RuntimeError, match=r"\[fused_adam_\] expected every tensor on cuda.*grads\[0\] on cpu"):
        _C._fused_adam_(p, [bm.ones(3, dtype=bm.bfloat16)], [bm.zeros(3).to(device=DEV)],
                        [bm.zeros(3).to(device=DEV)], [], [bm.zeros([])], lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8)
    with pytest.raises(RuntimeError, match=r"\[fused_sgd_\] expected every tensor on cuda.*master_params\[0\] on cpu"):
        _C._fused_sgd_(p, [bm.ones(3, dtype=bm.bfloat16).to(device=DEV)], [], lr=0.1, master_params=[bm.ones(3)])
    with pytest.raises(RuntimeError, match=r"\[fused_unscale_\] found_inf and inv_scale are on cpu"):
        _C._fused_unscale_([bm.ones(3).to(device=DEV)], bm.zeros([1]), bm.ones(1))
