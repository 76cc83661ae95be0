"""bm.distributed.optim: ZeroRedundancyOptimizer (ZeRO stage 1): each rank keeps the
optimizer state of only a 1/world_size shard of the parameters.

Sharding is by FLAT RANGE, not by whole parameter: the parameters of each (param group,
dtype) are laid end to end in registration order into one flat vector of N elements, padded
with zeros to a multiple of the world size W, and rank r owns the contiguous range
[r*S, (r+1)*S), S = ceil(N / W). Every rank's shard has the same size, which is what
reduce_scatter and all_gather need, and the state falls by W exactly (plus < W elements of
padding), however unequal the parameters are. The local optimizer (`.optim`, any of
bm.optim's) sees one flat leaf tensor per bucket, so it must update element by element:
SGD, Adam, AdamW, Adagrad, RMSprop do; an optimizer that looks at a parameter's shape (e.g.
a layer-wise trust ratio) would not.

step(): the local gradients are flattened and reduce-scattered (AVG) so each rank gets the
averaged gradient of its shard (reduce_grads=True, the ZeRO pattern for an unwrapped model;
with DDP the gradients are already averaged: pass reduce_grads=False and each rank just
slices its shard, no communication); the local optimizer updates its shard; the shards are
all-gathered and copied back into the parameters. A parameter without a gradient counts as
a zero gradient (its shard elements still get momentum / weight decay). step() is a
collective: every rank must call it (so with amp.GradScaler, whose skip decision looks at
the local gradients, wrap the model in DDP so all ranks see the same averaged gradients).

Checkpoints: consolidate_state_dict(to=0) (a collective: every rank calls it) gathers the
shards; state_dict() on rank `to` then returns the state in plain bm.optim layout (per
parameter, shaped like it), so a ZeRO checkpoint loads into a plain optimizer and back.
load_state_dict() (every rank, the full dict) keeps each rank's own slice.
"""
import copy

from .. import _C
from .._autograd import enable_grad, no_grad
from ..optim.optimizer import Optimizer
from . import ReduceOp, all_gather, broadcast, get_rank, get_world_size, is_initialized, reduce_scatter

_OP = "ZeroRedundancyOptimizer"


