"""Bad input from Python never crashes the interpreter: each mistake raises the matching
Python exception, and the message starts with the op's name."""
import numpy as np
import pytest

import bigmodel as bm


def _t(*shape, dtype=bm.float32):
    return bm.tensor(np.arange(1, int(np.prod(shape)) + 1, dtype=np.float64).reshape(shape), dtype=dtype)


CASES = [
    # (description, thunk, exception, op name expected in the message)
    ("add shapes", lambda: _t(2, 3) + _t(4), ValueError, "add"),
    ("mul shapes", lambda: _t(2, 3) * _t(2, 2), ValueError, "mul"),
    ("matmul inner dims", lambda: _t(2, 3) @ _t(4, 5), ValueError, "matmul"),
    ("matmul 0-d", lambda: bm.matmul(bm.tensor(1.0), _t(2)), ValueError, "matmul"),
    ("matmul bool", lambda: _t(2, 2, dtype=bm.bool) @ _t(2, 2, dtype=bm.bool), TypeError, "matmul"),
    ("view bad numel", lambda: _t(2, 3).view(4, 2), ValueError, "view"),
    ("reshape two -1", lambda: _t(2, 3).reshape(-1, -1), ValueError, "reshape"),
    ("permute dims", lambda: _t(2, 3).permute(0, 0), ValueError, "permute"),
    ("transpose dim", lambda: _t(2, 3).transpose(0, 2), IndexError, "transpose"),
    ("sum dim", lambda: _t(2, 3).sum(dim=3), IndexError, "sum"),
    ("mean of ints", lambda: _t(2, dtype=bm.int64).mean(), TypeError, "mean"),
    ("softmax dim", lambda: bm.softmax(_t(2, 3), dim=2), IndexError, "softmax"),
    ("cat shapes", lambda: bm.cat([_t(2, 3), _t(2, 4)], dim=0), ValueError, "cat"),
    ("cat empty", lambda: bm.cat([]), ValueError, "cat"),
    ("index out of range", lambda: _t(3)[5], IndexError, "index"),
    ("too many indices", lambda: _t(3)[0, 0], IndexError, "index"),
    ("gather index dtype", lambda: bm.gather(_t(2, 3), 1, _t(2, 3)), TypeError, "gather"),
    ("embedding out of range", lambda: bm.embedding(bm.tensor([0, 7]), _t(5, 2)), IndexError, "embedding"),
    ("cross_entropy target range", lambda: bm.cross_entropy(_t(2, 3), bm.tensor([0, 3])), IndexError, "cross_entropy"),
    ("cross_entropy target shape", lambda: bm.cross_entropy(_t(2, 3), bm.tensor([0, 1, 2])), ValueError, "cross_entropy"),
    ("negative size", lambda: bm.zeros(2, -3), ValueError, "zeros"),
    ("huge size", lambda: bm.zeros(1 << 40, 1 << 40), ValueError, ""),
    ("arange step 0", lambda: bm.arange(0, 5, 0), ValueError, "arange"),
    ("randint empty range", lambda: bm.randint(5, 5, (2,)), ValueError, "randint"),
    ("requires_grad int", lambda: _t(2, dtype=bm.int64).requires_grad_(), TypeError, "requires_grad"),
    ("item of many", lambda: _t(3).item(), ValueError, "item"),
    ("bad device", lambda: _t(2).to("tpu"), ValueError, "device"),
    ("cuda without gpu", lambda: _t(2).to("cuda") if not bm.cuda.is_available() else (_ for _ in ()).throw(
        RuntimeError("[to] skipped: a GPU is present")), RuntimeError, ""),
    ("backward non-scalar", lambda: (_t(3).requires_grad_() * 2).backward(), RuntimeError, "backward"),
    ("backward no grad", lambda: _t(3).sum().backward(), RuntimeError, "backward"),
    ("tensor ragged", lambda: bm.tensor([[1, 2], [3]]), ValueError, "tensor"),
    ("tensor strings", lambda: bm.tensor(["a"]), TypeError, "tensor"),
    ("bool of many", lambda: bool(_t(3)), RuntimeError, "bool"),
    ("len of 0-d", lambda: len(bm.tensor(1.0)), TypeError, "len"),
]


@pytest.mark.parametrize("desc,thunk,exc,op", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises(desc, thunk, exc, op):
    with pytest.raises(exc) as info:
        thunk()
    if op:
        assert f"[{op}" in str(info.value), str(info.value)


def test_failed_op_leaves_inputs_intact():
    a = _t(2, 3)
    before = a.numpy().copy()
    with pytest.raises(ValueError):
        a.add_(_t(4))
    np.testing.assert_array_equal(a.numpy(), before)
    assert a._version == 0
