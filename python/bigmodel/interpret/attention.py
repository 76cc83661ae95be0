"""Attention maps: attention_rollout (Abnar & Zuidema 2020) over the per-layer weights that
GPT / BERT return with output_attentions=True, and matplotlib helpers that draw attention
matrices and heat-map overlays."""
import numpy as np

from .. import _C


def _as_numpy(t):
    return t.detach().to(_C.dtype.float64).numpy() if isinstance(t, _C.Tensor) else np.asarray(t, np.float64)


def attention_rollout(attentions, residual=True):
    """Token-to-token flow through all layers: each layer's weights [B, H, T, T] averaged over
    heads, mixed with the identity for the residual path (0.5 A + 0.5 I) and renormalised,
    multiplied from the first layer up. Returns a NumPy array [B, T, T] whose rows sum to 1."""
    if not attentions:
        raise ValueError("[attention_rollout] no attention maps given")
    result = None
    for i, a in enumerate(attentions):
        a = _as_numpy(a)
        if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
            raise ValueError(f"[attention_rollout] layer {i}: expected weights [B, H, T, T], got {list(a.shape)}")
        a = a.mean(1)
        if residual:
            a = 0.5 * a + 0.5 * np.eye(a.shape[-1])[None]
            a = a / a.sum(-1, keepdims=True)
        result = a if result is None else a @ result
    return result


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("[interpret] matplotlib is not installed (apt-get install python3-matplotlib)") from None
    return plt


def plot_attention(weights, tokens, ax=None, title=None, path=None):
    """Draws an attention matrix [T, T] (rows: queries, columns: keys) labelled with tokens;
    saves to path when given. Returns the matplotlib Axes."""
    plt = _pyplot()
    w = _as_numpy(weights)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] != len(tokens):
        raise ValueError(f"[plot_attention] weights {list(w.shape)} must be [T, T] with T = {len(tokens)} tokens")
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(1 + 0.45 * len(tokens), 1 + 0.45 * len(tokens)))
    ax.imshow(w, cmap="viridis", vmin=0.0, vmax=max(float(w.max()), 1e-12))
    ax.set_xticks(range(len(tokens)))
    ax.set_xticklabels(tokens, rotation=90, fontsize=8)
    ax.set_yticks(range(len(tokens)))
    ax.set_yticklabels(tokens, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    if path is not None:
        (fig or ax.figure).tight_layout()
        (fig or ax.figure).savefig(path, dpi=100)
        if fig is not None:
            plt.close(fig)
    return ax


def overlay_heatmap(image, heat, ax, alpha=0.5, title=None):
    """Draws a grey image [H, W] with a heat map [H, W] (values in [0, 1]) on top."""
    ax.imshow(_as_numpy(image), cmap="gray")
    ax.imshow(_as_numpy(heat), cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=8)
    return ax


__all__ = ["attention_rollout", "plot_attention", "overlay_heatmap"]
