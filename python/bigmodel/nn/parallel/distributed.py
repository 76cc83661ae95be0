"""DistributedDataParallel: wraps a module so that backward averages its gradients over
all ranks, overlapping the all-reduces with the rest of backward.

How it works. At wrap time rank 0's parameters and buffers are broadcast. Parameters that
require grad are grouped into buckets (of one dtype, up to bucket_cap_mb) in reverse
registration order, which is roughly the order backward produces their gradients (the
default bucket_cap_mb=None sizes them from the model: a quarter of its gradient bytes, at
least 64 KB and at most 25 MB, so even a small model gets several buckets and all but the
last reduction can overlap backward; bench/bench_ddp_overlap.py measures it). A
post-accumulate-grad hook on each parameter marks it ready; when a bucket is complete its
gradients are flattened and an async all_reduce(AVG) is launched. Buckets launch strictly
in index order so every rank issues the same collectives in the same order.

Where the wait happens: in the hook of the last parameter to become ready (the engine
has no end-of-backward callback). That hook waits for every bucket and copies the
averaged values back into each .grad, so when loss.backward() returns the gradients are
synchronised and the optimizer can step. If a parameter gets no gradient, that hook never
fires; the next forward() notices the unfinished reduction and raises, naming the
parameters, unless find_unused_parameters=True, in which case forward() walks the graph
from its outputs and marks unreachable parameters ready at once (their bucket slot holds
zeros; after the reduction their .grad holds the average of the other ranks' gradients).
"""
import contextlib
import time
import weakref

from ... import _C
from ..._autograd import no_grad
from ... import distributed as dist
from ..module import Module


