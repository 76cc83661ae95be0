"""PyTorch parity sweep, the one-liners of everyday training code (accuracy, masks,
reshapes for losses, weight-decay parameter groups, EMA weights, gradient accumulation,
sequence models' padding), run on torch and bigmodel with the same inputs (see _parity.py)."""
import numpy as np

from _parity import cases, check, data_mod

R = np.random.default_rng(23)
LOGITS = R.standard_normal((6, 5)).astype(np.float32)
LABELS = np.array([1, 4, 0, 0, 2, 3], dtype=np.int64)
SEQ_LOGITS = R.standard_normal((2, 3, 5)).astype(np.float32)
SEQ_T = np.array([[1, 2, 0], [4, 0, 0]], dtype=np.int64)
IMGS = R.standard_normal((4, 3, 4, 4)).astype(np.float32)
XS = R.standard_normal((8, 4)).astype(np.float32)


def _accuracy(lib):
    logits, y = lib.tensor(LOGITS), lib.tensor(LABELS)
    pred = logits.argmax(dim=1)
    correct = (pred == y).sum().item()
    return correct, (pred == y).float().mean().item(), type(correct).__name__, lib.max(logits, 1)[1]
def _topk_accuracy(lib):
    logits, y = lib.tensor(LOGITS), lib.tensor(LABELS)
    _, top = logits.topk(3, 1, True, True)
    return top.t().eq(y.view(1, -1).expand_as(top.t())).reshape(-1).float().sum(0, keepdim=True)
def _masks(lib):
    x = lib.tensor(XS)
    m = x > 0
    return m.sum(), m.float().mean(), m.any(), m.all(dim=1), (~m).sum(1), x[m].mean(), (x * m).sum()
def _masked_augmented_assign(lib):
    x = lib.tensor(XS)
    x[x > 0] += 1
    x[:, 0] *= 2
    x[1] -= x[2]
    return x
def _flatten_for_loss(lib):
    f = lib.nn.functional
    logits, t = lib.tensor(SEQ_LOGITS), lib.tensor(SEQ_T)
    a = f.cross_entropy(logits.view(-1, logits.size(-1)), t.view(-1), ignore_index=0)
    b = f.cross_entropy(logits.transpose(1, 2), t, ignore_index=0)
    return a, b
def _log_softmax_gather(lib):
    lp = lib.log_softmax(lib.tensor(LOGITS), dim=-1)
    return lp.gather(1, lib.tensor(LABELS).unsqueeze(1)).squeeze(1), -lp.gather(-1, lib.tensor(LABELS)[:, None]).mean()
def _view_batch_flatten(lib):
    x = lib.tensor(IMGS)
    return x.view(x.size(0), -1).shape, x.reshape(len(x), -1).shape, x.flatten(1).shape, x.mean((2, 3)).shape
def _stack_list_mean(lib):
    outs = [lib.tensor(XS[i]) for i in range(4)]
    return lib.stack(outs).mean(0), lib.cat(outs).shape, lib.stack(outs, 1).shape
def _normalize_images(lib):
    x = lib.tensor(IMGS)
    mean = lib.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    std = lib.tensor([0.2, 0.25, 0.3])[None, :, None, None]
    return (x - mean) / std
def _std_unbiased_kw(lib):
    x = lib.tensor(XS)
    return x.std(unbiased=False), x.var(0, unbiased=True), lib.std(x, dim=1, keepdim=True)
def _where_mixed_scalars(lib):
    x = lib.tensor(XS)
    return lib.where(x > 0, x, lib.zeros_like(x)), lib.where(x > 0, 1.0, -1.0), lib.where(lib.tensor(LABELS) > 1, 1, 0)
def _one_hot_float_targets(lib):
    oh = lib.nn.functional.one_hot(lib.tensor(LABELS), 5).float()
    smooth = oh * 0.9 + 0.1 / 5
    return smooth, (-(smooth * lib.log_softmax(lib.tensor(LOGITS), -1)).sum(-1)).mean()
