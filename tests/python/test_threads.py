"""Ops from several Python threads: results equal sequential runs, kernels release the GIL,
grad mode and autocast are per thread, the default generator hands out disjoint draws, and
backward passes sharing a leaf accumulate every gradient (docs/RELIABILITY.md, Threads)."""
import threading

import numpy as np
import pytest

import bigmodel as bm
from _gil import gil_moves
from conftest import assert_close

N_THREADS = 4


def run_in_threads(fn, args_per_thread):
    """Runs fn(*args) in one thread per entry, all released at once; returns the results
    in order and re-raises the first exception a thread hit."""
    results = [None] * len(args_per_thread)
    errors = []
    start = threading.Barrier(len(args_per_thread))

    def worker(i, args):
        try:
            start.wait()
            results[i] = fn(*args)
        except BaseException as e:  # noqa: BLE001  (re-raised in the caller)
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(args_per_thread)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def workload(a_np, b_np, x_np):
    """Matmul, elementwise, reduction and backward on the thread's own tensors. Sizes pass
    the GIL-release threshold (core/dispatch.h), so the kernels really overlap."""
    a = bm.tensor(a_np, requires_grad=True)
    b = bm.tensor(b_np)
    x = bm.tensor(x_np)
    out = []
    for _ in range(3):
        c = a @ b                      # [160, 192] @ [192, 200]
        y = (c * 0.5 + x).tanh()       # elementwise over 32000 elements
        loss = (y * y).sum()
        loss.backward()
        out = [c.detach().numpy().copy(), y.detach().numpy().copy(), loss.item(), a.grad.numpy().copy()]
    return out


def test_threads_match_sequential(rng):
    inputs = [(rng.standard_normal((160, 192)), rng.standard_normal((192, 200)) * 0.1,
               rng.standard_normal((160, 200))) for _ in range(N_THREADS)]
    expected = [workload(*args) for args in inputs]
    for _ in range(2):
        got = run_in_threads(workload, inputs)
        for g, e in zip(got, expected):
            for actual, ref in zip(g, e):
                np.testing.assert_allclose(actual, ref, rtol=1e-12, atol=1e-12)


def test_float32_elementwise_and_copies_in_threads(rng):
    """Strided copies, broadcasting and reductions (float32) on each thread's own data."""
    arrays = [rng.standard_normal((256, 300)).astype(np.float32) for _ in range(N_THREADS)]

    def work(arr):
        t = bm.tensor(arr)
        u = t.t().contiguous()          # a strided copy
        v = u * bm.tensor(arr[:, 0]) + 1.0  # broadcast over rows of u ([300, 256] * [256])
        return v.sum(1).numpy().copy(), u.numpy().copy()

    got = run_in_threads(work, [(a,) for a in arrays])
    for (s, u), arr in zip(got, arrays):
        ref_u = arr.T
        np.testing.assert_array_equal(u, ref_u)
        assert_close(bm.tensor(s), (ref_u.astype(np.float64) * arr[:, 0] + 1.0).sum(1), atol=1e-3, rtol=1e-5)


def test_kernels_release_the_gil():
    """While one thread is inside a big matmul, another Python thread runs. A huge switch
    interval stops the interpreter from forcing a switch, so the counter can only move
    while the matmul thread has released the GIL itself: with the release turned off it
    never moves (checked too, so this test can fail)."""
    a = bm.tensor(np.random.default_rng(0).standard_normal((400, 400)))
    held, released = gil_moves(lambda: bm.matmul(a, a), 5, 200)
    assert not held, "the counter moved while the GIL was held: the test cannot tell"
    assert released, "no other thread ran during 200 large matmuls: the GIL is not released"


def test_grad_mode_is_per_thread():
    entered, checked = threading.Event(), threading.Event()
    seen = {}

    def other():
        with bm.no_grad():
            seen["other_inside"] = bm.is_grad_enabled()
            entered.set()
            checked.wait(10)
        w = bm.ones(3, requires_grad=True)
        seen["other_records"] = (w * 2).requires_grad

    t = threading.Thread(target=other)
    t.start()
    assert entered.wait(10)
    # The other thread is inside no_grad; this one is not affected.
    main_enabled = bm.is_grad_enabled()
    w = bm.ones(3, requires_grad=True)
    main_records = (w * 2).requires_grad
    checked.set()
    t.join()
    assert seen["other_inside"] is False
    assert main_enabled and main_records
    assert seen["other_records"] is True

    # And the other way round: no_grad here, a new thread starts with grad enabled.
    with bm.no_grad():
        result = run_in_threads(lambda: (bm.is_grad_enabled(),
                                         (bm.ones(2, requires_grad=True) * 3).requires_grad), [()])
        assert not bm.is_grad_enabled()
    assert result == [(True, True)]


def test_autocast_is_per_thread():
    inside = threading.Event()
    done = threading.Event()
    seen = {}

    def other():
        with bm.autocast("cpu", dtype=bm.bfloat16):
            seen["other"] = bm.amp.is_autocast_enabled("cpu")
            inside.set()
            done.wait(10)

    t = threading.Thread(target=other)
    t.start()
    assert inside.wait(10)
    main = bm.amp.is_autocast_enabled("cpu")
    a = bm.ones(4, 4)
    main_dtype = (a @ a).dtype
    done.set()
    t.join()
    assert seen["other"] is True
    assert main is False and main_dtype == bm.float32


def test_default_generator_draws_are_disjoint_across_threads():
    """Each draw reserves its own block of the Philox stream under a lock: threads drawing at
    once get exactly the values sequential draws get, in some order, with no overlap."""
    n, draws = 40000, 3
    bm.manual_seed(1234)
    sequential = [bm.rand(n, dtype=bm.float64).numpy().copy() for _ in range(N_THREADS * draws)]
    bm.manual_seed(1234)
    got = run_in_threads(lambda: [bm.rand(n, dtype=bm.float64).numpy().copy() for _ in range(draws)], [()] * N_THREADS)
    threaded = [d for per_thread in got for d in per_thread]
    key = lambda arr: arr[:4].tobytes()  # noqa: E731
    assert sorted(map(key, threaded)) == sorted(map(key, sequential))
    by_key = {key(s): s for s in sequential}
    for d in threaded:
        np.testing.assert_array_equal(d, by_key[key(d)])
    all_values = np.concatenate(threaded)
    assert len(np.unique(all_values)) == all_values.size  # no block handed out twice (seeded: deterministic)


def test_backward_into_a_shared_leaf_accumulates_every_thread(rng):
    """Threads backpropagating into the same parameter: each gradient lands once."""
    w = bm.tensor(rng.standard_normal((200, 200)), requires_grad=True)
    xs = [rng.standard_normal((200, 200)) for _ in range(N_THREADS)]

    def step(x_np):
        for _ in range(5):
            (w * bm.tensor(x_np)).sum().backward()

    run_in_threads(step, [(x,) for x in xs])
    assert_close(w.grad, 5 * np.sum(xs, axis=0))


def test_errors_in_threads_are_ordinary_exceptions():
    def bad():
        bm.ones(300, 300) @ bm.ones(200, 300)

    with pytest.raises(ValueError, match=r"\[matmul\]"):
        run_in_threads(bad, [()] * 2)
