"""Shared timing for the GPU benches: the median of CUDA-event-timed runs after warm-up,
with a fixed repeat count or one sized to a time budget per case; plus the helpers every
GPU bench uses for its peers (PyTorch on CUDA, cuBLAS, cuDNN) and for smoke runs.

Smoke runs (--smoke on every bench/bench_*_cuda.py, scripts/cuda_emu_benches.sh) use tiny
sizes and one or two repeats so the whole bench runs on the CUDA-on-CPU emulation build: they
check the bench script (arguments, API calls, peer fallbacks), never its numbers."""
import statistics

SMOKE = False  # set by smoke_mode(): caps repeats and warm-ups (sizes are each bench's business)


def smoke_mode(on=True):
    global SMOKE
    SMOKE = bool(on)


def _event_ms(call, i, event_cls):
    start, end = event_cls(enable_timing=True), event_cls(enable_timing=True)
    start.record()
    call(i)
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def median_ms(fn, event_cls, reps=20, warmup=3, pass_index=False, budget_s=None, min_reps=3):
    """Median milliseconds of fn() between two events of event_cls (bm.cuda.Event or
    torch.cuda.Event, made with enable_timing=True), after `warmup` untimed calls.
    pass_index=True calls fn(i) with the run's index (benches that rotate buffers).
    budget_s: when given, one extra timed call sizes the repeat count to about budget_s
    seconds in total, between min_reps and `reps` (so `reps` is then the cap): long cases
    stay short, short cases get enough samples for a stable median."""
    def call(i):
        return fn(i) if pass_index else fn()

    if SMOKE:
        reps, warmup, budget_s = min(reps, 2), min(warmup, 1), None
    for i in range(warmup):
        call(i)
    if budget_s is not None:
        once_ms = _event_ms(call, 0, event_cls)
        reps = max(min_reps, min(reps, int(budget_s * 1e3 / max(once_ms, 1e-3))))
    return statistics.median([_event_ms(call, i, event_cls) for i in range(reps)])


def first_line(e, limit=160):
    """An exception as one short line: its type and the first line of its message."""
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0][:limit] if msg else ''}"


def peer_unavailable(peer, reason, case=None):
    """The line a bench prints instead of a peer's numbers (grep 'peer unavailable')."""
    where = f" [{case}]" if case else ""
    print(f"peer unavailable: {peer}{where}: {reason}", flush=True)


def time_case(rows, failed, name, fn, nbytes, torch=None, torch_fn=None, **timing):
    """Times fn (ours) and torch_fn (the peer) with median_ms(**timing) and appends
    (name, ms, nbytes, torch ms or None) to rows. Our failure prints FAIL and lands in
    `failed`; the peer's prints 'peer unavailable'; either way the bench goes on."""
    try:
        ms = median_ms(fn, _bm_event(), **timing)
    except Exception as e:  # noqa: BLE001 - report ours failing, keep the other cases
        print(f"FAIL {name}: {first_line(e)}", flush=True)
        failed.append(name)
        return
    tms = None
    if torch and torch_fn:
        try:
            tms = median_ms(torch_fn, torch.cuda.Event, **timing)
        except Exception as e:  # noqa: BLE001
            peer_unavailable("torch", first_line(e), name)
    rows.append((name, ms, nbytes, tms))


def _bm_event():
    import bigmodel as bm
    return bm.cuda.Event


def torch_cuda_peer():
    """(torch, None) when PyTorch with CUDA is importable, else (None, the reason)."""
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure just drops the column
        return None, f"torch not importable ({first_line(e)})"
    try:
        if torch.cuda.is_available():
            return torch, None
        return None, f"torch {torch.__version__} sees no CUDA device"
    except Exception as e:  # noqa: BLE001
        return None, f"torch.cuda failed ({first_line(e)})"
