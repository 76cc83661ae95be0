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
        # Detached aliases: keeping an output itself would tie the graph node to its own output.
        self._saved = tuple(t.detach() if isinstance(t, _C.Tensor) else t for t in tensors)

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
        single = not isinstance(result, (tuple, list))
        outs = [result] if single else list(result)
        outs = [o.detach() if isinstance(o, _C.Tensor) else o for o in outs]
        tensor_pos = [i for i, o in enumerate(outs) if isinstance(o, _C.Tensor)]
        n_args = len(args)

        def backward(grads):
            grad_outputs = [None] * len(outs)
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
