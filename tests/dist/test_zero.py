"""ZeroRedundancyOptimizer (ZeRO-1) over MPI: it trains to the same parameters as plain
DDP with the same optimizer, each rank keeps only its 1/world_size shard of the state, the
consolidated state dict is the plain optimizer's and round-trips, and bad arguments raise."""
import importlib.util
import os

import numpy as np
import pytest

import bigmodel as bm
import bigmodel.distributed as dist
from bigmodel import nn, optim
from bigmodel.distributed.optim import ZeroRedundancyOptimizer
from bigmodel.nn.parallel import DistributedDataParallel as DDP


def make_model(seed):
    bm.manual_seed(seed)
    # 7*5+5 + 5*3+3 = 58 elements: odd sizes, so the flat shards cut through parameters.
    return nn.Sequential(nn.Linear(7, 5), nn.Tanh(), nn.Linear(5, 3))


def batch(rank, step):
    g = np.random.default_rng(1000 + 100 * step + rank)
    return (bm.tensor(g.standard_normal((6, 7)), dtype=bm.float32),
            bm.tensor(g.standard_normal((6, 3)), dtype=bm.float32))


def groups_of(model, grouped):
    params = list(model.parameters())
    if not grouped:
        return params
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, "lr": 0.02}]


def train(model, opt, steps, sched=None):
    r = dist.get_rank()
    for step in range(steps):
        x, y = batch(r, step)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        if sched is not None:
            sched.step()


def params_np(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


def gathered(a):
    t = bm.tensor(a)
    out = [bm.zeros(*a.shape, dtype=t.dtype) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return [o.numpy() for o in out]


@pytest.mark.parametrize("cls,kwargs,grouped", [
    (optim.Adam, dict(lr=0.05), False),
    (optim.AdamW, dict(lr=0.05, betas=(0.9, 0.99)), True),
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), False),
])
@pytest.mark.parametrize("reduce_grads", [True, False])
def test_zero_matches_ddp(cls, kwargs, grouped, reduce_grads):
    r = dist.get_rank()
    ref = DDP(make_model(seed=5))
    ref_opt = cls(groups_of(ref.module, grouped), **kwargs)
    ref_sched = optim.lr_scheduler.StepLR(ref_opt, step_size=2, gamma=0.5)
    # reduce_grads=True: an unwrapped model, ZeRO reduce-scatters the gradients itself;
    # False: DDP averages them and ZeRO only slices. Rank 1 starts from other values: the
    # constructor broadcasts rank 0's.
    model = make_model(seed=5 + r)
    net = model if reduce_grads else DDP(model)
    zero = ZeroRedundancyOptimizer(groups_of(model, grouped), optimizer_class=cls, reduce_grads=reduce_grads,
                                   **kwargs)
    sched = optim.lr_scheduler.StepLR(zero, step_size=2, gamma=0.5)  # schedulers see the full groups
    train(ref, ref_opt, 5, ref_sched)
    train(net, zero, 5, sched)
    assert zero.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"] < kwargs["lr"]
    mine = params_np(model)
    for a in mine:
        for other in gathered(a):
            np.testing.assert_array_equal(other, a)  # every rank holds the same parameters
    for a, e in zip(mine, params_np(ref.module)):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def test_each_rank_holds_only_its_shard():
    n, r = dist.get_world_size(), dist.get_rank()
    ref = DDP(make_model(seed=7))
    ref_opt = optim.Adam(ref.parameters(), lr=0.01)
    model = make_model(seed=7)
    zero = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=optim.Adam, lr=0.01)
    train(ref, ref_opt, 3)
    train(model, zero, 3)
    numel = sum(p.numel() for p in model.parameters())  # 58
    shard = -(-numel // n)
    assert [b.shard_size for b in zero._buckets] == [shard]
    # exp_avg + exp_avg_sq over the shard, plus the 4-byte step counter.
    assert zero.local_state_bytes() == 2 * shard * 4 + 4
    full_bytes = sum(v.numel() * v.element_size() for s in ref_opt.state.values() for v in s.values())
    assert zero.local_state_bytes() < full_bytes / n + 4 * n + 8
    # The shard's moments are this rank's slice of the plain optimizer's, flattened.
    for key in ("exp_avg", "exp_avg_sq"):
        flat = np.concatenate([ref_opt.state[p][key].numpy().reshape(-1) for p in ref.parameters()])
        flat = np.concatenate([flat, np.zeros(shard * n - numel, np.float32)])
        (local,) = [s[key].numpy() for s in zero.optim.state.values()]
        assert local.shape == (shard,)
        np.testing.assert_allclose(local, flat[r * shard:(r + 1) * shard], rtol=1e-5, atol=1e-7)


def full_state_on_every_rank(zero):
    sd = None
    for to in range(dist.get_world_size()):
        zero.consolidate_state_dict(to=to)
        if dist.get_rank() == to:
            sd = zero.state_dict()
        else:
            with pytest.raises(RuntimeError, match="consolidated to rank"):
                zero.state_dict()
    return sd


def test_state_dict_round_trip():
    ref = DDP(make_model(seed=9))
    ref_opt = optim.AdamW(groups_of(ref.module, True), lr=0.03)
    model = make_model(seed=9)
    zero = ZeroRedundancyOptimizer(groups_of(model, True), optimizer_class=optim.AdamW, lr=0.03)
    train(ref, ref_opt, 3)
    train(model, zero, 3)
    sd = full_state_on_every_rank(zero)
    # The consolidated dict has the plain optimizer's layout and values.
    plain = ref_opt.state_dict()
    assert sorted(sd["state"]) == sorted(plain["state"]) == [0, 1, 2, 3]
    for i, s in plain["state"].items():
        assert sorted(sd["state"][i]) == sorted(s)
        for k, v in s.items():
            np.testing.assert_allclose(sd["state"][i][k].numpy(), v.numpy(), rtol=1e-5, atol=1e-7)
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in plain["param_groups"]]
    assert sd["param_groups"][1]["lr"] == 0.02 and sd["param_groups"][1]["weight_decay"] == 0.0

    # A fresh ZeRO loaded from it continues exactly like the original, though the model's
    # parameters are loaded only after the optimizer was built (the shards follow them).
    model2 = make_model(seed=11)
    zero2 = ZeroRedundancyOptimizer(groups_of(model2, True), optimizer_class=optim.AdamW, lr=0.5)
    zero2.load_state_dict(sd)
    with bm.no_grad():
        for p, q in zip(model2.parameters(), model.parameters()):
            p.copy_(q)
    assert zero2.param_groups[0]["lr"] == 0.03
    assert zero2.local_state_bytes() == zero.local_state_bytes()
    train(model, zero, 2)
    train(model2, zero2, 2)
    for a, b in zip(params_np(model), params_np(model2)):
        np.testing.assert_array_equal(a, b)

    # And a plain optimizer's state dict loads into ZeRO (and back).
    zero3 = ZeroRedundancyOptimizer(groups_of(make_model(seed=9), True), optimizer_class=optim.AdamW, lr=0.03)
    zero3.load_state_dict(plain)
    back = full_state_on_every_rank(zero3)
    for i, s in plain["state"].items():
        for k, v in s.items():
            np.testing.assert_array_equal(back["state"][i][k].numpy(), v.numpy())


