"""int8 quantization: quantize/dequantize round trips, the int8 GEMM exact against an int64
NumPy reference, quantized Linear / Conv2d against float, post-training quantization of a
small CNN, save/load, and bad inputs."""
import os

import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn
from bigmodel import quantization as Q
from bigmodel.nn import functional as F


def pack_int8(q):
    """NumPy int8 [R, K] -> the packed int32 [R, ceil(K/4)] layout, as a bigmodel tensor."""
    r, k = q.shape
    padded = np.zeros((r, (k + 3) // 4 * 4), dtype=np.int8)
    padded[:, :k] = q
    return bm.tensor(padded.view(np.int32).copy())


@pytest.mark.parametrize("shape", [(7, 13), (1, 1), (3, 4, 5), (16, 33)])
def test_per_tensor_round_trip_within_half_step(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    q = Q.quantize_per_tensor(bm.tensor(x))
    scale = float(np.abs(x).max()) / 127
    assert q.shape == shape and q.qscheme == "per_tensor_symmetric"
    np.testing.assert_allclose(float(q.scale[0]), scale, rtol=1e-6)
    expected = np.clip(np.rint(x.astype(np.float64) / np.float64(np.float32(scale))), -127, 127)
    np.testing.assert_array_equal(q.int_repr(), expected.astype(np.int8))
    err = np.abs(q.dequantize().numpy() - x)
    assert err.max() <= 0.5 * scale * (1 + 1e-5)
    assert q.dequantize().dtype == bm.float32


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_channel_round_trip(rng, axis):
    x = rng.standard_normal((5, 6, 3)) * np.array([0.01, 1.0, 100.0])  # very different channel ranges
    q = Q.quantize_per_channel(bm.tensor(x), axis=axis)
    ax = axis % 3
    absmax = np.abs(x).max(axis=tuple(i for i in range(3) if i != ax))
    np.testing.assert_allclose(q.scale.numpy(), (absmax / 127).astype(np.float32), rtol=1e-6)
    shape_b = [1, 1, 1]
    shape_b[ax] = -1
    step = q.scale.numpy().astype(np.float64).reshape(shape_b)
    err = np.abs(q.dequantize().numpy().astype(np.float64) - x)
    assert np.all(err <= 0.5 * step * (1 + 1e-5) + 1e-12)
    assert q.int_repr().shape == x.shape and np.abs(q.int_repr()).max() == 127


def test_noncontiguous_input_and_explicit_scales(rng):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    t = bm.tensor(np.ascontiguousarray(x.T)).t()
    assert not t.is_contiguous()
    q = Q.quantize_per_channel(t, scales=np.full(6, 0.05))
    want = np.clip(np.rint(x.astype(np.float64) / np.float64(np.float32(0.05))), -127, 127)
    np.testing.assert_array_equal(q.int_repr(), want)
    # values beyond 127 steps saturate
    big = Q.quantize_per_tensor(bm.tensor([1.0, -1.0, 0.001]), scale=0.001)
    np.testing.assert_array_equal(big.int_repr(), [127, -127, 1])


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (7, 5, 13), (13, 17, 31), (6, 16, 64), (33, 19, 130)])
def test_int8_gemm_exact_against_int64(rng, m, n, k):
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)  # the full int8 range, -128 included
    b = rng.integers(-128, 128, (n, k)).astype(np.int8)
    got = bm._C._int8_gemm(pack_int8(a), pack_int8(b), k)
    assert got.dtype == bm.int32
    np.testing.assert_array_equal(got.numpy(), a.astype(np.int64) @ b.astype(np.int64).T)


def test_int8_gemm_extremes_and_garbage_padding():
    k = 1023
    a = np.full((7, k), -128, np.int8)
    b = np.full((9, k), -128, np.int8)
    np.testing.assert_array_equal(bm._C._int8_gemm(pack_int8(a), pack_int8(b), k).numpy(),
                                  np.full((7, 9), 128 * 128 * k))
    # bytes beyond k in the last word must not count
    pa = pack_int8(np.ones((2, 5), np.int8)).numpy()
    pa[:, -1] |= np.int32(0x7f7f7f00)
    got = bm._C._int8_gemm(bm.tensor(pa), bm.tensor(pa.copy()), 5)
    np.testing.assert_array_equal(got.numpy(), np.full((2, 2), 5))


