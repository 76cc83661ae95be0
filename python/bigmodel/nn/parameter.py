"""nn.Parameter: a Tensor subclass that a Module registers as a parameter when assigned."""
from .. import _C


class Parameter(_C.Tensor):
    """Parameter(data, requires_grad=True): a leaf tensor sharing data's memory.

    A Module registers it when it is assigned as an attribute: `self.w = nn.Parameter(x)`.
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            raise TypeError("[Parameter] expected a tensor, got None")
        if not isinstance(data, _C.Tensor):
            raise TypeError(f"[Parameter] expected a bigmodel Tensor, got {type(data).__name__}")
        if requires_grad and not data.is_floating_point():
            raise TypeError(f"[Parameter] only floating point tensors can require grad, got {data.dtype}")
        super().__init__(data)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        # copy.deepcopy(model): a new Parameter with its own copy of the data (and of .grad).
        if id(self) in memo:
            return memo[id(self)]
        p = Parameter(self.detach().clone(), self.requires_grad)
        if self.grad is not None:
            p.grad = self.grad.clone()
        memo[id(self)] = p
        return p

    def __reduce_ex__(self, protocol):
        raise TypeError("[Parameter] pickling is not supported; use bm.save with a state_dict")


def is_parameter(obj):
    """True when `obj` is an nn.Parameter."""
    return isinstance(obj, Parameter)


__all__ = ["Parameter", "is_parameter"]