class _Bucket:
    """The parameters of one (group, dtype), flattened: this rank's shard is `shard` (a leaf
    tensor handed to the local optimizer)."""

    def __init__(self, group_index, params, world_size, rank):
        self.group_index = group_index
        self.params = params
        self.numel = sum(p.numel() for p in params)
        self.shard_size = -(-self.numel // world_size)
        self.padded = self.shard_size * world_size
        with no_grad():
            flat = self.flatten([p.detach() for p in params])
            self.shard = flat.narrow(0, rank * self.shard_size, self.shard_size).clone()
        self.shard.requires_grad_(True)

    def flatten(self, tensors):
        """Concatenates tensors shaped like the bucket's parameters into one padded vector."""
        parts = [t.reshape(-1) for t in tensors]
        pad = self.padded - self.numel
        if pad:
            parts.append(_C.zeros([pad], dtype=self.params[0].dtype, device=self.params[0].device))
        return _C.cat(parts, 0) if len(parts) > 1 else parts[0].clone()

    def unflatten(self, flat):
        """The pieces of a (padded) flat vector, shaped like the parameters."""
        out, offset = [], 0
        for p in self.params:
            n = p.numel()
            out.append(flat.narrow(0, offset, n).reshape(tuple(p.shape)))
            offset += n
        return out


class ZeroRedundancyOptimizer(Optimizer):
    """ZeroRedundancyOptimizer(params, optimizer_class=bm.optim.Adam, process_group=None,
    reduce_grads=True, **defaults). Needs init_process_group() first; every rank constructs
    it with the same parameters, in the same order (rank 0's values are broadcast).

    `.optim` is the local optimizer over this rank's shards; `param_groups` are the full
    groups (learning-rate schedulers and gradient clipping work on them as usual).
    """

    def __init__(self, params, optimizer_class=None, process_group=None, reduce_grads=True, **defaults):
        if not is_initialized():
            raise RuntimeError(f"[{_OP}] the default process group is not initialised; "
                               "call bigmodel.distributed.init_process_group() first")
        if optimizer_class is None:
            from ..optim import Adam
            optimizer_class = Adam
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)) or \
                optimizer_class is ZeroRedundancyOptimizer:
            raise TypeError(f"[{_OP}] optimizer_class must be a bigmodel.optim.Optimizer subclass, "
                            f"got {optimizer_class!r}")
        if process_group is not None:
            raise ValueError(f"[{_OP}] only the default process group is supported (process_group=None)")
        if defaults.pop("skip_nonfinite", False):
            # Each rank would judge only its own shard, and ranks could disagree on skipping.
            raise ValueError(f"[{_OP}] skip_nonfinite is not supported; check the (averaged) gradients "
                             "before step(), e.g. with amp.GradScaler on a DDP model")
        self._building = True
        super().__init__(params, dict(defaults))  # validates the groups (leaves, no duplicates)
        self._building = False
        self.world_size, self.rank = get_world_size(), get_rank()
        self.reduce_grads = bool(reduce_grads)
        self._buckets = []
        with no_grad():  # start from rank 0's values, as DDP does (a no-op after DDP's own broadcast)
            for p in self._params():
                if self.world_size > 1 and p.numel() > 0:
                    broadcast(p.detach(), 0)
        for gi, group in enumerate(self.param_groups):
            by_dtype = {}
            for p in group["params"]:
                if p.numel() > 0:
                    by_dtype.setdefault(str(p.dtype), []).append(p)
            for plist in by_dtype.values():
                self._buckets.append(_Bucket(gi, plist, self.world_size, self.rank))
        if not self._buckets:
            raise ValueError(f"[{_OP}] optimizer got no parameter with elements")
        inner_groups = [dict(self._options(self.param_groups[b.group_index]), params=[b.shard])
                        for b in self._buckets]
        self.optim = optimizer_class(inner_groups, **defaults)  # checks the option values
        self.optimizer_class = optimizer_class
        self.defaults = dict(self.optim.defaults)
        for group in self.param_groups:
            for k, v in self.defaults.items():
                group.setdefault(k, v)
        self._consolidated = None  # (rank it was gathered to, state dict) after consolidate_state_dict

    @staticmethod
    def _options(group):
        return {k: v for k, v in group.items() if k != "params"}

    def add_param_group(self, param_group):
        if getattr(self, "_building", False):
            return super().add_param_group(param_group)
        raise NotImplementedError(f"[{_OP}] add_param_group after construction is not supported; "
                                  "pass every group to the constructor")

    def _sync_options(self):
        """Copies the full groups' options (a scheduler may have changed lr) into the local groups."""
        for b, inner in zip(self._buckets, self.optim.param_groups):
            inner.update(self._options(self.param_groups[b.group_index]))

    def local_state_bytes(self):
        """Bytes of this rank's optimizer state tensors (the memory ZeRO divides by the world size)."""
        total = 0
        for s in self.optim.state.values():
            for v in s.values():
                if isinstance(v, _C.Tensor):
                    total += v.numel() * v.element_size()
        return total

    # ------------------------------------------------------------------ step
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for b in self._buckets:
                # The parameters are the source of truth (a checkpoint may have been loaded
                # into the model, or the user changed them): refresh the shard from them.
                b.shard.detach().copy_(b.flatten([p.detach() for p in b.params])
                                       .narrow(0, self.rank * b.shard_size, b.shard_size))
                flat = b.flatten([p.grad.detach() if p.grad is not None else _C.zeros_like(p.detach())
                                  for p in b.params])
                if self.reduce_grads and self.world_size > 1:
                    grad = _C.zeros([b.shard_size], dtype=flat.dtype, device=flat.device)
                    chunks = [flat.narrow(0, r * b.shard_size, b.shard_size) for r in range(self.world_size)]
                    reduce_scatter(grad, chunks, ReduceOp.AVG)
                else:
                    grad = flat.narrow(0, self.rank * b.shard_size, b.shard_size).clone()
                b.shard.grad = grad
            self._sync_options()
            self.optim.step()
            self._consolidated = None  # a consolidated state is stale after a step
            self.last_step_skipped = self.optim.last_step_skipped
            for b in self._buckets:
                if self.world_size > 1:
                    shards = [_C.empty([b.shard_size], dtype=b.shard.dtype, device=b.shard.device)
                              for _ in range(self.world_size)]
                    all_gather(shards, b.shard.detach())
                    full = _C.cat(shards, 0)
                else:
                    full = b.shard.detach()
                for p, piece in zip(b.params, b.unflatten(full)):
                    p.detach().copy_(piece)
                b.shard.grad = None
        return loss

    def zero_grad(self, set_to_none=True):
        super().zero_grad(set_to_none)
        self.optim.zero_grad(set_to_none)

    # ------------------------------------------------------------------ checkpoints
    @staticmethod
    def _is_sharded(value, bucket):
        return isinstance(value, _C.Tensor) and value.dim() == 1 and value.shape[0] == bucket.shard_size

    def consolidate_state_dict(self, to=0):
        """Gathers every rank's shard of the state onto rank `to` (a collective: call it on
        every rank); state_dict() on that rank then returns the full state."""
        if not isinstance(to, int) or not 0 <= to < self.world_size:
            raise ValueError(f"[{_OP}] consolidate_state_dict: rank {to!r} is not in [0, {self.world_size})")
        index = {id(p): i for i, p in enumerate(self._params())}
        state = {}
        with no_grad():
            for b in self._buckets:
                local = self.optim.state.get(b.shard, {})
                full_entries = {}
                for key in sorted(local):
                    value = local[key]
                    if self._is_sharded(value, b):
                        if self.world_size > 1:
                            shards = [_C.empty([b.shard_size], dtype=value.dtype, device=value.device)
                                      for _ in range(self.world_size)]
                            all_gather(shards, value.detach().contiguous())
                            flat = _C.cat(shards, 0)
                        else:
                            flat = value.detach()
                        full_entries[key] = [t.clone() for t in b.unflatten(flat)]
                    else:  # replicated (e.g. the step count): the same on every rank
                        full_entries[key] = None
                if self.rank == to:
                    for i, p in enumerate(b.params):
                        entry = {}
                        for key in sorted(local):
                            pieces = full_entries[key]
                            entry[key] = pieces[i] if pieces is not None else self._copy(local[key])
                        state[index[id(p)]] = entry
        groups = []
        for g in self.param_groups:
            packed = copy.deepcopy(self._options(g))
            packed["params"] = [index[id(p)] for p in g["params"]]
            groups.append(packed)
        self._consolidated = (to, {"state": state, "param_groups": groups}) if self.rank == to else (to, None)

    @staticmethod
    def _copy(value):
        return value.detach().clone() if isinstance(value, _C.Tensor) else copy.deepcopy(value)

    def state_dict(self):
        """The full state in plain bm.optim layout; only on the rank consolidate_state_dict(to)
        gathered it to, and only until the next step."""
        if self._consolidated is None:
            raise RuntimeError(f"[{_OP}] call consolidate_state_dict(to) on every rank before state_dict()")
        to, sd = self._consolidated
        if sd is None:
            raise RuntimeError(f"[{_OP}] the state was consolidated to rank {to}, not to this rank ({self.rank})")
        return sd

    def load_state_dict(self, state_dict):
        """Loads a full state dict (from state_dict() or a plain optimizer of the same groups);
        call it on every rank: each keeps its own slice."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"[{_OP}] loaded state dict has {len(groups)} parameter groups, "
                             f"the optimizer has {len(self.param_groups)}")
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"[{_OP}] loaded state dict has a group ({i}) of {len(saved['params'])} parameters "
                                 f"where the optimizer's group has {len(own['params'])}")
        id_map = {}
        for saved, own in zip(groups, self.param_groups):
            for idx, p in zip(saved["params"], own["params"]):
                id_map[id(p)] = idx
        saved_state = state_dict["state"]
        new_state = {}
        with no_grad():
            for b in self._buckets:
                entries = [saved_state.get(id_map[id(p)]) for p in b.params]
                if entries[0] is None:
                    continue
                if any(e is None or set(e) != set(entries[0]) for e in entries):
                    raise ValueError(f"[{_OP}] loaded state covers only some parameters of group {b.group_index}")
                local = {}
                for key, first in entries[0].items():
                    per_param = isinstance(first, _C.Tensor) and key != "step" and \
                        tuple(first.shape) == tuple(b.params[0].shape)
                    if per_param:
                        for p, e in zip(b.params, entries):
                            if tuple(e[key].shape) != tuple(p.shape):
                                raise ValueError(f"[{_OP}] loaded state '{key}' has shape {tuple(e[key].shape)} "
                                                 f"for a parameter of shape {tuple(p.shape)}")
                        flat = b.flatten([e[key].detach().to(dtype=b.shard.dtype) for e in entries])
                        local[key] = flat.narrow(0, self.rank * b.shard_size, b.shard_size).clone()
                    else:
                        local[key] = self._copy(first)
                new_state[b.shard] = local
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = copy.deepcopy(v)
        self.optim.state.clear()
        self.optim.state.update(new_state)
        self._sync_options()
        self._consolidated = None

    def __repr__(self):
        return f"ZeroRedundancyOptimizer({self.optimizer_class.__name__}, world_size={self.world_size}, " \
               f"shards={[b.shard_size for b in self._buckets]})\n" + super().__repr__()


__all__ = ["ZeroRedundancyOptimizer"]