def test_int8_gemm_scaled_epilogue(rng):
    m, n, k = 9, 20, 37
    a = rng.integers(-127, 128, (m, k)).astype(np.int8)
    b = rng.integers(-127, 128, (n, k)).astype(np.int8)
    sa = rng.uniform(0.01, 0.1, m).astype(np.float32)
    sb = rng.uniform(0.01, 0.1, n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    got = bm._C._int8_gemm(pack_int8(a), pack_int8(b), k, a_scale=bm.tensor(sa), b_scale=bm.tensor(sb),
                           bias=bm.tensor(bias))
    acc = a.astype(np.int64) @ b.astype(np.int64).T
    want = acc * sa[:, None].astype(np.float64) * sb[None, :] + bias
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    one = bm._C._int8_gemm(pack_int8(a), pack_int8(b), k, a_scale=bm.tensor([0.5]), b_scale=bm.tensor(sb))
    np.testing.assert_allclose(one.numpy(), acc * 0.5 * sb[None, :].astype(np.float64), rtol=1e-5, atol=1e-5)


def test_int8_matmul_close_to_float(rng):
    a = rng.standard_normal((10, 50)).astype(np.float32)
    b = rng.standard_normal((8, 50)).astype(np.float32)
    got = Q.int8_matmul(Q.quantize_per_tensor(bm.tensor(a)), Q.quantize_per_channel(bm.tensor(b)))
    want = a @ b.T
    # each product error is bounded by the quantization steps; overall ~1% of the scale
    assert np.abs(got.numpy() - want).max() < 0.05 * np.abs(want).max()


def test_quantized_linear_close_to_float(rng):
    lin = nn.Linear(40, 12)
    x = bm.tensor(rng.standard_normal((2, 5, 40)).astype(np.float32))
    scale = float(x.abs().max()) / 127
    q = Q.QuantizedLinear.from_float(lin, scale)
    y, want = q(x), lin(x).detach()
    assert tuple(y.shape) == (2, 5, 12)
    # exactly the dequantized computation
    xq = Q.quantize_per_tensor(x, scale=scale).dequantize().numpy().astype(np.float64)
    wq = q.dequantized_weight().numpy().astype(np.float64)
    exact = xq @ wq.T + lin.bias.detach().numpy()
    np.testing.assert_allclose(y.numpy(), exact, rtol=1e-5, atol=1e-5)
    assert np.abs(y.numpy() - want.numpy()).max() < 0.02 * np.abs(want.numpy()).max()


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2)])
def test_quantized_conv2d_close_to_float(rng, stride, padding, dilation):
    conv = nn.Conv2d(3, 5, 3, stride=stride, padding=padding, dilation=dilation)
    x = bm.tensor(rng.standard_normal((2, 3, 9, 8)).astype(np.float32))
    scale = float(x.abs().max()) / 127
    q = Q.QuantizedConv2d.from_float(conv, scale)
    y = q(x)
    xq = Q.quantize_per_tensor(x, scale=scale).dequantize()
    exact = F.conv2d(xq, q.dequantized_weight(), conv.bias.detach(), stride=stride, padding=padding,
                     dilation=dilation)
    assert tuple(y.shape) == tuple(exact.shape)
    np.testing.assert_allclose(y.numpy(), exact.numpy(), rtol=1e-4, atol=1e-4)
    want = conv(x).detach().numpy()
    assert np.abs(y.numpy() - want).max() < 0.03 * np.abs(want).max()
    assert tuple(q(x[0]).shape) == tuple(y.shape[1:])  # unbatched input


@pytest.mark.parametrize("shape,out_ch,kernel,padding", [((2, 4, 11, 11), 13, 3, 0), ((1, 1, 28, 28), 32, 3, 0),
                                                         ((3, 2, 6, 17), 7, (2, 3), 1)])
