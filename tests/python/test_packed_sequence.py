"""bm.nn.utils.rnn: PackedSequence and its conversions (against NumPy layouts, round trips,
gradients, errors) and RNN/LSTM/GRU on packed batches against running each sequence alone."""
import numpy as np
import pytest

import bigmodel as bm
from bigmodel.nn.utils.rnn import (PackedSequence, pack_padded_sequence, pad_packed_sequence, pad_sequence,
                                   pack_sequence, unpack_sequence, unpad_sequence)
from conftest import assert_close


def padded_np(rng, lengths, feat=3, dtype=np.float64):
    T, B = max(lengths), len(lengths)
    x = rng.standard_normal((T, B, feat)).astype(dtype)
    for b, n in enumerate(lengths):
        x[n:, b] = 0.0
    return x


def reference_pack(x, lengths):
    """PyTorch's layout, by hand: sort by length (stable, decreasing), then step by step."""
    order = sorted(range(len(lengths)), key=lambda b: -lengths[b])
    rows, sizes = [], []
    for t in range(max(lengths)):
        running = [b for b in order if lengths[b] > t]
        sizes.append(len(running))
        rows += [x[t, b] for b in running]
    return np.stack(rows), sizes, order


@pytest.mark.parametrize("lengths", [[4, 2, 1], [1, 5, 3, 5], [3]])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_matches_reference_and_round_trips(rng, lengths, batch_first):
    x = padded_np(rng, lengths)
    xt = bm.tensor(np.ascontiguousarray(x.transpose(1, 0, 2)) if batch_first else x)
    sorted_ok = all(a >= b for a, b in zip(lengths, lengths[1:]))
    packed = pack_padded_sequence(xt, lengths, batch_first=batch_first, enforce_sorted=sorted_ok)
    ref_data, ref_sizes, order = reference_pack(x, lengths)
    assert isinstance(packed, PackedSequence)
    assert_close(packed.data, ref_data)
    assert packed.batch_sizes.tolist() == ref_sizes
    if sorted_ok:
        assert packed.sorted_indices is None and packed.unsorted_indices is None
    else:
        assert packed.sorted_indices.tolist() == order
        assert np.array_equal(np.array(order)[packed.unsorted_indices.tolist()], np.arange(len(lengths)))
    padded, lens = pad_packed_sequence(packed, batch_first=batch_first)
    assert lens.tolist() == lengths and lens.dtype == bm.int64
    assert_close(padded, x.transpose(1, 0, 2) if batch_first else x)
    longer, _ = pad_packed_sequence(packed, padding_value=-7.0, total_length=max(lengths) + 2)
    expect = np.full((max(lengths) + 2, len(lengths), 3), -7.0)
    for b, n in enumerate(lengths):
        expect[:n, b] = x[:n, b]
    assert_close(longer, expect)


def test_pack_from_noncontiguous_input(rng):
    x = padded_np(rng, [3, 2, 2])
    # A transposed view of a [B, T, F] array: time-major values, non-contiguous strides.
    xt = bm.tensor(np.ascontiguousarray(x.transpose(1, 0, 2))).transpose(0, 1)
    assert not xt.is_contiguous()
    packed = pack_padded_sequence(xt, [3, 2, 2])
    assert_close(packed.data, reference_pack(x, [3, 2, 2])[0])


def test_pad_sequence_and_pack_sequence(rng):
    seqs_np = [rng.standard_normal((n, 2)) for n in (2, 5, 3)]
    seqs = [bm.tensor(s) for s in seqs_np]
    out = pad_sequence(seqs, batch_first=True, padding_value=1.5)
    expect = np.full((3, 5, 2), 1.5)
    for b, s in enumerate(seqs_np):
        expect[b, :len(s)] = s
    assert_close(out, expect)
    left = pad_sequence(seqs, padding_side="left")
    assert_close(left[:, 0], np.concatenate([np.zeros((3, 2)), seqs_np[0]]))
    for a, b in zip(unpad_sequence(out, [2, 5, 3], batch_first=True), seqs_np):
        assert_close(a, b)
    packed = pack_sequence(seqs, enforce_sorted=False)
    for a, b in zip(unpack_sequence(packed), seqs_np):
        assert_close(a, b)
    with pytest.raises(ValueError, match="pack_padded_sequence"):
        pack_sequence(seqs)  # not sorted


