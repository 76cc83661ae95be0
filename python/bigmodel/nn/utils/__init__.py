"""bm.nn.utils: gradient clipping (clip_grad.py) and variable-length sequence packing for
the recurrent layers (rnn.py: PackedSequence, pack_padded_sequence, pad_packed_sequence, ...)."""
from .clip_grad import clip_grad_norm_, clip_grad_value_
from . import rnn  # noqa: F401  (bm.nn.utils.rnn.pack_padded_sequence, ...)

__all__ = ["clip_grad_norm_", "clip_grad_value_", "rnn"]


def parameters_to_vector(parameters):
    """All parameters flattened and concatenated into one 1-D tensor."""
    from ... import _C
    return _C.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copies consecutive slices of `vec` into the parameters (in place, no graph)."""
    from ..._autograd import no_grad
    offset = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[offset:offset + n].reshape(tuple(p.shape)))
            offset += n


__all__ += ["parameters_to_vector", "vector_to_parameters"]
from .weight_norm import weight_norm, remove_weight_norm, spectral_norm, remove_spectral_norm  # noqa: E402
__all__ += ["weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm"]
