"""Activation checkpointing: bm.utils.checkpoint(fn, *args) runs fn without recording a
graph, keeping only its inputs; backward re-runs fn with grad enabled (same RNG state, so
dropout masks repeat) and backpropagates through the recomputed graph. Memory for fn's
intermediate activations is traded for one extra forward.
"""
from .. import _C
from .._autograd import enable_grad, no_grad


def _module_params(fn):
    """Parameters of fn when it is a Module or a bound method of one (they need gradients even
    when no input does, e.g. the first block of a network fed with plain data)."""
    from ..nn.module import Module
    owner = fn if isinstance(fn, Module) else getattr(fn, "__self__", None)
    if isinstance(owner, Module):
        return [p for p in owner.parameters() if p.requires_grad]
    return []


def checkpoint(fn, *args, preserve_rng_state=True, use_reentrant=None, **kwargs):
    """Returns fn(*args, **kwargs) with gradients identical to the plain call.

    Gradients reach tensor arguments and, when fn is a Module (or its bound method), that
    module's parameters; parameters a plain closure captures get gradients only when some
    tensor argument requires grad (as with PyTorch's reentrant checkpoint).
    """
    del use_reentrant  # accepted for PyTorch compatibility; there is one implementation
    rng_state = _C.get_rng_state() if preserve_rng_state else None
    with no_grad():
        result = fn(*args, **kwargs)
    if not _C.is_grad_enabled():
        return result
    single = not isinstance(result, (tuple, list))
    outs = [result] if single else list(result)
    outs = [o.detach() if isinstance(o, _C.Tensor) else o for o in outs]
    tensor_pos = [i for i, o in enumerate(outs) if isinstance(o, _C.Tensor) and o.is_floating_point()]
    arg_tensors = [a if isinstance(a, _C.Tensor) else None for a in args]
    params = _module_params(fn)

    def backward(grads):
        # Re-run fn on detached copies of the inputs, with the forward's RNG state.
        detached = [a.detach().requires_grad_(a.requires_grad) if isinstance(a, _C.Tensor) and
                    a.is_floating_point() else (a.detach() if isinstance(a, _C.Tensor) else a) for a in args]
        saved_rng = None
        if rng_state is not None:
            saved_rng = _C.get_rng_state()
            _C.set_rng_state(rng_state)
        try:
            with enable_grad():
                again = fn(*detached, **kwargs)
        finally:
            if saved_rng is not None:
                _C.set_rng_state(saved_rng)
        again = [again] if single else list(again)
        roots, seeds = [], []
        for pos, g in zip(tensor_pos, grads):
            o = again[pos]
            if isinstance(o, _C.Tensor) and o.requires_grad:
                roots.append(o)
                seeds.append(g)
        if roots:
            _C._run_backward(roots, seeds, False)
        input_grads = [d.grad if isinstance(d, _C.Tensor) and d.requires_grad else None for d in detached]
        return input_grads + [None] * len(params)  # parameters got theirs from the nested pass

    recorded = _C._record_python_function("checkpoint", arg_tensors + params, [outs[i] for i in tensor_pos],
                                          backward)
    if not recorded:
        return result
    if single:
        return outs[0]
    return tuple(outs) if isinstance(result, tuple) else outs


def checkpoint_sequential(functions, segments, input, preserve_rng_state=True, **kwargs):
    """Runs a Sequential (or list of modules) in `segments` chunks, checkpointing all but the last."""
    del kwargs
    functions = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if not functions:
        return input
    if segments <= 0:
        raise ValueError(f"[checkpoint_sequential] segments must be positive, got {segments}")
    from ..nn.container import Sequential
    size = (len(functions) + segments - 1) // segments
    chunks = [functions[i:i + size] for i in range(0, len(functions), size)]
    x = input
    for i, chunk in enumerate(chunks):
        block = Sequential(*chunk)  # a Module, so checkpoint gives its parameters gradient edges
        x = block(x) if i == len(chunks) - 1 else checkpoint(block, x, preserve_rng_state=preserve_rng_state)
    return x


__all__ = ["checkpoint", "checkpoint_sequential"]
