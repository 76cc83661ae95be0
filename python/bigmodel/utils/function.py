"""Python-defined differentiable functions, as torch.autograd.Function:

    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x
        @staticmethod
        def backward(ctx, grad):
            x, = ctx.saved_tensors
            return 2 * x * grad
    y = Square.apply(x)

forward runs under no_grad; its tensor outputs get one graph node whose backward calls
cls.backward (through _C._record_python_function). backward returns one gradient (or None)
per forward argument; non-tensor arguments get None.
"""
from .. import _C
from .._autograd import no_grad


class FunctionCtx:
    """What forward leaves for backward: saved tensors, arbitrary attributes, needs_input_grad."""

    def __init__(self):
        self._saved = ()
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors):
        # Kept as given; apply() then detaches all but the forward's own inputs: keeping an
        # output itself would tie the graph node to its own output, while inputs keep their
        # history so that a backward with create_graph=True can differentiate through them.
        self._saved = tuple(tensors)

    @property
    def saved_tensors(self):
        return self._saved


class Function:
    """Subclass with static forward(ctx, *args) and backward(ctx, *grad_outputs); call apply(*args)."""

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("[Function] subclasses must implement forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("[Function] subclasses must implement backward")

    @classmethod
    def apply(cls, *args):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, _C.Tensor) and a.requires_grad for a in args)
        with no_grad():
            result = cls.forward(ctx, *args)
        ctx._saved = tuple(t if not isinstance(t, _C.Tensor) or any(t is a for a in args) else t.detach()
                           for t in ctx._saved)
        single = not isinstance(result, (tuple, list))
        outs = [result] if single else list(result)
        outs = [o.detach() if isinstance(o, _C.Tensor) else o for o in outs]
        tensor_pos = [i for i, o in enumerate(outs) if isinstance(o, _C.Tensor)]
        n_args, n_outs = len(args), len(outs)

        # The closure must not hold the outputs: the node it lives in is their grad_fn, and a
        # graph that is never backpropagated would then keep itself alive.
        def backward(grads):
            grad_outputs = [None] * n_outs
            for pos, g in zip(tensor_pos, grads):
                grad_outputs[pos] = g
            res = cls.backward(ctx, *grad_outputs)
            res = list(res) if isinstance(res, (tuple, list)) else [res]
            if len(res) != n_args:
                raise RuntimeError(f"[{cls.__name__}] backward returned {len(res)} gradients, forward took "
                                   f"{n_args} arguments")
            return [g if isinstance(a, _C.Tensor) else None for a, g in zip(args, res)]

        inputs = [a if isinstance(a, _C.Tensor) else None for a in args]
        _C._record_python_function(cls.__name__, inputs, [outs[i] for i in tensor_pos], backward)
        return outs[0] if single else type(result)(outs) if isinstance(result, tuple) else outs


__all__ = ["Function", "FunctionCtx"]
