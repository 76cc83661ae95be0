"""PyTorch parity sweep, torch.distributions: log_prob, entropy, moments, kl_divergence,
sample shapes and dtypes, and reparameterised gradients (see _parity.py)."""
import numpy as np

from _parity import bm, cases, check

R = np.random.default_rng(17)
LOC = R.standard_normal((3, 2))
SCALE = np.abs(R.standard_normal((3, 2))) + 0.3
X = R.standard_normal((3, 2))
LOGITS = R.standard_normal((3, 4))
PROBS = np.abs(R.standard_normal((3, 4))) + 0.1
BP = 1 / (1 + np.exp(-R.standard_normal((3, 2))))


def D(lib):
    return lib.distributions


def _normal(lib):
    n = D(lib).Normal(lib.tensor(LOC), lib.tensor(SCALE))
    return n.log_prob(lib.tensor(X)), n.entropy(), n.mean, n.stddev, n.variance, n.cdf(lib.tensor(X)), n.batch_shape
def _normal_scalar_params(lib):
    n = D(lib).Normal(0.0, 1.0)
    return n.log_prob(lib.tensor(X)), n.rsample((5,)).shape
def _normal_rsample_grad(lib):
    loc = lib.tensor(LOC, requires_grad=True)
    scale = lib.tensor(SCALE, requires_grad=True)
    s = D(lib).Normal(loc, scale).rsample((4,))
    s.sum().backward()
    return s.shape, s.dtype, loc.grad
def _normal_sample_no_grad(lib):
    loc = lib.tensor(LOC, requires_grad=True)
    s = D(lib).Normal(loc, 1.0).sample((2,))
    return s.requires_grad, s.shape
def _categorical(lib):
    c = D(lib).Categorical(logits=lib.tensor(LOGITS))
    v = lib.tensor([0, 3, 1])
    return c.log_prob(v), c.entropy(), c.probs, c.logits, c.batch_shape
def _categorical_probs(lib):
    c = D(lib).Categorical(probs=lib.tensor(PROBS))
    return c.probs, c.log_prob(lib.tensor([1, 1, 2])), c.entropy()
def _categorical_sample(lib):
    lib.manual_seed(0)
    c = D(lib).Categorical(logits=lib.tensor(LOGITS))
    s = c.sample()
    t = c.sample((5,))
    return s.shape, s.dtype, t.shape, bool(((t >= 0) & (t < 4)).all())
def _categorical_policy_gradient(lib):
    logits = lib.tensor(LOGITS, requires_grad=True)
    dist = D(lib).Categorical(logits=logits)
    loss = -(dist.log_prob(lib.tensor([2, 0, 1])) * lib.tensor([1.0, -0.5, 2.0])).sum() - 0.01 * dist.entropy().sum()
    loss.backward()
    return logits.grad
def _bernoulli(lib):
    b = D(lib).Bernoulli(probs=lib.tensor(BP))
    v = lib.tensor((BP > 0.5).astype(np.float64))
    return b.log_prob(v), b.entropy(), b.mean, b.variance
def _bernoulli_logits_sample(lib):
    b = D(lib).Bernoulli(logits=lib.tensor(LOC))
    s = b.sample((2,))
    return s.shape, s.dtype, bool(((s == 0) | (s == 1)).all()), b.probs
def _uniform(lib):
    u = D(lib).Uniform(lib.tensor(LOC), lib.tensor(LOC + SCALE))
    return u.log_prob(lib.tensor(LOC + SCALE / 2)), u.entropy(), u.mean, u.variance, u.rsample((3,)).shape
def _kl(lib):
    kl = D(lib).kl_divergence
    n1, n2 = D(lib).Normal(lib.tensor(LOC), lib.tensor(SCALE)), D(lib).Normal(lib.tensor(X), lib.tensor(SCALE * 2))
    c1, c2 = D(lib).Categorical(logits=lib.tensor(LOGITS)), D(lib).Categorical(probs=lib.tensor(PROBS))
    b1, b2 = D(lib).Bernoulli(probs=lib.tensor(BP)), D(lib).Bernoulli(logits=lib.tensor(LOC))
    return kl(n1, n2), kl(c1, c2), kl(b1, b2)


@cases(_normal, _normal_scalar_params, _normal_rsample_grad, _normal_sample_no_grad, _categorical, _categorical_probs,
       _categorical_sample, _categorical_policy_gradient, _bernoulli, _bernoulli_logits_sample, _uniform, _kl)
def test_distributions(case):
    check(case, atol=1e-6, rtol=1e-5)


def test_samples_follow_the_distribution():
    bm.manual_seed(1)
    s = bm.distributions.Normal(bm.tensor([2.0]), bm.tensor([0.5])).sample((4000,)).numpy()
    assert abs(s.mean() - 2.0) < 0.05 and abs(s.std() - 0.5) < 0.05
    counts = np.bincount(bm.distributions.Categorical(probs=bm.tensor([0.1, 0.0, 0.9])).sample((4000,)).numpy(),
                         minlength=3)
    assert counts[1] == 0 and abs(counts[2] / 4000 - 0.9) < 0.03