def _tensors_in(obj, out):
    """Collects the tensors in a forward output (tensor, or nested tuple/list/dict)."""
    if isinstance(obj, _C.Tensor):
        out.append(obj)
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            _tensors_in(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _tensors_in(o, out)
    return out


class DistributedDataParallel(Module):
    """DistributedDataParallel(module, device_ids=None, bucket_cap_mb=None, find_unused_parameters=False,
    broadcast_buffers=True). Needs init_process_group() first.

    bucket_cap_mb=None picks the bucket size from the model (a quarter of its gradient
    bytes, clamped to [64 KB, 25 MB]); a number fixes it, as in PyTorch.

    Use like the module; after loss.backward() every rank holds the same averaged
    gradients. no_sync() skips the reduction (gradients accumulate locally) for the
    forward/backward passes run inside it. broadcast_buffers re-broadcasts rank 0's buffers
    (e.g. batch-norm statistics) before each forward.
    """

    def __init__(self, module, device_ids=None, bucket_cap_mb=None, find_unused_parameters=False,
                 broadcast_buffers=True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"[DistributedDataParallel] expected an nn.Module, got {type(module).__name__}")
        if not dist.is_initialized():
            raise RuntimeError("[DistributedDataParallel] the default process group is not initialised; "
                               "call bigmodel.distributed.init_process_group() first")
        if bucket_cap_mb is not None and not (isinstance(bucket_cap_mb, (int, float)) and bucket_cap_mb > 0):
            raise ValueError(f"[DistributedDataParallel] bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.world_size = dist.get_world_size()
        self.find_unused_parameters = bool(find_unused_parameters)
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = bucket_cap_mb
        self._sync_buffers()
        with no_grad():
            for _, p in module.named_parameters():
                dist.broadcast(p, 0)

        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        # Buckets over parameters in reverse registration order, one dtype per bucket.
        if bucket_cap_mb is None:
            total = sum(p.numel() * p.element_size() for p in self._params)
            cap = min(25 << 20, max(64 << 10, total // 4))
        else:
            cap = int(bucket_cap_mb * 1024 * 1024)
        buckets, current, size = [], [], 0
        for i in reversed(range(len(self._params))):
            p = self._params[i]
            nbytes = p.numel() * p.element_size()
            if current and (size + nbytes > cap or p.dtype != self._params[current[0]].dtype):
                buckets.append(current)
                current, size = [], 0
            current.append(i)
            size += nbytes
        if current:
            buckets.append(current)
        self._buckets = buckets
        self._bucket_of = {i: b for b, idx in enumerate(buckets) for i in idx}
        self._sync_enabled = True
        self._comm_log = None  # a list while record_comm_timing() is on
        self._reset()
        me = weakref.ref(self)
        for i, p in enumerate(self._params):
            p.register_post_accumulate_grad_hook(self._hook_for(me, i))

    # ------------------------------------------------------------- iteration state
    def _reset(self):
        self._armed = False
        self._fired = False  # a backward hook ran since forward
        self._ready = set()
        self._bucket_count = [0] * len(self._buckets)
        self._next_bucket = 0
        self._works = []
        self._launch_times = []

    @staticmethod
    def _hook_for(me, index):
        def hook(param):
            ddp = me()
            if ddp is not None and ddp._armed:
                ddp._fired = True
                ddp._mark_ready(index)
        return hook

    def _mark_ready(self, index):
        if not self._armed:
            return
        if index in self._ready:
            self._armed = False
            raise RuntimeError(f"[DistributedDataParallel] parameter '{self._names[index]}' got its gradient twice "
                               "in one iteration (backward through the same forward twice?); run forward again "
                               "before each backward")
        self._ready.add(index)
        b = self._bucket_of[index]
        self._bucket_count[b] += 1
        while self._next_bucket < len(self._buckets) and \
                self._bucket_count[self._next_bucket] == len(self._buckets[self._next_bucket]):
            self._launch(self._next_bucket)
            self._next_bucket += 1
        if self._next_bucket == len(self._buckets):
            self._finish()

    def _launch(self, b):
        with no_grad():
            parts = []
            for i in self._buckets[b]:
                p = self._params[i]
                g = p.grad
                parts.append((g if g is not None else _C.zeros_like(p)).reshape(-1))
            flat = _C.cat(parts, 0) if len(parts) > 1 else parts[0].clone()
            work = dist.all_reduce(flat, dist.ReduceOp.AVG, async_op=True)
        self._works.append((b, flat, work))
        if self._comm_log is not None:
            self._launch_times.append((b, flat.numel() * flat.element_size(), time.perf_counter()))

    def _finish(self):
        self._armed = False
        start = time.perf_counter()
        blocked = 0.0
        with no_grad():
            for b, flat, work in self._works:
                t0 = time.perf_counter()
                work.wait()
                blocked += time.perf_counter() - t0
                offset = 0
                for i in self._buckets[b]:
                    p = self._params[i]
                    n = p.numel()
                    avg = flat.narrow(0, offset, n).reshape(tuple(p.shape))
                    offset += n
                    if p.grad is None:
                        p.grad = avg.clone()
                    else:
                        p.grad.copy_(avg)
        self._works = []
        if self._comm_log is not None:
            self._comm_log.append({"launches": self._launch_times, "backward_end": start, "blocked_s": blocked})

    def _sync_buffers(self):
        with no_grad():
            for _, buf in self.module.named_buffers():
                if buf is not None:
                    dist.broadcast(buf, 0)

    # ------------------------------------------------------------- public API
    def forward(self, *args, **kwargs):
        if self._armed and self._fired:
            missing = [self._names[i] for i in range(len(self._params)) if i not in self._ready]
            self._reset()
            raise RuntimeError(
                "[DistributedDataParallel] the previous backward did not produce gradients for parameters "
                f"{missing}, so their gradients were not reduced; pass find_unused_parameters=True if some "
                "parameters are legitimately unused in forward, or make sure the loss uses every output")
        self._reset()
        if self.broadcast_buffers and self.world_size > 1 and self._sync_enabled:
            self._sync_buffers()
        out = self.module(*args, **kwargs)
        self._armed = self._sync_enabled and _C.is_grad_enabled() and bool(self._params)
        if self._armed and self.find_unused_parameters:
            reached = _C._distributed._params_reached(_tensors_in(out, []), self._params)
            for i, hit in enumerate(reached):
                if not hit:
                    self._mark_ready(i)
        return out

    def record_comm_timing(self, enabled=True):
        """Starts (or stops) logging each synchronised backward's communication: a list of
        dicts with "launches" [(bucket, bytes, perf_counter at launch)], "backward_end" (when
        the last gradient arrived) and "blocked_s" (time spent waiting for the reductions
        after that: the communication backward did not hide). Returns the list."""
        self._comm_log = [] if enabled else None
        return self._comm_log

    @property
    def bucket_bytes(self):
        """The size in bytes of each gradient bucket, in launch order."""
        return [sum(self._params[i].numel() * self._params[i].element_size() for i in b) for b in self._buckets]

    @contextlib.contextmanager
    def no_sync(self):
        """Forward/backward passes inside skip the gradient reduction (gradients accumulate
        locally); the first synchronised backward after it reduces the accumulated sum."""
        prev = self._sync_enabled
        self._sync_enabled = False
        try:
            yield
        finally:
            self._sync_enabled = prev


__all__ = ["DistributedDataParallel"]
