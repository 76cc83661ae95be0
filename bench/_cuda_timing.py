"""Shared timing for the GPU benches: the median of CUDA-event-timed runs after warm-up."""
import statistics


def median_ms(fn, event_cls, reps=20, warmup=3, pass_index=False):
    """Median milliseconds of fn() between two events of event_cls (bm.cuda.Event or
    torch.cuda.Event, made with enable_timing=True), after `warmup` untimed calls.
    pass_index=True calls fn(i) with the run's index (benches that rotate buffers)."""
    def call(i):
        return fn(i) if pass_index else fn()

    for i in range(warmup):
        call(i)
    times = []
    for i in range(reps):
        start, end = event_cls(enable_timing=True), event_cls(enable_timing=True)
        start.record()
        call(i)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)
