"""PyTorch parity sweep, optimizers, LR schedulers and data loading: update rules with
per-group options, state_dict round trips, scheduler sequences, DataLoader batching, shuffling
with a generator, drop_last, collation, random_split and Subset (see _parity.py)."""
import numpy as np

from _parity import cases, check, data_mod, xfail

R = np.random.default_rng(13)
X = R.standard_normal((6, 4)).astype(np.float64)
W0 = R.standard_normal((4, 3)).astype(np.float64)
B0 = R.standard_normal(3).astype(np.float64)


def _params(lib):
    return [lib.nn.Parameter(lib.tensor(W0)), lib.nn.Parameter(lib.tensor(B0))]


def _loss(lib, w, b):
    return ((lib.tensor(X) @ w + b).tanh() ** 2).sum()


def _train(lib, make_opt, steps=4, params=None):
    w, b = params or _params(lib)
    opt = make_opt([w, b])
    for _ in range(steps):
        opt.zero_grad()
        _loss(lib, w, b).backward()
        opt.step()
    return w, b


def _sgd(lib): return _train(lib, lambda p: lib.optim.SGD(p, lr=0.1))
def _sgd_momentum_nesterov_wd(lib):
    return _train(lib, lambda p: lib.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01))
def _sgd_dampening(lib): return _train(lib, lambda p: lib.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3))
def _adam(lib): return _train(lib, lambda p: lib.optim.Adam(p, lr=0.01))
def _adam_options(lib):
    return _train(lib, lambda p: lib.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True))
def _adamw(lib): return _train(lib, lambda p: lib.optim.AdamW(p, lr=0.01, weight_decay=0.1))
def _rmsprop(lib): return _train(lib, lambda p: lib.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True))
def _adagrad(lib): return _train(lib, lambda p: lib.optim.Adagrad(p, lr=0.1))
def _adamax(lib): return _train(lib, lambda p: lib.optim.Adamax(p, lr=0.02, weight_decay=0.01))
@xfail("torch 1.13's NAdam multiplies mu twice into mu_product_next (fixed in PyTorch 2.x); bm follows the fixed rule")
def _nadam(lib): return _train(lib, lambda p: lib.optim.NAdam(p, lr=0.02, weight_decay=0.01), steps=6)
def _radam(lib): return _train(lib, lambda p: lib.optim.RAdam(p, lr=0.02, weight_decay=0.01), steps=8)
def _adadelta(lib): return _train(lib, lambda p: lib.optim.Adadelta(p, lr=0.5, weight_decay=0.01))
def _new_optimizer_state_keys(lib):
    out = []
    for make in (lambda p: lib.optim.Adamax(p), lambda p: lib.optim.NAdam(p), lambda p: lib.optim.RAdam(p),
                 lambda p: lib.optim.Adadelta(p)):
        w, b = _params(lib)
        opt = make([w, b])
        _loss(lib, w, b).backward()
        opt.step()
        out.append(sorted(opt.state_dict()["state"][0].keys()))
    return out
def _param_groups_lr(lib):
    def make(p):
        return lib.optim.SGD([{"params": [p[0]]}, {"params": [p[1]], "lr": 0.5}], lr=0.01, momentum=0.9)
    return _train(lib, make)
@xfail("param group option keys differ: bm has master_weights and no capturable/differentiable")
def _param_groups_keys(lib):
    w, b = _params(lib)
    opt = lib.optim.Adam([{"params": [w]}, {"params": [b], "lr": 0.1}], lr=0.01)
    return [sorted(k for k in g if k != "params") for g in opt.param_groups], [g["lr"] for g in opt.param_groups]
def _add_param_group(lib):
    w, b = _params(lib)
    opt = lib.optim.SGD([w], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.2})
    return len(opt.param_groups), opt.param_groups[1]["lr"], opt.param_groups[1]["momentum"]
def _change_lr_in_place(lib):
    w, b = _params(lib)
    opt = lib.optim.SGD([w, b], lr=1.0)
    for g in opt.param_groups:
        g["lr"] = 0.01
    opt.zero_grad()
    _loss(lib, w, b).backward()
    opt.step()
    return w
@xfail("bm follows PyTorch 2.x: optimizer.zero_grad() sets .grad to None; torch 1.13 zeroes it")
def _zero_grad_set_to_none(lib):
    w, b = _params(lib)
    opt = lib.optim.SGD([w, b], lr=0.1)
    _loss(lib, w, b).backward()
    opt.zero_grad()
    n = w.grad is None
    _loss(lib, w, b).backward()
    opt.zero_grad(set_to_none=False)
    return n, w.grad