def _no_decay_param_groups(lib):
    nn = lib.nn
    model = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Linear(6, 2))
    with lib.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(lib.tensor(np.random.default_rng(i).standard_normal(tuple(p.shape)).astype(np.float32) * 0.5))
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = lib.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        model(lib.tensor(XS)).pow(2).mean().backward()
        opt.step()
    return [p for p in model.parameters()], len(decay), len(no_decay)
def _ema_weights(lib):
    nn = lib.nn
    model = nn.Linear(4, 2)
    ema = nn.Linear(4, 2)
    with lib.no_grad():
        for p, q in zip(model.parameters(), ema.parameters()):
            p.copy_(lib.ones_like(p) * 0.3)
            q.copy_(lib.zeros_like(q))
        for _ in range(3):
            for e, p in zip(ema.parameters(), model.parameters()):
                e.mul_(0.9).add_(p, alpha=0.1)
        ema.weight.lerp_(model.weight, 0.5)
    return ema.weight, ema.bias
def _grad_accumulation(lib):
    w = lib.nn.Parameter(lib.tensor(np.linspace(-1, 1, 8).reshape(4, 2).astype(np.float32)))
    opt = lib.optim.SGD([w], lr=0.1)
    opt.zero_grad()
    for i in range(0, 8, 4):
        loss = (lib.tensor(XS[i:i + 4]) @ w).pow(2).mean() / 2
        loss.backward()
    g = w.grad.clone()
    opt.step()
    return g, w
def _pad_sequence(lib):
    from_lib = lib.nn.utils.rnn
    seqs = [lib.tensor([1, 2, 3]), lib.tensor([4]), lib.tensor([5, 6])]
    return from_lib.pad_sequence(seqs, batch_first=True), from_lib.pad_sequence(seqs, padding_value=-1)
def _packed_lstm(lib):
    nn = lib.nn
    lstm = nn.LSTM(3, 2, batch_first=True)
    with lib.no_grad():
        for i, p in enumerate(lstm.parameters()):
            p.copy_(lib.tensor(np.random.default_rng(i).standard_normal(tuple(p.shape)).astype(np.float32) * 0.5))
    x = lib.tensor(R_SEQ)
    packed = nn.utils.rnn.pack_padded_sequence(x, lib.tensor([3, 1]), batch_first=True, enforce_sorted=False)
    out, (h, c) = lstm(packed)
    padded, lens = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    return padded, lens, h
def _causal_mask(lib):
    n = 4
    mask = lib.triu(lib.ones(n, n, dtype=lib.bool), diagonal=1)
    scores = lib.tensor(LOGITS[:4, :4]).masked_fill(mask, float("-inf"))
    return lib.softmax(scores, -1), lib.tril(lib.ones(n, n)).bool()
def _argmax_keepdim_and_item_types(lib):
    x = lib.tensor(LOGITS)
    return x.argmax(1, keepdim=True), type(x.sum().item()).__name__, type(x.argmax().item()).__name__, \
        type(lib.tensor(True).item()).__name__
def _inference_no_grad_eval(lib):
    nn = lib.nn
    m = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5), nn.BatchNorm1d(3))
    m.eval()
    with lib.no_grad():
        a = m(lib.tensor(XS))
        b = m(lib.tensor(XS))
    return bool(lib.equal(a, b)), a.requires_grad, m.training
def _numpy_roundtrip(lib):
    x = lib.tensor(XS)
    a = x.detach().cpu().numpy()
    return a.dtype.name, lib.from_numpy(a * 2).dtype, lib.as_tensor(a).shape, lib.tensor(a.tolist()).dtype


R_SEQ = R.standard_normal((2, 3, 3)).astype(np.float32)
CIFAR_X = R.standard_normal((8, 3, 32, 32)).astype(np.float32)
CIFAR_Y = R.integers(0, 10, 8)
TOKENS = R.integers(0, 20, (6, 2))


