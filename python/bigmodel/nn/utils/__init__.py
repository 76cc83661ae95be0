"""bm.nn.utils: gradient clipping (clip_grad.py) and variable-length sequence packing for
the recurrent layers (rnn.py: PackedSequence, pack_padded_sequence, pad_packed_sequence, ...)."""
from .clip_grad import clip_grad_norm_, clip_grad_value_
from . import rnn  # noqa: F401  (bm.nn.utils.rnn.pack_padded_sequence, ...)

__all__ = ["clip_grad_norm_", "clip_grad_value_", "rnn"]