def _step_skips_none_grads(lib):
    w, b = _params(lib)
    opt = lib.optim.Adam([w, b], lr=0.1)
    (lib.tensor(X) @ w).sum().backward()
    opt.step()
    return b, len(opt.state)
def _optimizer_state_dict_roundtrip(lib):
    w, b = _params(lib)
    opt = lib.optim.Adam([w, b], lr=0.01)
    for _ in range(2):
        opt.zero_grad()
        _loss(lib, w, b).backward()
        opt.step()
    sd = opt.state_dict()
    w2, b2 = lib.nn.Parameter(w.detach().clone()), lib.nn.Parameter(b.detach().clone())
    opt2 = lib.optim.Adam([w2, b2], lr=0.5)
    opt2.load_state_dict(sd)
    for o, (p, q) in ((opt, (w, b)), (opt2, (w2, b2))):
        o.zero_grad()
        _loss(lib, p, q).backward()
        o.step()
    return w2, b2, w, sorted(sd.keys()), sorted(sd["state"][0].keys()), list(sd["state"].keys()), \
        sd["param_groups"][0]["params"], opt2.param_groups[0]["lr"]
def _optimizer_empty_params_raises(lib): return lib.optim.SGD([], lr=0.1)
def _optimizer_negative_lr_raises(lib): return lib.optim.SGD(_params(lib), lr=-1.0)
def _optimizer_closure(lib):
    w, b = _params(lib)
    opt = lib.optim.SGD([w, b], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = _loss(lib, w, b)
        loss.backward()
        return loss
    return opt.step(closure), w


def _lrs(lib, make_sched, steps=8, lr=0.1):
    w, b = _params(lib)
    opt = lib.optim.SGD([w, b], lr=lr, momentum=0.9)
    sched = make_sched(opt)
    out = []
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(round(opt.param_groups[0]["lr"], 12))
    return out, [round(v, 12) for v in sched.get_last_lr()]
def _step_lr(lib): return _lrs(lib, lambda o: lib.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5))
def _multistep_lr(lib): return _lrs(lib, lambda o: lib.optim.lr_scheduler.MultiStepLR(o, [2, 5], gamma=0.1))
def _exponential_lr(lib): return _lrs(lib, lambda o: lib.optim.lr_scheduler.ExponentialLR(o, 0.9))
def _cosine_lr(lib): return _lrs(lib, lambda o: lib.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6, eta_min=0.01))
def _linear_lr(lib): return _lrs(lib, lambda o: lib.optim.lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=4))
def _lambda_lr(lib): return _lrs(lib, lambda o: lib.optim.lr_scheduler.LambdaLR(o, lambda e: 1.0 / (e + 1)))
def _onecycle_lr(lib): return _lrs(lib, lambda o: lib.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=10))
def _sequential_lr(lib):
    sch = lib.optim.lr_scheduler

    def make(o):
        return sch.SequentialLR(o, [sch.LinearLR(o, start_factor=0.5, total_iters=2),
                                    sch.ExponentialLR(o, gamma=0.8)], milestones=[2])
    return _lrs(lib, make)
def _constant_lr(lib): return _lrs(lib, lambda o: lib.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=3))
def _reduce_on_plateau(lib):
    w, b = _params(lib)
    opt = lib.optim.SGD([w, b], lr=1.0)
    s = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    out = []
    for loss in [1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7]:
        s.step(loss)
        out.append(opt.param_groups[0]["lr"])
    return out
def _cosine_warm_restarts(lib):
    return _lrs(lib, lambda o: lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.01),
                steps=12)
def _cosine_warm_restarts_fractional(lib):
    w, b = _params(lib)
    opt = lib.optim.SGD([w, b], lr=0.1)
    s = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2)
    out = []
    for epoch in range(3):
        for i in range(4):
            s.step(epoch + i / 4)
            out.append(round(opt.param_groups[0]["lr"], 12))
    return out
def _multiplicative_lr(lib): return _lrs(lib, lambda o: lib.optim.lr_scheduler.MultiplicativeLR(o, lambda e: 0.9))
def _polynomial_lr(lib):
    return _lrs(lib, lambda o: lib.optim.lr_scheduler.PolynomialLR(o, total_iters=5, power=2.0))
def _cyclic_lr(lib):
    w, b = _params(lib)
    opt = lib.optim.SGD([w, b], lr=0.1, momentum=0.9)
    s = lib.optim.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=3, mode="triangular2")
    out = []
    for _ in range(14):
        opt.step()
        s.step()
        out.append((round(opt.param_groups[0]["lr"], 12), round(opt.param_groups[0]["momentum"], 12)))
    return out