def test_bad_arguments_raise():
    model = make_model(seed=1)
    with pytest.raises(TypeError, match="ZeroRedundancyOptimizer"):
        ZeroRedundancyOptimizer(model.parameters(), optimizer_class=dict, lr=0.1)
    with pytest.raises(TypeError):
        ZeroRedundancyOptimizer(list(model.parameters())[0], optimizer_class=optim.Adam)
    with pytest.raises(ValueError, match="process_group"):
        ZeroRedundancyOptimizer(model.parameters(), optimizer_class=optim.Adam, process_group="world")
    with pytest.raises(ValueError, match="learning rate"):
        ZeroRedundancyOptimizer(model.parameters(), optimizer_class=optim.Adam, lr=-1.0)
    with pytest.raises(ValueError, match="skip_nonfinite"):
        ZeroRedundancyOptimizer(model.parameters(), optimizer_class=optim.Adam, skip_nonfinite=True)
    with pytest.raises(ValueError, match="empty"):
        ZeroRedundancyOptimizer([], optimizer_class=optim.Adam)
    zero = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=optim.Adam, lr=0.1)
    with pytest.raises(RuntimeError, match="consolidate_state_dict"):
        zero.state_dict()
    with pytest.raises(ValueError, match="not in"):
        zero.consolidate_state_dict(to=dist.get_world_size())
    with pytest.raises(NotImplementedError, match="add_param_group"):
        zero.add_param_group({"params": [bm.zeros(2, requires_grad=True)]})
    with pytest.raises(ValueError, match="parameter groups"):
        zero.load_state_dict({"state": {}, "param_groups": []})
    shapes = [tuple(p.shape) for p in model.parameters()]
    state = {i: {"step": bm.tensor(1.0), "exp_avg": bm.ones(*s), "exp_avg_sq": bm.ones(*s)}
             for i, s in enumerate(shapes)}
    state[1]["exp_avg"] = bm.ones(2)  # the bias has 5 elements
    with pytest.raises(ValueError, match="shape"):
        zero.load_state_dict({"state": state, "param_groups": [dict(zero.param_groups[0], params=[0, 1, 2, 3])]})


def test_train_gpt_ddp_and_zero(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location("example_train_gpt", os.path.join(root, "examples", "train_gpt.py"))
    gpt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpt)
    words = "the quick brown fox jumps over a lazy dog while you will be happy today".split()
    text = "\n%\n".join(" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(9)) for i in range(120))
    (tmp_path / "fortunes").mkdir()
    (tmp_path / "fortunes" / "cookies").write_text(text, encoding="utf-8")
    n = dist.get_world_size()

    def run(out, batch, *extra):
        return gpt.main(["--root", str(tmp_path / "fortunes"), "--out", str(tmp_path / out), "--steps", "5",
                         "--batch-size", str(batch), "--block-size", "12", "--n-layer", "1", "--n-head", "2",
                         "--n-embd", "16", "--warmup", "2", "--eval-every", "5", "--eval-batches", "1",
                         "--sample-len", "6", "--save-every", "100", "--no-plot", *extra])["losses"]

    single = run("single", 3 * n)  # every rank alone, on the union of the ranks' batches
    ddp = run("ddp", 3, "--ddp")
    zero = run("zero", 3, "--zero")
    assert len(ddp) == 5 and ddp[-1] < ddp[0]
    np.testing.assert_allclose(ddp, single, rtol=1e-4)
    assert zero == ddp
    assert all(g == ddp for g in [list(x) for x in gathered(np.array(ddp))])  # every rank reports the same