def _init_all(lib, model, scale=0.1):
    with lib.no_grad():
        for i, (n, p) in enumerate(sorted(model.named_parameters())):
            p.copy_(lib.tensor(np.random.default_rng(i).standard_normal(tuple(p.shape)).astype(np.float32) * scale))
    return model


def _cifar_tutorial(lib):
    """The classic "training a classifier" tutorial, on synthetic data."""
    nn, F, optim = lib.nn, lib.nn.functional, lib.optim

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = lib.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)
    net = _init_all(lib, Net())
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    data = data_mod(lib).TensorDataset(lib.tensor(CIFAR_X), lib.tensor(CIFAR_Y))
    trainloader = data_mod(lib).DataLoader(data, batch_size=4, shuffle=False)
    losses = []
    for epoch in range(2):
        running_loss = 0.0
        for i, batch in enumerate(trainloader, 0):
            inputs, labels = batch
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        losses.append(running_loss)
    correct = total = 0
    with lib.no_grad():
        for inputs, labels in trainloader:
            outputs = net(inputs)
            _, predicted = lib.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return losses, correct, total


def _transformer_lm_tutorial(lib):
    """The word-language-model tutorial's pieces: positional encoding buffer with strided slice
    assignment, TransformerEncoder with a causal mask, Embedding * sqrt(d), clip_grad_norm_."""
    import math
    nn = lib.nn

    class PositionalEncoding(nn.Module):
        def __init__(self, d_model, dropout=0.0, max_len=50):
            super().__init__()
            self.dropout = nn.Dropout(p=dropout)
            position = lib.arange(max_len).unsqueeze(1)
            div_term = lib.exp(lib.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
            pe = lib.zeros(max_len, 1, d_model)
            pe[:, 0, 0::2] = lib.sin(position * div_term)
            pe[:, 0, 1::2] = lib.cos(position * div_term)
            self.register_buffer("pe", pe)

        def forward(self, x):
            return self.dropout(x + self.pe[:x.size(0)])

    class TransformerModel(nn.Module):
        def __init__(self, ntoken, d_model, nhead, d_hid, nlayers):
            super().__init__()
            self.pos_encoder = PositionalEncoding(d_model)
            layers = nn.TransformerEncoderLayer(d_model, nhead, d_hid, 0.0)
            self.transformer_encoder = nn.TransformerEncoder(layers, nlayers)
            self.embedding = nn.Embedding(ntoken, d_model)
            self.d_model = d_model
            self.linear = nn.Linear(d_model, ntoken)

        def forward(self, src, src_mask):
            src = self.embedding(src) * math.sqrt(self.d_model)
            src = self.pos_encoder(src)
            return self.linear(self.transformer_encoder(src, src_mask))
    model = _init_all(lib, TransformerModel(20, 8, 2, 16, 2), 0.3)
    opt = lib.optim.SGD(model.parameters(), lr=0.5)
    sched = lib.optim.lr_scheduler.StepLR(opt, 1.0, gamma=0.95)
    data = lib.tensor(TOKENS)
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    losses = []
    for _ in range(3):
        model.train()
        out = model(data[:-1], mask)
        loss = nn.CrossEntropyLoss()(out.view(-1, 20), data[1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        lib.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses, math.exp(losses[-1]), model.pos_encoder.pe[:3, 0, :4]


@cases(_accuracy, _topk_accuracy, _masks, _masked_augmented_assign, _flatten_for_loss, _log_softmax_gather,
       _view_batch_flatten, _stack_list_mean, _normalize_images, _std_unbiased_kw, _where_mixed_scalars,
       _one_hot_float_targets, _no_decay_param_groups, _ema_weights, _grad_accumulation, _pad_sequence, _packed_lstm,
       _causal_mask, _argmax_keepdim_and_item_types, _inference_no_grad_eval, _numpy_roundtrip, _cifar_tutorial,
       _transformer_lm_tutorial)
def test_everyday(case):
    check(case, atol=1e-5, rtol=1e-5)