def _chained_scheduler(lib):
    sch = lib.optim.lr_scheduler
    w, b = _params(lib)
    opt = lib.optim.SGD([w, b], lr=1.0)
    s = sch.ChainedScheduler([sch.ConstantLR(opt, factor=0.5, total_iters=2), sch.ExponentialLR(opt, gamma=0.9)])
    out = []
    for _ in range(4):
        opt.step()
        s.step()
        out.append(round(opt.param_groups[0]["lr"], 12))
    return out
def _scheduler_initial_lr(lib):
    w, b = _params(lib)
    opt = lib.optim.SGD([w, b], lr=0.3)
    lib.optim.lr_scheduler.StepLR(opt, 2)
    return opt.param_groups[0]["initial_lr"], opt.param_groups[0]["lr"]
@xfail("bm's schedules are closed-form in last_epoch; torch's chainable StepLR reads the optimizer's "
       "current lr, so restoring only the scheduler (not the optimizer) gives a different lr")
def _scheduler_state_dict(lib):
    w, b = _params(lib)
    opt = lib.optim.SGD([w, b], lr=0.3)
    s = lib.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)
    for _ in range(3):
        opt.step()
        s.step()
    sd = s.state_dict()
    opt2 = lib.optim.SGD(_params(lib), lr=0.3)
    s2 = lib.optim.lr_scheduler.StepLR(opt2, 2, gamma=0.5)
    s2.load_state_dict(sd)
    opt2.step()
    s2.step()
    return sd["last_epoch"], s2.get_last_lr()

def _scheduler_resume_with_optimizer(lib):
    w, b = _params(lib)
    opt = lib.optim.SGD([w, b], lr=0.3)
    s = lib.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)
    for _ in range(3):
        opt.step()
        s.step()
    osd, ssd = opt.state_dict(), s.state_dict()
    opt2 = lib.optim.SGD(_params(lib), lr=0.3)
    s2 = lib.optim.lr_scheduler.StepLR(opt2, 2, gamma=0.5)
    opt2.load_state_dict(osd)
    s2.load_state_dict(ssd)
    out = []
    for _ in range(3):
        opt2.step()
        s2.step()
        out.append(round(opt2.param_groups[0]["lr"], 12))
    return out


# ---- a whole training script ----
XS = R.standard_normal((24, 5)).astype(np.float32)
YS = (XS[:, 0] + XS[:, 1] > 0).astype(np.int64)


def _training_script(lib):
    """What a user writes first: model, loss, optimizer, scheduler, loader, eval with no_grad."""
    nn, F = lib.nn, lib.nn.functional
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.0), nn.Linear(8, 2))
    with lib.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(lib.tensor(np.random.default_rng(i).standard_normal(tuple(p.shape)).astype(np.float32) * 0.3))
    device = lib.device("cpu")
    model.to(device)
    opt = lib.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.01)
    sched = lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=6)
    loader = data_mod(lib).DataLoader(data_mod(lib).TensorDataset(lib.from_numpy(XS), lib.from_numpy(YS)),
                                      batch_size=8)
    losses = []
    for epoch in range(3):
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            lib.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            opt.step()
            losses.append(loss.item())
        sched.step()
    model.eval()
    with lib.no_grad():
        logits = model(lib.from_numpy(XS))
        acc = (logits.argmax(dim=1) == lib.from_numpy(YS)).float().mean().item()
    return losses, acc, logits
def _save_load_state_dict(lib):
    import os
    import tempfile
    m = lib.nn.Linear(3, 2)
    path = os.path.join(tempfile.mkdtemp(), "m.pt")
    lib.save(m.state_dict(), path)
    m2 = lib.nn.Linear(3, 2)
    m2.load_state_dict(lib.load(path))
    return bool((m2.weight == m.weight).all()), bool((m2.bias == m.bias).all()), sorted(lib.load(path).keys())
def _save_load_checkpoint_dict(lib):
    import os
    import tempfile
    m = lib.nn.Linear(3, 2)
    opt = lib.optim.Adam(m.parameters(), lr=0.1)
    m(lib.ones(1, 3)).sum().backward()
    opt.step()
    path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
    lib.save({"model": m.state_dict(), "optim": opt.state_dict(), "epoch": 3}, path)
    ck = lib.load(path)
    m2 = lib.nn.Linear(3, 2)
    m2.load_state_dict(ck["model"])
    opt2 = lib.optim.Adam(m2.parameters(), lr=0.1)
    opt2.load_state_dict(ck["optim"])
    return ck["epoch"], bool((m2.weight == m.weight).all()), sorted(opt2.state_dict()["state"][0].keys())

