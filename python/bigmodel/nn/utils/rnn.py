"""Variable-length batches for the recurrent layers, with PyTorch's API and layout:
PackedSequence (data [sum(lengths), *], batch_sizes, sorted_indices, unsorted_indices),
pack_padded_sequence, pad_packed_sequence, pad_sequence, unpad_sequence, pack_sequence,
unpack_sequence. Every conversion is one index_select over the rows (the index is worked
out in NumPy), so gradients flow through packing and unpacking."""
from collections import namedtuple

import numpy as np

from ... import _C
from ..._tensor import tensor as _tensor


def _int_list(values, op, what="lengths"):
    if isinstance(values, _C.Tensor):
        if values.dim() != 1:
            raise ValueError(f"[{op}] {what} must be 1-D, got shape {list(values.shape)}")
        values = values.tolist()
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"[{op}] {what} must be a 1-D sequence of ints, got {values!r}")
    return arr.astype(np.int64)


def _index(arr, device):
    return _tensor(np.ascontiguousarray(arr, dtype=np.int64), device=device)


def invert_permutation(perm):
    if perm is None:
        return None
    p = np.asarray(perm.tolist() if isinstance(perm, _C.Tensor) else perm, dtype=np.int64)
    inv = np.empty_like(p)
    inv[p] = np.arange(p.size, dtype=np.int64)
    return _tensor(inv)


