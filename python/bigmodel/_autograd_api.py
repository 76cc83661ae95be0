"""bm.autograd.grad and bm.autograd.backward, as torch.autograd's: gradients of outputs with
respect to chosen inputs (optionally as a graph, for second derivatives), and backward from
several outputs at once."""
from . import _C


def _as_list(x):
    if x is None:
        return None
    return [x] if isinstance(x, _C.Tensor) else list(x)


def _seeds(outputs, grad_outputs, op):
    grads = _as_list(grad_outputs) or [None] * len(outputs)
    if len(grads) != len(outputs):
        raise _C.InvalidArgumentError(f"[{op}] got {len(outputs)} outputs but {len(grads)} grad_outputs")
    seeds = []
    for out, g in zip(outputs, grads):
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(f"[{op}] grad can be implicitly created only for scalar outputs, "
                                   f"got shape {list(out.shape)}")
            g = _C.ones_like(out)
        seeds.append(g)
    return seeds


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False,
         is_grads_batched=False):
    """The gradients of `outputs` with respect to `inputs` (a tuple, one per input), without
    touching any .grad. create_graph=True records the backward pass, so the result can be
    differentiated again; unused inputs raise unless allow_unused=True (then they get None)."""
    if is_grads_batched:
        raise NotImplementedError("[grad] is_grads_batched is not supported")
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    for t in ins:
        if not isinstance(t, _C.Tensor):
            raise TypeError(f"[grad] inputs must be tensors, got {type(t).__name__}")
        if not t.requires_grad:
            raise RuntimeError("[grad] one of the differentiated tensors does not require grad")
    for t in outs:
        if not t.requires_grad:
            raise RuntimeError("[grad] element 0 of tensors does not require grad and does not have a grad_fn")
    retain = create_graph if retain_graph is None else retain_graph
    res = _C._grad(outs, _seeds(outs, grad_outputs, "grad"), ins, bool(retain), bool(create_graph))
    if not allow_unused and any(r is None for r in res):
        raise RuntimeError("[grad] one of the differentiated tensors appears to not have been used in the graph; "
                           "set allow_unused=True if this is the desired behavior")
    return tuple(res)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Backward from several outputs at once, accumulating into the leaves' .grad."""
    if inputs is not None:
        raise NotImplementedError("[backward] the inputs= argument is not supported")
    outs = _as_list(tensors)
    for t in outs:
        if not t.requires_grad:
            raise RuntimeError("[backward] element 0 of tensors does not require grad and does not have a grad_fn")
    retain = create_graph if retain_graph is None else retain_graph
    _C._run_backward(outs, _seeds(outs, grad_tensors, "backward"), bool(retain), bool(create_graph))


__all__ = ["grad", "backward"]