def test_quantized_conv2d_fused_many_tiles(rng, shape, out_ch, kernel, padding):
    # The CPU's fused kernel: whole and partial 16-position strips and 6-channel tiles.
    conv = nn.Conv2d(shape[1], out_ch, kernel, padding=padding)
    x = bm.tensor(rng.standard_normal(shape).astype(np.float32))
    scale = float(x.abs().max()) / 127
    q = Q.QuantizedConv2d.from_float(conv, scale)
    xq = Q.quantize_per_tensor(x, scale=scale).dequantize()
    exact = F.conv2d(xq, q.dequantized_weight(), conv.bias.detach(), padding=padding)
    np.testing.assert_allclose(q(x).numpy(), exact.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rows", [1, 3])
def test_quantized_linear_few_rows_exact(rng, rows):
    # One to four rows take the unpacked path (batch-1 inference).
    lin = nn.Linear(1001, 21)
    x = bm.tensor(rng.standard_normal((rows, 1001)).astype(np.float32))
    scale = float(x.abs().max()) / 127
    q = Q.QuantizedLinear.from_float(lin, scale)
    xq = Q.quantize_per_tensor(x, scale=scale).dequantize().numpy().astype(np.float64)
    exact = xq @ q.dequantized_weight().numpy().astype(np.float64).T + lin.bias.detach().numpy()
    np.testing.assert_allclose(q(x).numpy(), exact, rtol=1e-5, atol=1e-4)


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(F.max_pool2d(F.relu(self.conv(x)), 2).flatten(1))


def _blobs(rng, n):
    """Three classes of 8x8 images: a bright square in different corners, plus noise."""
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32) * 0.3
    for i, c in enumerate(y):
        r0, c0 = [(0, 0), (4, 4), (0, 4)][c]
        x[i, 0, r0:r0 + 4, c0:c0 + 4] += 1.5
    return bm.tensor(x), bm.tensor(y)


def test_quantize_model_accuracy_and_save_load(rng, tmp_path):
    bm.manual_seed(0)
    model = TinyCNN()
    opt = bm.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(40):
        x, y = _blobs(rng, 32)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt, yt = _blobs(rng, 300)
    model.eval()
    with bm.no_grad():
        float_logits = model(xt)
    float_acc = float((float_logits.argmax(1) == yt).float().mean())
    float_path = os.path.join(tmp_path, "float.safetensors")
    bm.save(model.state_dict(), float_path)
    calib = [_blobs(rng, 32) for _ in range(3)]
    Q.quantize_model(model, calib)
    assert isinstance(model.conv, Q.QuantizedConv2d) and isinstance(model.fc, Q.QuantizedLinear)
    assert sorted(Q.quantized_layer_names(model)) == ["conv", "fc"]
    with bm.no_grad():
        q_logits = model(xt)
    q_acc = float((q_logits.argmax(1) == yt).float().mean())
    assert float_acc > 0.9
    assert q_acc >= float_acc - 0.01
    assert np.abs(q_logits.numpy() - float_logits.numpy()).max() < 0.05 * np.abs(float_logits.numpy()).max()
    q_path = os.path.join(tmp_path, "int8.safetensors")
    Q.save_quantized(model, q_path)
    loaded = Q.load_quantized(TinyCNN(), q_path)
    with bm.no_grad():
        np.testing.assert_array_equal(loaded(xt).numpy(), q_logits.numpy())
    # smaller even for this tiny model, whose file is mostly header (test below: ~4x for real sizes)
    assert os.path.getsize(q_path) < os.path.getsize(float_path)


def test_quantized_file_about_4x_smaller(tmp_path):
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 64))
    float_path = os.path.join(tmp_path, "f.safetensors")
    bm.save(model.state_dict(), float_path)
    Q.quantize_model(model, [bm.randn(4, 256)])
    q_path = os.path.join(tmp_path, "q.safetensors")
    Q.save_quantized(model, q_path)
    ratio = os.path.getsize(float_path) / os.path.getsize(q_path)
    assert 3.5 < ratio <= 4.0, ratio


def test_exclude_keeps_layers_float():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    Q.quantize_model(model, [bm.randn(3, 4)], exclude=("2",), observer="percentile")
    assert isinstance(model[0], Q.QuantizedLinear) and isinstance(model[2], nn.Linear)


