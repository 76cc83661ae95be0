#!/usr/bin/env python3
"""What do the models look at? Writes PNG figures into --out (default explain_out/):

- fashion_saliency_gradcam.png: for a few Fashion-MNIST test images, the image, its saliency
  map (|d score / d pixel|) and the Grad-CAM map of the article CNN's second convolution,
  for the predicted class. The CNN is trained briefly first (--limit images, one epoch).
- bert_attention_<i>.png: for a few sentences, the last layer's attention (mean over heads)
  and the attention rollout over all layers of a BERT: the pretrained all-MiniLM-L6-v2 when
  it is present (scripts/fetch_minilm.sh; --bert DIR), else a small random BERT (the maps
  then only show the mechanics).
- gpt_attention.png: a tiny character-level GPT trained for a few seconds on the sentences,
  and the causal attention of its last layer on one of them.

    python examples/explain.py [--out explain_out] [--limit 6000] [--images 4] [--bert DIR]

Needs matplotlib (apt-get install python3-matplotlib). Takes about a minute on 2 cores.
"""
import argparse
import os
import time

import numpy as np

import bigmodel as bm
from bigmodel import interpret, nn, optim
from bigmodel.data.datasets import DEFAULT_ROOT, FashionMNIST
from bigmodel.models import ArticleCNN
from bigmodel.nn import functional as F

