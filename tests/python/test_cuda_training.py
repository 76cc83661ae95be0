"""cuda tier, end to end (issue 3's "done when"): the foundation's MLP, the article's CNN and a
small GPT train on the GPU with the same losses as on the CPU, step for step, from the same
initial weights and batches. Every op of a training step runs on the device here, so this
is the first test to read when a kernel is wrong. Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn, optim

pytestmark = pytest.mark.skipif(not bm.cuda.is_available(), reason="no CUDA GPU visible")


def fashion_batches(n_batches, batch=64):
    try:
        from bigmodel.data.datasets import FashionMNIST
        images, labels = FashionMNIST(train=True).get_batch(np.arange(n_batches * batch))
        images = (images - 0.2860) / 0.3530
    except (FileNotFoundError, RuntimeError, OSError):  # dataset not installed: seeded noise
        rng = np.random.default_rng(0)
        images = bm.tensor(rng.standard_normal((n_batches * batch, 1, 28, 28)), dtype=bm.float32)
        labels = bm.tensor(rng.integers(0, 10, n_batches * batch))
    return [(images[i * batch:(i + 1) * batch], labels[i * batch:(i + 1) * batch]) for i in range(n_batches)]


def train(model, batches, device, make_opt, loss_fn):
    model = model.to(device)
    opt = make_opt(model.parameters())
    losses = []
    for x, y in batches:
        opt.zero_grad()
        loss = loss_fn(model, x.to(device), y.to(device))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses), model


def classify_loss(model, x, y):
    return nn.functional.cross_entropy(model(x), y)


def twin_models(build, seed=0):
    bm.manual_seed(seed)
    a = build()
    b = build()
    b.load_state_dict(a.state_dict())
    return a, b


def check_same_training(build, batches, make_opt, loss_fn, rtol):
    cpu_model, gpu_model = twin_models(build)
    cpu_losses, cpu_model = train(cpu_model, batches, "cpu", make_opt, loss_fn)
    gpu_losses, gpu_model = train(gpu_model, batches, "cuda", make_opt, loss_fn)
    assert cpu_losses[-1] < cpu_losses[0], "the reference run did not learn: the test would prove nothing"
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=rtol, atol=1e-5)
    for (name, p), q in zip(cpu_model.named_parameters(), gpu_model.parameters()):
        np.testing.assert_allclose(q.detach().cpu().numpy(), p.detach().numpy(), rtol=rtol * 10, atol=1e-4,
                                   err_msg=name)


def test_mlp_trains_like_on_the_cpu():
    def build():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                             nn.Linear(128, 10))
    check_same_training(build, fashion_batches(20), lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
                        classify_loss, rtol=1e-4)


def test_article_cnn_trains_like_on_the_cpu():
    from bigmodel.models import ArticleCNN

    def build():
        m = ArticleCNN()
        m.eval()  # dropout off: the masks are equal on both devices only if the RNG kernels are
        return m
    check_same_training(build, fashion_batches(8), lambda p: optim.SGD(p, lr=0.01, momentum=0.9),
                        classify_loss, rtol=1e-3)


def test_small_gpt_trains_like_on_the_cpu():
    from bigmodel.models.gpt import GPT, GPTConfig
    cfg = GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=4, n_embd=64, dropout=0.0)
    rng = np.random.default_rng(1)
    # Learnable sequences (arithmetic progressions mod 97), so the reference loss falls.
    start = rng.integers(0, 97, size=(10, 8, 1))
    step = rng.integers(1, 4, size=(10, 8, 1))
    text = (start + step * np.arange(33)) % 97
    batches = [(bm.tensor(t[:, :-1]), bm.tensor(t[:, 1:])) for t in text]

    def lm_loss(model, idx, targets):
        return model(idx, targets)[1]

    check_same_training(lambda: GPT(cfg), batches, lambda p: optim.AdamW(p, lr=3e-3, weight_decay=0.1), lm_loss,
                        rtol=1e-3)