@xfail("bm.save writes a safe format (tensors, containers, numbers, strings); it does not pickle whole modules")
def _save_whole_model(lib):
    import os
    import tempfile
    path = os.path.join(tempfile.mkdtemp(), "whole.pt")
    lib.save(lib.nn.Linear(2, 2), path)
    return type(lib.load(path)).__name__
def _custom_optimizer_subclass(lib):
    class MySGD(lib.optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        @lib.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    st = self.state[p]
                    st["n"] = st.get("n", 0) + 1
                    p.add_(p.grad, alpha=-group["lr"])
    w, b = _params(lib)
    opt = MySGD([w, b], lr=0.05)
    for _ in range(2):
        opt.zero_grad()
        _loss(lib, w, b).backward()
        opt.step()
    return w, opt.state_dict()["state"], opt.param_groups[0]["lr"]
def _compile_and_worker_info(lib):
    m = lib.nn.Linear(2, 2)
    if not hasattr(lib, "compile"):  # torch < 2.0: compile did not exist; it is the identity here
        return True, data_mod(lib).get_worker_info()
    return lib.compile(m) is m, data_mod(lib).get_worker_info()
def _script_preamble(lib):
    """The lines at the top of many training scripts."""
    lib.backends.cudnn.benchmark = True
    lib.backends.cudnn.deterministic = False
    lib.manual_seed(0)
    lib.cuda.manual_seed_all(0)
    device = lib.device("cuda" if lib.cuda.is_available() else "cpu")
    return str(device), lib.backends.cudnn.benchmark, lib.cuda.device_count()
def _autocast_cpu_bf16(lib):
    lin = lib.nn.Linear(3, 2)
    with lib.autocast(device_type="cpu", dtype=lib.bfloat16):
        y = lin(lib.ones(4, 3))
        s = lib.softmax(y.float(), -1)
    return y.dtype, s.dtype, lin.weight.dtype
def _grad_scaler_disabled_passthrough(lib):
    w, b = _params(lib)
    opt = lib.optim.SGD([w, b], lr=0.1)
    scaler = lib.cuda.amp.GradScaler(enabled=False)
    with lib.cuda.amp.autocast(enabled=False):
        loss = _loss(lib, w, b)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()
    return w, scaler.is_enabled()


# ---- data ----
def _ds(lib):
    return data_mod(lib).TensorDataset(lib.tensor(np.arange(10.0).reshape(10, 1)), lib.arange(10))
def _tensor_dataset_item(lib):
    ds = _ds(lib)
    return len(ds), ds[3], type(ds[3]).__name__
@xfail("torch checks with a bare assert (AssertionError); bm raises ValueError naming the shapes")
def _tensor_dataset_size_mismatch_raises(lib): return data_mod(lib).TensorDataset(lib.zeros(3), lib.zeros(4))
def _loader_batches(lib): return list(data_mod(lib).DataLoader(_ds(lib), batch_size=4))
def _loader_drop_last(lib):
    dl = data_mod(lib).DataLoader(_ds(lib), batch_size=4, drop_last=True)
    return len(dl), [b[1] for b in dl]
def _loader_len(lib):
    D = data_mod(lib)
    return len(D.DataLoader(_ds(lib), batch_size=3)), len(D.DataLoader(_ds(lib), batch_size=3, drop_last=True)), \
        len(D.DataLoader(_ds(lib)))
def _loader_shuffle_generator_is_permutation(lib):
    g = lib.Generator()
    g.manual_seed(3)
    dl = data_mod(lib).DataLoader(_ds(lib), batch_size=3, shuffle=True, generator=g)
    ys = lib.cat([y for _, y in dl])
    return sorted(ys.tolist()), ys.shape, ys.dtype
def _loader_shuffle_same_seed_same_order(lib):
    orders = []
    for _ in range(2):
        g = lib.Generator()
        g.manual_seed(7)
        dl = data_mod(lib).DataLoader(_ds(lib), batch_size=10, shuffle=True, generator=g)
        orders.append(next(iter(dl))[1].tolist())
    return orders[0] == orders[1], orders[0] != list(range(10))
def _collate_tuples_and_dicts(lib):
    class DS(data_mod(lib).Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"x": lib.ones(2) * i, "y": i, "w": float(i) / 2, "pair": (i, lib.tensor([i, i]))}
    return list(data_mod(lib).DataLoader(DS(), batch_size=3))
def _collate_numpy_samples(lib):
    class DS(data_mod(lib).Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full(2, i, dtype=np.float32), np.int64(i)
    return list(data_mod(lib).DataLoader(DS(), batch_size=2))
def _collate_fn_custom(lib):
    dl = data_mod(lib).DataLoader(_ds(lib), batch_size=4, collate_fn=lambda batch: len(batch))
    return list(dl)
def _default_collate_exported(lib): return data_mod(lib).default_collate([(1, 2.0), (3, 4.0)])
def _subset(lib):
    s = data_mod(lib).Subset(_ds(lib), [1, 5, 7])
    return len(s), s[1], list(data_mod(lib).DataLoader(s, batch_size=2))
def _random_split_sizes(lib):
    g = lib.Generator()
    g.manual_seed(0)
    a, b = data_mod(lib).random_split(_ds(lib), [7, 3], generator=g)
    ids = sorted([int(a[i][1]) for i in range(len(a))] + [int(b[i][1]) for i in range(len(b))])
    return len(a), len(b), ids, type(a).__name__
def _random_split_fractions(lib):
    a, b = data_mod(lib).random_split(_ds(lib), [0.8, 0.2])
    return len(a), len(b)
def _random_split_bad_sizes_raises(lib): return data_mod(lib).random_split(_ds(lib), [5, 6])
def _concat_dataset(lib):
    c = data_mod(lib).ConcatDataset([_ds(lib), _ds(lib)])
    return len(c), c[12]
def _iterable_style_dataset(lib):
    class Stream(data_mod(lib).IterableDataset):
        def __iter__(self):
            return iter(lib.tensor([float(i)]) for i in range(5))
    return list(data_mod(lib).DataLoader(Stream(), batch_size=2))
def _sampler_arg(lib):
    D = data_mod(lib)
    dl = D.DataLoader(_ds(lib), batch_size=2, sampler=D.SequentialSampler(range(5)))
    return [b[1] for b in dl]
def _batch_sampler_classes(lib):
    D = data_mod(lib)
    return list(D.BatchSampler(D.SequentialSampler(range(7)), batch_size=3, drop_last=False))
def _plain_list_dataset(lib):
    return list(data_mod(lib).DataLoader([(lib.tensor([1.0]), 0), (lib.tensor([2.0]), 1)], batch_size=2))


@cases(_sgd, _sgd_momentum_nesterov_wd, _sgd_dampening, _adam, _adam_options, _adamw, _rmsprop, _adagrad,
       _adamax, _nadam, _radam, _adadelta, _new_optimizer_state_keys,
       _param_groups_lr, _param_groups_keys, _add_param_group, _change_lr_in_place, _zero_grad_set_to_none,
       _step_skips_none_grads, _optimizer_state_dict_roundtrip, _optimizer_empty_params_raises,
       _optimizer_negative_lr_raises, _optimizer_closure)
def test_optimizers(case):
    check(case, atol=1e-10, rtol=1e-9)


@cases(_step_lr, _multistep_lr, _exponential_lr, _cosine_lr, _linear_lr, _lambda_lr, _onecycle_lr, _sequential_lr,
       _constant_lr, _reduce_on_plateau, _scheduler_initial_lr, _scheduler_state_dict,
       _scheduler_resume_with_optimizer, _cosine_warm_restarts, _cosine_warm_restarts_fractional, _multiplicative_lr,
       _polynomial_lr, _cyclic_lr, _chained_scheduler)
def test_lr_schedulers(case):
    check(case, atol=1e-12, rtol=1e-9)


@cases(_training_script, _save_load_state_dict, _save_load_checkpoint_dict, _script_preamble, _autocast_cpu_bf16,
       _grad_scaler_disabled_passthrough, _save_whole_model, _custom_optimizer_subclass, _compile_and_worker_info)
def test_training_script_and_checkpoints(case):
    check(case, atol=1e-5, rtol=1e-4)


@cases(_tensor_dataset_item, _tensor_dataset_size_mismatch_raises, _loader_batches, _loader_drop_last, _loader_len,
       _loader_shuffle_generator_is_permutation, _loader_shuffle_same_seed_same_order, _collate_tuples_and_dicts,
       _collate_numpy_samples, _collate_fn_custom, _default_collate_exported, _subset, _random_split_sizes,
       _random_split_fractions, _random_split_bad_sizes_raises, _concat_dataset, _iterable_style_dataset,
       _sampler_arg, _batch_sampler_classes, _plain_list_dataset)
def test_data(case):
    check(case)