PIXEL_MEAN, PIXEL_STD = 0.2860, 0.3530
SENTENCES = ["The cat sat on the mat.", "A man is riding a horse.", "She bought a red dress and a coat."]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="explain_out")
    p.add_argument("--limit", type=int, default=6000, help="training images for the CNN")
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--root", default=DEFAULT_ROOT)
    p.add_argument("--bert", default=os.environ.get("BIGMODEL_MINILM_DIR",
                                                     os.path.expanduser("~/.cache/bigmodel/minilm")))
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def train_cnn(root, limit, seed):
    train = FashionMNIST(root, train=True)
    x = ((train.data[:limit].astype(np.float32)[:, None] / 255.0 - PIXEL_MEAN) / PIXEL_STD).astype(np.float32)
    y = train.targets.numpy()[:limit]
    model = ArticleCNN()
    opt = optim.SGD(model.parameters(), lr=0.02, momentum=0.9, nesterov=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    for i in range(0, len(y), 64):
        idx = order[i:i + 64]
        loss = F.cross_entropy(model(bm.tensor(x[idx])), bm.tensor(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def explain_images(args, plt):
    start = time.perf_counter()
    model = train_cnn(args.root, args.limit, args.seed)
    test = FashionMNIST(args.root, train=False)
    raw = test.data[:args.images].astype(np.float32) / 255.0
    x = bm.tensor(((raw[:, None] - PIXEL_MEAN) / PIXEL_STD).astype(np.float32))
    labels = test.targets.numpy()[:args.images]
    sal = interpret.saliency(model, x).numpy()
    with interpret.GradCAM(model, "conv2") as cam:
        maps, preds = cam(x)
    # conv2's 24x24 outputs are centred on input pixels 2..25 (two valid 3x3 convolutions):
    # pad back to 28x28 rather than stretching.
    heat = interpret.upsample(np.pad(maps.numpy(), ((0, 0), (2, 2), (2, 2))), (28, 28))
    fig, axes = plt.subplots(args.images, 3, figsize=(6.5, 2.2 * args.images), squeeze=False)
    for i in range(args.images):
        axes[i, 0].imshow(raw[i], cmap="gray")
        axes[i, 0].axis("off")
        axes[i, 0].set_title(f"true: {FashionMNIST.classes[labels[i]]}", fontsize=8)
        axes[i, 1].imshow(sal[i] / max(sal[i].max(), 1e-12), cmap="hot")
        axes[i, 1].axis("off")
        axes[i, 1].set_title(f"saliency ({FashionMNIST.classes[preds[i]]})", fontsize=8)
        interpret.overlay_heatmap(raw[i], heat[i], axes[i, 2], title="Grad-CAM, conv2")
    fig.tight_layout()
    path = os.path.join(args.out, "fashion_saliency_gradcam.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    acc = float((np.array(preds) == labels).mean())
    print(f"wrote {path} ({args.images} images, CNN trained on {args.limit} images; "
          f"{acc:.2f} of these predicted right; {time.perf_counter() - start:.0f} s)")


def load_bert(path):
    from bigmodel.models import BertConfig, BertModel, BertTokenizer
    if os.path.isfile(os.path.join(path, "model.safetensors")):
        return BertModel.from_pretrained(path), BertTokenizer.from_pretrained(path), "all-MiniLM-L6-v2"
    # No pretrained weights: a small random BERT over a word vocabulary of the sentences.
    words = sorted({w for s in SENTENCES for w in s.lower().replace(".", " .").split()})
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"] + words

    class WordTokenizer:
        def encode(self, text):
            return [1] + [vocab.index(w) for w in text.lower().replace(".", " .").split()] + [2]

        def convert_ids_to_tokens(self, ids):
            return [vocab[i] for i in ids]

    bm.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64)
    return BertModel(cfg).eval(), WordTokenizer(), "a random 2-layer BERT (no pretrained model found)"


def explain_bert(args, plt):
    model, tok, name = load_bert(args.bert)
    for i, sentence in enumerate(SENTENCES):
        ids = list(tok.encode(sentence))
        tokens = tok.convert_ids_to_tokens(ids)
        with bm.no_grad():
            _, _, atts = model(bm.tensor([ids]), output_attentions=True)
        last = atts[-1].numpy()[0].mean(0)
        roll = interpret.attention_rollout(atts)[0]
        fig, (a, b) = plt.subplots(1, 2, figsize=(2 + 0.9 * len(tokens), 1.5 + 0.45 * len(tokens)))
        interpret.plot_attention(last, tokens, ax=a, title="last layer, mean over heads")
        interpret.plot_attention(roll, tokens, ax=b, title="rollout over layers")
        fig.suptitle(f"{name}: {sentence}", fontsize=9)
        fig.tight_layout()
        path = os.path.join(args.out, f"bert_attention_{i}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        print(f"wrote {path} ({name}, {len(tokens)} tokens)")


def explain_gpt(args, plt):
    from bigmodel.models import GPT, GPTConfig
    text = " ".join(SENTENCES)
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = np.array([stoi[c] for c in text], dtype=np.int64)
    bm.manual_seed(args.seed)
    block = 24
    model = GPT(GPTConfig(vocab_size=len(chars), block_size=block, n_layer=2, n_head=2, n_embd=32))
    opt = optim.AdamW(model.parameters(), lr=3e-3) if hasattr(optim, "AdamW") else optim.Adam(model.parameters(),
                                                                                              lr=3e-3)
    rng = np.random.default_rng(args.seed)
    for step in range(150):
        starts = rng.integers(0, len(data) - block - 1, 16)
        x = bm.tensor(np.stack([data[s:s + block] for s in starts]))
        y = bm.tensor(np.stack([data[s + 1:s + block + 1] for s in starts]))
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    sentence = SENTENCES[1][:block]
    with bm.no_grad():
        _, _, atts = model(bm.tensor([[stoi[c] for c in sentence]]), output_attentions=True)
    tokens = [c if c != " " else "_" for c in sentence]
    path = os.path.join(args.out, "gpt_attention.png")
    interpret.plot_attention(atts[-1].numpy()[0].mean(0), tokens,
                             title=f"char GPT (loss {float(loss):.2f}), last layer", path=path)
    print(f"wrote {path} (causal attention of a 2-layer character GPT)")


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    plt = pyplot()
    explain_images(args, plt)
    explain_bert(args, plt)
    explain_gpt(args, plt)


if __name__ == "__main__":
    main()
