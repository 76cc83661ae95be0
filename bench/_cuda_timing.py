"""Shared timing for the GPU benches: the median of CUDA-event-timed runs after warm-up,
with a fixed repeat count or one sized to a time budget per case; plus the helpers every
GPU bench uses for its peers (PyTorch on CUDA, cuBLAS, cuDNN), its start (arguments, SKIP
without a GPU), its summary table and exit status, and for smoke runs.

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


def time_backends(family, peer, label, measure, failed, missing=None, fail_name=None):
    """{"ours": measure(), peer: measure()}, measured with bm.backends.<family> set to "ours"
    and then to peer (cuDNN, cuBLAS), and set back to "ours" after each. Our failure prints
    "FAIL <fail_name or label>: ..." and appends label to `failed`; the peer's prints
    "peer unavailable"; either way that entry reads `missing`."""
    import bigmodel as bm
    res = {}
    for backend in ("ours", peer):
        try:
            setattr(bm.backends, family, backend)
            res[backend] = measure()
        except Exception as e:  # noqa: BLE001 - a build without the peer, a case or dtype it rejects
            if backend == "ours":
                print(f"FAIL {fail_name or label}: {first_line(e)}", flush=True)
                failed.append(label)
            else:
                peer_unavailable(backend, first_line(e), label)
            res[backend] = missing
        finally:
            setattr(bm.backends, family, "ours")
    return res


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


def parse_gpu_bench_args(ap, torch_why=None, smoke_help="tiny sizes, 2 reps: checks the script, not speed"):
    """The start every GPU bench shares: adds --smoke to ap (after the bench's own flags),
    parses the command line and, where no GPU is visible, prints "SKIP: no CUDA GPU visible"
    and returns None (the bench then exits 0). Otherwise sets smoke mode, prints
    "peer unavailable" for a missing PyTorch (torch_why: torch_cuda_peer()'s reason) and
    returns the parsed arguments."""
    import bigmodel as bm
    ap.add_argument("--smoke", action="store_true", help=smoke_help)
    args = ap.parse_args()
    if not bm.cuda.is_available():
        print("SKIP: no CUDA GPU visible")
        return None
    smoke_mode(args.smoke)
    if torch_why:
        peer_unavailable("torch (CUDA)", torch_why)
    return args


def print_bandwidth_table(rows, copy_gbs, have_torch, name_width):
    """The GB/s summary of time_case's rows: one line per case with its ratio to a device
    copy (copy_gbs) and to PyTorch ("vs torch" > 1: bigmodel faster; - where it did not run)."""
    peer = "torch" if have_torch else "torch (absent)"
    print(f"{'kernel':{name_width}s} {'ms':>8s} {'GB/s':>8s} {'vs copy':>8s} {'vs ' + peer:>16s}")
    for name, t, nbytes, tms in rows:
        gbs = nbytes / t / 1e6
        ratio = f"{tms / t:16.2f}" if tms else f"{'-':>16s}"
        print(f"{name:{name_width}s} {t:8.3f} {gbs:8.0f} {gbs / copy_gbs:8.2f} {ratio}")


def exit_status(failed):
    """Names the cases of ours that failed, if any; the bench's exit status (1 when any did)."""
    if failed:
        print(f"FAILED cases ({len(failed)}): {', '.join(failed)}")
    return 1 if failed else 0
