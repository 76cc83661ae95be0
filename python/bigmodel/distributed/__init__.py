"""bm.distributed: process groups and collectives (PyTorch's torch.distributed, MPI backend).

    mpirun -np 2 python train.py         # each rank:
    import bigmodel.distributed as dist
    dist.init_process_group()             # backend=None picks "mpi" (CPU tensors)
    dist.all_reduce(t)                    # in place: the sum over ranks

Rank, world size and local rank come from the launcher (mpirun sets OMPI_COMM_WORLD_*);
MPI is initialised by the first init_process_group and finalised at exit. Collectives run
in launch order on a background thread; async_op=True returns a Work whose wait() must be
called before the tensor is read (results are written into it by wait()).
"""
import datetime

from .. import _C
from ..data.distributed import DistributedSampler

_D = _C._distributed
ReduceOp = _D.ReduceOp
Work = _D.Work
ProcessGroup = _D.ProcessGroup

_BACKENDS = ("mpi", "nccl")


def is_available():
    """True when bigmodel was built with a distributed backend (MPI, NCCL or both)."""
    return _D.mpi_available() or _D.nccl_available()


def is_mpi_available():
    return _D.mpi_available()


def is_nccl_available():
    """True when built with NCCL (CUDA tensors); more than one process also needs MPI."""
    return _D.nccl_available()


def init_process_group(backend=None, init_method=None, world_size=-1, rank=-1, timeout=None):
    """Joins the job started by mpirun. backend: "mpi" (CPU tensors), "nccl" (CUDA tensors; each
    rank drives the GPU of its local rank) or None: both on a machine with a GPU and NCCL (CUDA
    tensors go to NCCL, CPU tensors to MPI), else "mpi".

    world_size and rank, when given, must match what the launcher says (they are checked).

    timeout (a datetime.timedelta or seconds): how long a collective may wait before it raises
    on this rank, naming the rank and the collective. None: BIGMODEL_DIST_TIMEOUT seconds when
    set, else 10 minutes. 0 waits forever.
    """
    if backend is not None and (not isinstance(backend, str) or backend.lower() not in _BACKENDS):
        raise ValueError(f"[init_process_group] unknown backend {backend!r} (expected 'mpi', 'nccl' or None)")
    backend = "" if backend is None else backend.lower()
    if init_method not in (None, "env://"):
        raise ValueError(f"[init_process_group] init_method {init_method!r} is not supported; "
                         "launch with mpirun (init_method=None)")
    group = _D.init_process_group(backend, _timeout_seconds(timeout))
    for name, given, actual in (("world_size", world_size, group.size()), ("rank", rank, group.rank())):
        if given not in (-1, None) and given != actual:
            _D.destroy_process_group()
            raise ValueError(f"[init_process_group] {name}={given} but the launcher says {actual}")
    return group


def _timeout_seconds(timeout):
    if timeout is None:
        return -1.0
    if isinstance(timeout, datetime.timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(f"[init_process_group] timeout must be a datetime.timedelta or a number of seconds, "
                        f"got {type(timeout).__name__}")
    if not seconds >= 0:  # also NaN
        raise ValueError(f"[init_process_group] timeout must be >= 0 seconds (0 waits forever), got {seconds}")
    return seconds


def is_initialized():
    return _D.is_initialized()


def _group(op):
    return _D.default_group(op)


def get_rank():
    return _group("get_rank").rank()


def get_world_size():
    return _group("get_world_size").size()


def get_local_rank():
    """The rank among the processes on this node (e.g. to pick a GPU)."""
    return _group("get_local_rank").local_rank()


def get_backend():
    return _group("get_backend").backend()


def destroy_process_group():
    """Drops the default group after its queued collectives finish (MPI stays up until exit)."""
    _D.destroy_process_group()


def _check_tensor(op, t):
    if not isinstance(t, _C.Tensor):
        raise TypeError(f"[{op}] expected a bigmodel Tensor, got {type(t).__name__}")


def all_reduce(tensor, op=ReduceOp.SUM, async_op=False):
    """Reduces `tensor` over all ranks, in place. Returns a Work if async_op, else None."""
    _check_tensor("all_reduce", tensor)
    return _D.all_reduce(tensor, op, async_op)


def broadcast(tensor, src=0, async_op=False):
    """Copies rank `src`'s tensor into `tensor` on every rank."""
    _check_tensor("broadcast", tensor)
    return _D.broadcast(tensor, int(src), async_op)


def all_gather(tensor_list, tensor, async_op=False):
    """tensor_list[r] receives rank r's `tensor` (a list of world-size tensors of its shape)."""
    _check_tensor("all_gather", tensor)
    if not isinstance(tensor_list, (list, tuple)):
        raise TypeError(f"[all_gather] tensor_list must be a list of tensors, got {type(tensor_list).__name__}")
    for t in tensor_list:
        _check_tensor("all_gather", t)
    return _D.all_gather(list(tensor_list), tensor, async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, async_op=False):
    """output = reduction over ranks of input_list[rank]."""
    _check_tensor("reduce_scatter", output)
    if not isinstance(input_list, (list, tuple)):
        raise TypeError(f"[reduce_scatter] input_list must be a list of tensors, got {type(input_list).__name__}")
    for t in input_list:
        _check_tensor("reduce_scatter", t)
    return _D.reduce_scatter(output, list(input_list), op, async_op)


def barrier(async_op=False):
    """Returns once every rank has called barrier()."""
    return _D.barrier(async_op)


def __getattr__(name):
    # DDP lives in bm.nn.parallel (as in PyTorch); reachable from here too, lazily, since
    # bigmodel.nn.parallel imports this module.
    if name == "DistributedDataParallel":
        from ..nn.parallel import DistributedDataParallel
        return DistributedDataParallel
    if name == "optim":  # ZeroRedundancyOptimizer; imported lazily as it needs bigmodel.optim
        import importlib
        return importlib.import_module(".optim", __name__)
    raise AttributeError(f"module 'bigmodel.distributed' has no attribute '{name}'")


__all__ = ["ReduceOp", "Work", "ProcessGroup", "is_available", "is_mpi_available", "is_nccl_available", "init_process_group", "is_initialized", "get_rank",
           "get_world_size", "get_local_rank", "get_backend", "destroy_process_group", "all_reduce", "broadcast",
           "all_gather", "reduce_scatter", "barrier", "DistributedSampler"]
