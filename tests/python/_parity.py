"""Runs one small program on torch and on bigmodel and compares what comes out (the helper of
tests/python/test_parity_*.py). A case is a function of the library module (`lib` is torch or
bm); both see the same NumPy inputs, and their results are compared structurally: tensors by
dtype name, shape and values; namedtuples, tuples, lists, dicts item by item; exceptions by
type (bigmodel's must be an instance of the type torch raised)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import bigmodel as bm  # noqa: E402


def _dtype_name(dt):
    return str(dt).split(".")[-1]


def canon(x):
    """A library-neutral form of a result: tensors become ('tensor', dtype, shape, array)."""
    if isinstance(x, (torch.Tensor, bm.Tensor)):
        t = x.detach().cpu()
        arr = t.float().numpy() if _dtype_name(t.dtype) == "bfloat16" else t.numpy()
        return ("tensor", _dtype_name(t.dtype), tuple(t.shape), np.array(arr, copy=True))
    if isinstance(x, (torch.dtype, bm.dtype)):
        return ("dtype", _dtype_name(x))
    if isinstance(x, (torch.device, bm.device)):
        return ("device", str(x))
    if isinstance(x, (torch.Size,)):
        return tuple(x)
    if isinstance(x, dict):
        return {k: canon(v) for k, v in x.items()}
    if isinstance(x, tuple) and type(x).__module__.endswith("return_types"):  # max(dim), sort, topk, ...
        return ("return_types", type(x).__name__, tuple(canon(v) for v in x),
                canon(x.values) if hasattr(x, "values") else None)
    if isinstance(x, (list, tuple)):
        return type(x)(canon(v) for v in x)
    if isinstance(x, np.ndarray):
        return ("ndarray", x.dtype.str, x.shape, x)
    return x


def compare(a, b, atol, rtol, values=True, path="result"):
    if isinstance(a, tuple) and len(a) == 4 and a[0] == "tensor":
        assert isinstance(b, tuple) and len(b) == 4 and b[0] == "tensor", f"{path}: torch gave a tensor, bm gave {b!r}"
        assert a[1] == b[1], f"{path}: dtype torch={a[1]} bm={b[1]}"
        assert a[2] == b[2], f"{path}: shape torch={a[2]} bm={b[2]}"
        if values:
            if a[1] == "bool" or a[1].startswith("int"):
                np.testing.assert_array_equal(b[3], a[3], err_msg=path)
            else:
                np.testing.assert_allclose(b[3].astype(np.float64), a[3].astype(np.float64), atol=atol, rtol=rtol,
                                           err_msg=path, equal_nan=True)
        return
    if isinstance(a, tuple) and len(a) == 4 and a[0] == "ndarray":
        assert isinstance(b, tuple) and len(b) == 4 and b[0] == "ndarray", f"{path}: torch gave an ndarray, bm {b!r}"
        assert a[1:3] == b[1:3], f"{path}: ndarray dtype/shape torch={a[1:3]} bm={b[1:3]}"
        np.testing.assert_allclose(b[3], a[3], atol=atol, rtol=rtol, err_msg=path)
        return
    if isinstance(a, dict):
        assert isinstance(b, dict), f"{path}: torch gave a dict, bm gave {type(b).__name__}"
        assert list(a.keys()) == list(b.keys()), f"{path}: keys torch={list(a)} bm={list(b)}"
        for k in a:
            compare(a[k], b[k], atol, rtol, values, f"{path}[{k!r}]")
        return
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)), f"{path}: torch gave {type(a).__name__}, bm gave {type(b).__name__}"
        assert type(a) is type(b) or not (isinstance(a, list) or isinstance(b, list)), \
            f"{path}: torch gave {type(a).__name__}, bm gave {type(b).__name__}"
        assert len(a) == len(b), f"{path}: length torch={len(a)} bm={len(b)}"
        for i, (u, v) in enumerate(zip(a, b)):
            compare(u, v, atol, rtol, values, f"{path}[{i}]")
        return
    if isinstance(a, float) and values:
        assert isinstance(b, float), f"{path}: torch gave float {a}, bm gave {type(b).__name__} {b!r}"
        assert abs(a - b) <= atol + rtol * abs(a) or (a != a and b != b), f"{path}: torch={a} bm={b}"
        return
    if not values and isinstance(a, (int, float)) and not isinstance(a, bool):
        assert type(a) is type(b), f"{path}: torch gave {type(a).__name__}, bm gave {type(b).__name__}"
        return
    assert type(a) is type(b) and a == b, f"{path}: torch={a!r} bm={b!r}"


def run(fn, lib):
    try:
        return "ok", canon(fn(lib))
    except Exception as e:  # noqa: BLE001  (the exception's type is the result)
        return "err", e


def check(fn, atol=1e-6, rtol=1e-5, values=True):
    """fn(lib) on torch and on bm: equal results, or the same kind of exception."""
    tk, tr = run(fn, torch)
    bk, br = run(fn, bm)
    if tk == "err":
        assert bk == "err", f"torch raised {type(tr).__name__}: {tr}; bm returned {br!r}"
        want = type(tr)
        while want.__module__.split(".")[0] == "torch":  # torch's own classes: their builtin base
            want = want.__base__
        assert isinstance(br, want), \
            f"torch raised {type(tr).__name__}, bm raised {type(br).__name__}: {br}"
        return
    if bk == "err":
        raise AssertionError(f"bm raised {type(br).__name__}: {br}") from br
    compare(tr, br, atol, rtol, values)


def cases(*fns):
    """Parametrises a test over named case functions (ids are the function names)."""
    params = []
    for f in fns:
        marks = getattr(f, "_parity_marks", ())
        params.append(pytest.param(f, id=f.__name__.lstrip("_"), marks=marks))
    return pytest.mark.parametrize("case", params)


def xfail(reason):
    """Marks a case as a known, deliberate difference (strict: it must keep failing)."""
    def deco(f):
        f._parity_marks = (pytest.mark.xfail(strict=True, reason=reason),)
        return f
    return deco


def data_mod(lib):
    """torch.utils.data or its bigmodel counterpart."""
    return lib.utils.data
