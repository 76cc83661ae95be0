"""CNN modules: Conv2d / pooling / Flatten / Dropout shapes and behaviour, PyTorch-style
initialisation bounds, state_dict names as PyTorch spells them, the article's CNN and the
small ResNet, and a short real-data training run on Fashion-MNIST whose loss must fall."""
import math
import os

import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn, optim
from bigmodel.nn import functional as F
from bigmodel.models import ArticleCNN, ResNet, resnet_small
from conftest import assert_close


def np_conv2d(x, w, b, stride=1, padding=0):
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out + (b.reshape(1, -1, 1, 1) if b is not None else 0)


def test_conv2d_module_shapes_and_forward(rng):
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1).double()
    assert conv.weight.shape == (4, 3, 3, 3) and conv.bias.shape == (4,)
    assert conv.kernel_size == (3, 3) and conv.stride == (2, 2) and conv.padding == (1, 1)
    a = rng.standard_normal((2, 3, 7, 6))
    out = conv(bm.tensor(a))
    assert out.shape == (2, 4, 4, 3)
    ref = np_conv2d(a, conv.weight.detach().numpy(), conv.bias.detach().numpy(), stride=2, padding=1)
    assert_close(out, ref)
    same = nn.Conv2d(2, 2, 5, padding="same", bias=False)
    assert same.bias is None and list(same.state_dict()) == ["weight"]
    assert same(bm.randn(1, 2, 9, 8)).shape == (1, 2, 9, 8)


def test_conv2d_init_bounds_like_pytorch():
    bm.manual_seed(0)
    conv = nn.Conv2d(8, 16, (3, 5), groups=2)
    fan_in = 8 // 2 * 3 * 5
    # kaiming_uniform_(a=sqrt(5)): bound = sqrt(6 / ((1 + 5) * fan_in)) = 1 / sqrt(fan_in), as for the bias.
    bound = 1 / math.sqrt(fan_in)
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    assert w.shape == (16, 4, 3, 5)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(b).max() <= bound and np.std(w) > 0.5 * bound / math.sqrt(3)


def test_conv2d_bad_arguments():
    with pytest.raises(ValueError, match=r"\[Conv2d\].*divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"\[Conv2d\] padding_mode 'reflect'"):
        nn.Conv2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"\[Conv2d\].*'same'.*strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")


def test_pooling_modules(rng):
    a = rng.standard_normal((2, 3, 6, 6))
    x = bm.tensor(a)
    mx = nn.MaxPool2d(2)(x)
    assert_close(mx, a.reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5)))
    vals, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert_close(vals, mx.numpy()) and idx.dtype == bm.int64
    assert_close(nn.AvgPool2d(3)(x), a.reshape(2, 3, 2, 3, 2, 3).mean(axis=(3, 5)))
    assert_close(nn.AdaptiveAvgPool2d(1)(x), a.mean(axis=(2, 3), keepdims=True))
    assert nn.AdaptiveAvgPool2d((3, 2))(x).shape == (2, 3, 3, 2)
    assert_close(F.flatten(x, 1), a.reshape(2, -1))
    assert nn.Flatten()(x).shape == (2, 108)


def test_dropout_train_and_eval():
    bm.manual_seed(3)
    drop = nn.Dropout(0.5)
    x = bm.ones(1000)
    y = drop(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 350 < (y == 0).sum() < 650
    drop.eval()
    assert (drop(x).numpy() == 1).all()


def test_article_cnn_state_dict_names_and_shapes():
    model = ArticleCNN()
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == [
        ("conv1.weight", (32, 1, 3, 3)), ("conv1.bias", (32,)), ("conv2.weight", (64, 32, 3, 3)),
        ("conv2.bias", (64,)), ("fc1.weight", (128, 9216)), ("fc1.bias", (128,)), ("fc2.weight", (10, 128)),
        ("fc2.bias", (10,))]
    assert model(bm.randn(2, 1, 28, 28)).shape == (2, 10)


def test_resnet_names_follow_torchvision_and_batchnorm_modes():
    model = ResNet(blocks=(1, 1), widths=(4, 8))
    keys = list(model.state_dict())
    for k in ("conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer1.0.bn2.num_batches_tracked",
              "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_mean", "fc.weight", "fc.bias"):
        assert k in keys, k
    assert "layer1.0.downsample.0.weight" not in keys  # same width and stride: identity shortcut
    x = bm.randn(3, 1, 12, 12)
    assert model(x).shape == (3, 10)
    assert int(model.bn1.num_batches_tracked.item()) == 1
    model.eval()
    first = model(x).detach().numpy()
    assert_close(model(x), first)  # eval: running stats, deterministic
    assert int(model.bn1.num_batches_tracked.item()) == 1
    assert resnet_small()(bm.randn(2, 1, 28, 28)).shape == (2, 10)


def test_resnet_gradients_reach_every_parameter():
    model = resnet_small(blocks=(1, 1, 1))
    F.cross_entropy(model(bm.randn(4, 1, 16, 16)), bm.tensor([0, 1, 2, 3])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.abs(p.grad.numpy()).sum() > 0, name


FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(FASHION), reason="dataset-fashion-mnist is not installed")
def test_article_cnn_learns_fashion_mnist_subset():
    from bigmodel.data import DataLoader, Subset
    from bigmodel.data import transforms as T
    from bigmodel.data.datasets import FashionMNIST
    bm.manual_seed(0)
    data = Subset(FashionMNIST(FASHION, train=True), np.arange(1536))
    loader = DataLoader(data, batch_size=64, shuffle=True, seed=0, transform=T.Normalize([0.286], [0.353]))
    model = ArticleCNN()
    opt = optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    losses = []
    for images, labels in loader:  # 24 steps
        loss = F.cross_entropy(model(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert np.mean(losses[:3]) > 2.0
    assert np.mean(losses[-4:]) < 0.6 * np.mean(losses[:3]), losses
