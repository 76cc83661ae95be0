"""cuda tier: F.linear (bias in the GEMM epilogue) and F._linear_act (bias + relu / gelu /
gelu_tanh, with the pre-activation as the GEMM's aux output for the backward) on the GPU
against the same ops on the CPU: every float dtype, both GEMM backends (ours, cuBLASLt), odd
sizes, 3-D and non-contiguous inputs, forward and gradients; and the GPT MLP on the GPU.
Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from bigmodel.nn import functional as F
from _cuda import host64, requires_cuda

pytestmark = requires_cuda

ACTS = ["none", "relu", "gelu", "gelu_tanh"]
DTYPES = [bm.float32, bm.float64, bm.float16, bm.bfloat16]
# Relative to the output's scale (~sqrt(in_features)): float32 accumulation order, the output rounding.
TOL = {bm.float32: 2e-5, bm.float64: 1e-12, bm.float16: 2e-3, bm.bfloat16: 1.6e-2}


@pytest.fixture(params=["ours", "cublas"])
def backend(request):
    before = bm.backends.gemm
    bm.backends.gemm = request.param
    yield request.param
    bm.backends.gemm = before


def check_close(gpu, cpu, dtype, scale, what):
    a, b = host64(gpu), host64(cpu)
    assert a.shape == b.shape, what
    tol = TOL[dtype] * scale
    err = np.max(np.abs(a - b)) if a.size else 0.0
    assert err <= tol, f"{what}: max |CUDA - CPU| = {err:.3e} > {tol:.3e}"


def run_both(fn, arrays, dtype, make_view=None, grad=True, seed=0):
    """fn on CPU tensors and on CUDA tensors of `dtype` (optionally as views), with backward."""
    outs = []
    for dev in ("cpu", "cuda"):
        leaves = [bm.tensor(a).to(dtype) for a in arrays]
        leaves = [t.cuda() if dev == "cuda" else t for t in leaves]
        for t in leaves:
            t.requires_grad_(grad)
        args = make_view(leaves) if make_view else leaves
        y = fn(*args)
        if grad:
            g = bm.tensor(np.random.default_rng(seed).standard_normal(y.shape)).to(dtype)
            y.backward(g.cuda() if dev == "cuda" else g)
        outs.append((y, [t.grad for t in leaves]))
    return outs


SHAPES = [((7, 13), (9, 13)), ((1, 1), (1, 1)), ((33, 130), (257, 130)), ((2, 64, 128), (256, 128)),
          ((3, 5, 24), (40, 24))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("xs,ws", SHAPES)
def test_linear_act_cuda_matches_cpu(rng, backend, dtype, act, xs, ws):
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])]
    (yc, gc), (yg, gg) = run_both(lambda x, w, b: F._linear_act(x, w, b, act), arrays, dtype)
    scale = 1 + np.sqrt(xs[-1])
    check_close(yg, yc, dtype, scale, "forward")
    rows = int(np.prod(xs[:-1]))
    for name, a, b, s in zip(["input", "weight", "bias"], gg, gc, [scale * np.sqrt(ws[0]), scale * np.sqrt(rows),
                                                                    scale * np.sqrt(rows)]):
        check_close(a, b, dtype, s, f"grad {name}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_bias_cuda_matches_cpu(rng, backend, dtype):
    arrays = [rng.standard_normal((4, 6, 33)), rng.standard_normal((17, 33)), rng.standard_normal(17)]
    (yc, gc), (yg, gg) = run_both(F.linear, arrays, dtype)
    check_close(yg, yc, dtype, 7, "forward")
    for a, b in zip(gg, gc):
        check_close(a, b, dtype, 40, "grad")


@pytest.mark.parametrize("act", ACTS)
def test_noncontiguous_inputs_cuda(rng, backend, act):
    # x: a transposed 3-D view (leading dims do not fold: the composed path); w: the transpose
    # of an [in, out] tensor (no copy: trans_b false); b: a strided slice.
    arrays = [rng.standard_normal((5, 4, 24)), rng.standard_normal((24, 40)), rng.standard_normal(80)]

    def views(ts):
        return [ts[0].transpose(0, 1), ts[1].transpose(0, 1), ts[2][::2]]

    (yc, gc), (yg, gg) = run_both(lambda x, w, b: F._linear_act(x, w, b, act), arrays, bm.float32, views)
    check_close(yg, yc, bm.float32, 6, "forward")
    for a, b in zip(gg, gc):
        check_close(a, b, bm.float32, 40, "grad")
    # A 2-D transposed input goes to the GEMM in place (trans_a).
    arrays2 = [rng.standard_normal((24, 7)), rng.standard_normal((40, 24)), rng.standard_normal(40)]
    (yc, _), (yg, _) = run_both(lambda x, w, b: F._linear_act(x.transpose(0, 1), w, b, act), arrays2, bm.float32)
    check_close(yg, yc, bm.float32, 6, "forward (transposed input)")


def test_inference_needs_no_grad_and_no_aux(rng, backend):
    # Under no_grad the GELU path writes no aux; the result is the same.
    x = bm.tensor(rng.standard_normal((9, 40)).astype(np.float32)).cuda()
    w = bm.tensor(rng.standard_normal((24, 40)).astype(np.float32)).cuda()
    b = bm.tensor(rng.standard_normal(24).astype(np.float32)).cuda()
    with bm.no_grad():
        y0 = F._linear_act(x, w, b, "gelu")
    w.requires_grad_(True)
    y1 = F._linear_act(x, w, b, "gelu")
    assert y1.requires_grad and not y0.requires_grad
    check_close(y0, y1, bm.float32, 1, "no_grad vs grad")


def test_gpt_mlp_cuda_matches_cpu(rng, backend):
    from bigmodel.models.gpt import GPTConfig, MLP
    bm.manual_seed(0)
    mlp = MLP(GPTConfig(n_embd=64, n_head=2, n_layer=1, block_size=8, vocab_size=32, dropout=0.0))
    x = rng.standard_normal((2, 7, 64)).astype(np.float32)
    yc = mlp(bm.tensor(x))
    mlp.cuda()
    yg = mlp(bm.tensor(x).cuda())
    check_close(yg, yc, bm.float32, 10, "GPT MLP forward")