def test_bad_inputs_raise_with_op_name():
    with pytest.raises(TypeError, match=r"\[quantize_per_tensor\]"):
        Q.quantize_per_tensor(bm.ones(3, dtype=bm.int64))
    with pytest.raises(TypeError, match=r"\[quantize_per_channel\]"):
        Q.quantize_per_channel([1.0, 2.0])
    with pytest.raises(ValueError, match=r"\[quantize_per_channel\].*axis"):
        Q.quantize_per_channel(bm.randn(2, 3), axis=2)
    with pytest.raises(ValueError, match=r"\[quantize_per_tensor\].*positive"):
        Q.quantize_per_tensor(bm.randn(2, 3), scale=-1.0)
    with pytest.raises(ValueError, match=r"\[quantize_per_channel\].*3 scales"):
        Q.quantize_per_channel(bm.randn(3, 2), scales=[1.0, 2.0])
    with pytest.raises(TypeError, match=r"\[dequantize\]"):
        Q.dequantize(bm.randn(2))
    a = pack_int8(np.ones((2, 8), np.int8))
    with pytest.raises(ValueError, match=r"\[int8_gemm\].*k = 9"):
        bm._C._int8_gemm(a, a, 9)
    with pytest.raises(TypeError, match=r"\[int8_gemm\].*int32"):
        bm._C._int8_gemm(a.float(), a, 8)
    with pytest.raises(ValueError, match=r"\[int8_gemm\].*shape"):
        bm._C._int8_gemm(a, a, 8, a_scale=bm.ones(3), b_scale=bm.ones(2))
    with pytest.raises(ValueError, match=r"\[int8_gemm\]"):
        bm._C._int8_gemm(a, a, 8, a_scale=bm.ones(2))
    with pytest.raises(ValueError, match=r"\[int8_matmul\]"):
        Q.int8_matmul(Q.quantize_per_tensor(bm.randn(2, 3)), Q.quantize_per_tensor(bm.randn(2, 4)))
    q = Q.QuantizedLinear.from_float(nn.Linear(4, 2), 0.1)
    with pytest.raises(ValueError, match=r"\[quantized_linear\].*in_features"):
        q(bm.randn(3, 5))
    qc = Q.QuantizedConv2d.from_float(nn.Conv2d(2, 3, 3), 0.1)
    with pytest.raises(ValueError, match=r"\[quantized_conv2d\].*channels"):
        qc(bm.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"\[quantized_conv2d\].*smaller"):
        qc(bm.randn(1, 2, 2, 2))
    with pytest.raises(ValueError, match=r"\[QuantizedConv2d\]"):
        Q.QuantizedConv2d.from_float(nn.Conv2d(2, 2, 3, groups=2), 0.1)
    with pytest.raises(ValueError, match=r"\[quantize_model\].*empty"):
        Q.quantize_model(nn.Sequential(nn.Linear(2, 2)), [])
    with pytest.raises(ValueError, match=r"\[quantize_model\].*no Linear"):
        Q.quantize_model(nn.Sequential(nn.ReLU()), [bm.randn(1, 2)])
    with pytest.raises(ValueError, match=r"\[quantize_model\].*observer"):
        Q.quantize_model(nn.Sequential(nn.Linear(2, 2)), [bm.randn(1, 2)], observer="histogram")
    with pytest.raises(TypeError, match=r"\[quantize_model\]"):
        Q.quantize_model("model", [])


FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(FASHION), reason="Fashion-MNIST (dataset-fashion-mnist) is not installed")
def test_article_cnn_on_fashion_mnist_int8_within_one_point(tmp_path):
    """The article's CNN trained briefly (8 steps of 64 images, a few seconds): int8 loses at
    most 1 point of test accuracy and its file is about 4x smaller."""
    from bigmodel.data.datasets import FashionMNIST
    from bigmodel.models import ArticleCNN

    def images(ds, n):
        return bm.tensor(((ds.data[:n].astype(np.float32)[:, None] / 255.0 - 0.286) / 0.353).astype(np.float32))

    train, test = FashionMNIST(FASHION, train=True), FashionMNIST(FASHION, train=False)
    x, y = images(train, 512), bm.tensor(train.targets.numpy()[:512])
    xt, yt = images(test, 500), test.targets.numpy()[:500]
    bm.manual_seed(0)
    model = ArticleCNN()
    opt = bm.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    for i in range(0, 512, 64):
        loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with bm.no_grad():
        float_acc = (model(xt).numpy().argmax(1) == yt).mean()
        float_path = os.path.join(tmp_path, "cnn.safetensors")
        bm.save(model.state_dict(), float_path)
        Q.quantize_model(model, [x[:128], x[128:256]])
        int8_acc = (model(xt).numpy().argmax(1) == yt).mean()
    q_path = os.path.join(tmp_path, "cnn_int8.safetensors")
    Q.save_quantized(model, q_path)
    assert float_acc > 0.5  # it learnt something (chance is 0.1)
    assert int8_acc >= float_acc - 0.01, (float_acc, int8_acc)
    ratio = os.path.getsize(float_path) / os.path.getsize(q_path)
    assert 3.8 < ratio <= 4.0, ratio