def test_gradients_flow_through_pack_and_pad(rng):
    x = bm.tensor(padded_np(rng, [3, 1, 2]), requires_grad=True)
    w = rng.standard_normal((6, 3))
    packed = pack_padded_sequence(x, [3, 1, 2], enforce_sorted=False)
    (packed.data * bm.tensor(w)).sum().backward()
    ref_rows = reference_pack(np.arange(9).reshape(3, 3, 1).repeat(3, 2).astype(float), [3, 1, 2])[0][:, 0]
    expect = np.zeros((3, 3, 3))
    for r, flat in enumerate(ref_rows.astype(int)):
        expect[flat // 3, flat % 3] = w[r]
    assert_close(x.grad, expect)  # padding positions get no gradient
    assert bm.autograd.gradcheck(
        lambda d: pad_packed_sequence(PackedSequence(d, packed.batch_sizes, packed.sorted_indices))[0] * 1.0,
        [bm.tensor(rng.standard_normal((6, 2)), requires_grad=True)])


def test_errors(rng):
    x = bm.tensor(padded_np(rng, [3, 2]))
    with pytest.raises(ValueError, match=r"\[pack_padded_sequence\].*decreasing"):
        pack_padded_sequence(x, [2, 3])
    with pytest.raises(ValueError, match=r"\[pack_padded_sequence\].*2 lengths"):
        pack_padded_sequence(x, [3, 2, 1])
    with pytest.raises(ValueError, match=r"\[pack_padded_sequence\].*> 0"):
        pack_padded_sequence(x, [3, 0])
    with pytest.raises(ValueError, match=r"\[pack_padded_sequence\].*exceed"):
        pack_padded_sequence(x, [4, 2])
    with pytest.raises(ValueError, match=r"\[pad_packed_sequence\].*total_length"):
        pad_packed_sequence(pack_padded_sequence(x, [3, 2]), total_length=2)
    with pytest.raises(TypeError, match=r"\[pad_packed_sequence\]"):
        pad_packed_sequence(x)
    with pytest.raises(ValueError, match=r"\[pad_sequence\].*trailing dims"):
        pad_sequence([bm.ones(2, 3), bm.ones(2, 4)])
    with pytest.raises(ValueError, match=r"\[pad_sequence\]"):
        pad_sequence([])
    with pytest.raises(ValueError, match=r"\[LSTM\].*not both"):
        bm.nn.LSTM(3, 2)(pack_padded_sequence(x, [3, 2]), lengths=[3, 2])


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_on_packed_batch_matches_each_sequence_alone(rng, mode, bidirectional):
    bm.manual_seed(3)
    layer = getattr(bm.nn, mode)(3, 4, num_layers=2, bidirectional=bidirectional, dtype=bm.float64)
    lengths = [2, 5, 1, 4]
    seqs = [bm.tensor(rng.standard_normal((n, 3)), requires_grad=True) for n in lengths]
    D = 2 if bidirectional else 1
    h0 = bm.tensor(rng.standard_normal((2 * D, 4, 4)))
    hx = (h0, bm.tensor(rng.standard_normal((2 * D, 4, 4)))) if mode == "LSTM" else h0

    packed = pack_sequence(seqs, enforce_sorted=False)
    out, state = layer(packed, hx)
    assert isinstance(out, PackedSequence)
    assert out.batch_sizes.tolist() == packed.batch_sizes.tolist()
    padded, lens = pad_packed_sequence(out, batch_first=True)
    assert lens.tolist() == lengths
    h_n = state[0] if mode == "LSTM" else state
    w = bm.tensor(rng.standard_normal(padded.shape))
    ((padded * w).sum() + (h_n * 0.5).sum()).backward()
    grads = [s.grad.numpy().copy() for s in seqs]
    pgrads = [p.grad.numpy().copy() for p in layer.parameters()]

    layer.zero_grad()
    for b, s in enumerate(seqs):
        s.grad = None
        hb = hx[0][:, b:b + 1] if mode == "LSTM" else hx[:, b:b + 1]
        hxb = (hb, hx[1][:, b:b + 1]) if mode == "LSTM" else hb
        o, st = layer(s.unsqueeze(1), hxb)
        hn_b = st[0] if mode == "LSTM" else st
        assert_close(padded[b, :lengths[b]], o[:, 0].detach().numpy())
        assert_close(padded[b, lengths[b]:], np.zeros((5 - lengths[b], o.shape[-1])))
        assert_close(h_n[:, b], hn_b[:, 0].detach().numpy())
        if mode == "LSTM":
            assert_close(state[1][:, b], st[1][:, 0].detach().numpy())
        ((o[:, 0] * w[b, :lengths[b]]).sum() + (hn_b * 0.5).sum()).backward()
        assert_close(s.grad, grads[b])
    for p, g in zip(layer.parameters(), pgrads):
        assert_close(p.grad, g, atol=1e-6)


def test_clip_grad_still_importable():
    from bigmodel.nn.utils import clip_grad_norm_, clip_grad_value_  # noqa: F401
    p = bm.nn.Parameter(bm.tensor([3.0, 4.0]))
    p.grad = bm.tensor([3.0, 4.0])
    total = bm.nn.utils.clip_grad_norm_([p], 1.0)
    assert abs(total.item() - 5.0) < 1e-6
    assert_close(p.grad, np.array([0.6, 0.8]), atol=1e-5)