class PackedSequence(namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """A batch of sequences packed time step by time step: data holds, for t = 0, 1, ...,
    the rows of the batch_sizes[t] sequences still running at step t (longest first).
    sorted_indices[s] is the batch index of the s-th longest sequence (None when the batch
    was already sorted); unsorted_indices is its inverse. Build one with pack_padded_sequence
    or pack_sequence rather than by hand."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:
            raise ValueError("[PackedSequence] batch_sizes is required (use pack_padded_sequence to build one)")
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        """The same packing with data moved/cast by Tensor.to; the index tensors stay on the CPU."""
        data = self.data.to(*args, **kwargs)
        return self if data is self.data else self._replace(data=data)

    def float(self):
        return self.to(dtype=_C.dtype.float32)

    def double(self):
        return self.to(dtype=_C.dtype.float64)

    @property
    def is_cuda(self):
        return self.data.device.type == "cuda" if hasattr(self.data.device, "type") else False

    def _sizes(self):
        return np.asarray(self.batch_sizes.tolist(), dtype=np.int64)

    def _sorted(self):
        """sorted_indices as a NumPy array (the identity when the batch came sorted)."""
        b = int(self._sizes()[0]) if len(self._sizes()) else 0
        if self.sorted_indices is None:
            return np.arange(b, dtype=np.int64)
        return np.asarray(self.sorted_indices.tolist(), dtype=np.int64)


def _batch_sizes_of(sorted_lengths):
    """batch_sizes[t] = how many sequences are longer than t (lengths sorted decreasing)."""
    T = int(sorted_lengths[0]) if sorted_lengths.size else 0
    return np.array([(sorted_lengths > t).sum() for t in range(T)], dtype=np.int64)


def _packed_rows(batch_sizes, order, B):
    """For the packed row of (step t, s-th longest sequence): its row t*B + order[s] in the
    time-major padded tensor flattened to [T*B, ...]."""
    return np.concatenate([t * B + order[:n] for t, n in enumerate(batch_sizes)]) if len(batch_sizes) else \
        np.zeros(0, np.int64)


def _pack_time_major(x, batch_sizes, order):
    """data [sum(lengths), *] from the time-major padded x [T, B, *]."""
    T, B = x.shape[0], x.shape[1]
    flat = x.reshape(T * B, *x.shape[2:])
    return _C.index_select(flat, 0, _index(_packed_rows(batch_sizes, order, B), x.device))


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Packs a padded batch [T, B, *] ([B, T, *] with batch_first) whose b-th sequence has
    lengths[b] valid steps. With enforce_sorted=True the lengths must be non-increasing;
    otherwise the batch is sorted here and the order kept in sorted_indices."""
    op = "pack_padded_sequence"
    if not isinstance(input, _C.Tensor) or input.dim() < 2:
        raise ValueError(f"[{op}] expected a padded tensor with at least 2 dims, got "
                         f"{list(input.shape) if isinstance(input, _C.Tensor) else type(input).__name__}")
    lens = _int_list(lengths, op)
    x = input.transpose(0, 1) if batch_first else input
    T, B = x.shape[0], x.shape[1]
    if lens.size != B:
        raise ValueError(f"[{op}] expected {B} lengths (one per batch entry of input {list(input.shape)}), "
                         f"got {lens.size}")
    if B == 0 or lens.min() <= 0:
        raise ValueError(f"[{op}] every sequence needs a length > 0, got lengths {lens.tolist()}")
    if lens.max() > T:
        raise ValueError(f"[{op}] lengths {lens.tolist()} exceed the padded length {T} of input "
                         f"{list(input.shape)}")
    if enforce_sorted:
        if np.any(lens[1:] > lens[:-1]):
            raise ValueError(f"[{op}] lengths {lens.tolist()} are not sorted in decreasing order; sort the batch "
                             "or pass enforce_sorted=False")
        order, sorted_indices = np.arange(B, dtype=np.int64), None
    else:
        order = np.argsort(-lens, kind="stable").astype(np.int64)
        sorted_indices = _tensor(order)
    batch_sizes = _batch_sizes_of(lens[order])
    data = _pack_time_major(x, batch_sizes, order)
    return PackedSequence(data, _tensor(batch_sizes), sorted_indices,
                          invert_permutation(order) if sorted_indices is not None else None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Inverse of pack_padded_sequence: (padded [T, B, *] or [B, T, *], lengths int64 tensor),
    in the original batch order. total_length pads the time axis to that length."""
    op = "pad_packed_sequence"
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"[{op}] expected a PackedSequence, got {type(sequence).__name__}")
    sizes = sequence._sizes()
    order = sequence._sorted()
    T, B = len(sizes), order.size
    if total_length is not None:
        if total_length < T:
            raise ValueError(f"[{op}] total_length={total_length} is shorter than the longest sequence ({T})")
        T_out = int(total_length)
    else:
        T_out = T
    data = sequence.data
    feat = list(data.shape[1:])
    n_rows = data.shape[0]
    # ext = data plus one padding row; every padded position picks its data row or that one.
    pad_row = _C.full([1] + feat, padding_value, dtype=data.dtype, device=data.device)
    ext = _C.cat([data, pad_row], 0)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if T else np.zeros(0, np.int64)
    rank = np.empty(B, dtype=np.int64)  # rank[j]: position of batch entry j in the sorted order
    rank[order] = np.arange(B, dtype=np.int64)
    idx = np.full((T_out, B), n_rows, dtype=np.int64)
    for t in range(T):
        valid = rank < sizes[t]
        idx[t, valid] = offsets[t] + rank[valid]
    padded = _C.index_select(ext, 0, _index(idx.reshape(-1), data.device)).reshape(T_out, B, *feat)
    lengths_sorted = np.array([(sizes > s).sum() for s in range(B)], dtype=np.int64)
    lengths = _tensor(lengths_sorted[rank])
    return (padded.transpose(0, 1) if batch_first else padded), lengths


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stacks tensors [L_i, *] into [max L, B, *] ([B, max L, *] with batch_first), padding
    with padding_value on the right (or the left)."""
    op = "pad_sequence"
    if isinstance(sequences, _C.Tensor):
        sequences = list(sequences.unbind(0)) if hasattr(sequences, "unbind") else [sequences[i] for i in
                                                                                     range(sequences.shape[0])]
    sequences = list(sequences)
    if not sequences:
        raise ValueError(f"[{op}] expected a non-empty list of tensors")
    if padding_side not in ("right", "left"):
        raise ValueError(f"[{op}] padding_side must be 'right' or 'left', got {padding_side!r}")
    first = sequences[0]
    for i, s in enumerate(sequences):
        if not isinstance(s, _C.Tensor) or s.dim() < 1:
            raise ValueError(f"[{op}] sequence {i} must be a tensor with at least 1 dim")
        if list(s.shape[1:]) != list(first.shape[1:]):
            raise ValueError(f"[{op}] sequence {i} has shape {list(s.shape)}; every sequence needs trailing dims "
                             f"{list(first.shape[1:])} like sequence 0 {list(first.shape)}")
        if s.dtype != first.dtype:
            raise TypeError(f"[{op}] sequence {i} has dtype {s.dtype}, sequence 0 has {first.dtype}")
    lens = np.array([s.shape[0] for s in sequences], dtype=np.int64)
    T, B = int(lens.max()), len(sequences)
    feat = list(first.shape[1:])
    pad_row = _C.full([1] + feat, padding_value, dtype=first.dtype, device=first.device)
    ext = _C.cat(sequences + [pad_row], 0)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    idx = np.full((T, B), int(lens.sum()), dtype=np.int64)
    for b in range(B):
        shift = T - lens[b] if padding_side == "left" else 0
        idx[shift:shift + lens[b], b] = starts[b] + np.arange(lens[b])
    out = _C.index_select(ext, 0, _index(idx.reshape(-1), first.device)).reshape(T, B, *feat)
    return out.transpose(0, 1) if batch_first else out


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of unpadded sequences [L_b, *] from a padded batch."""
    lens = _int_list(lengths, "unpad_sequence")
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    if lens.size != x.shape[0]:
        raise ValueError(f"[unpad_sequence] expected {x.shape[0]} lengths, got {lens.size}")
    return [x[b, :int(n)] for b, n in enumerate(lens)]


def pack_sequence(sequences, enforce_sorted=True):
    """pack_padded_sequence(pad_sequence(sequences), their lengths)."""
    sequences = list(sequences)
    lengths = [s.shape[0] if isinstance(s, _C.Tensor) and s.dim() >= 1 else 0 for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    """The list of sequences [L_b, *] in the original batch order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


def _pack_like(padded_time_major, like):
    """Packs a time-major [T, B, *] output with the same layout as the PackedSequence `like`."""
    data = _pack_time_major(padded_time_major, like._sizes(), like._sorted())
    return like._replace(data=data)


__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence", "unpad_sequence",
           "pack_sequence", "unpack_sequence", "invert_permutation"]
