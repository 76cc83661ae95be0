"""Shared timing for the GPU benches: the median of CUDA-event-timed runs after warm-up,
with a fixed repeat count or one sized to a time budget per case."""
import statistics


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

    for i in range(warmup):
        call(i)
    if budget_s is not None:
        once_ms = _event_ms(call, 0, event_cls)
        reps = max(min_reps, min(reps, int(budget_s * 1e3 / max(once_ms, 1e-3))))
    return statistics.median([_event_ms(call, i, event_cls) for i in range(reps)])
