"""plot_metrics: one PNG of metric curves from a metrics file (JSONL/CSV) or a list of
records. Needs matplotlib (optional dependency); without it, a RuntimeError says so."""
import os

from .metrics import read_metrics


def plot_metrics(path_png, source, keys=None, x="step", title=None, logy=False):
    """Plots each metric in `keys` (default: every numeric field but x) against `x`
    (default 'step', else the record index) into path_png, one subplot per metric."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("[plot_metrics] matplotlib is not installed; install it (pip install matplotlib) "
                           "to plot metrics") from None
    records = read_metrics(source) if isinstance(source, (str, os.PathLike)) else list(source)
    if not records:
        raise ValueError("[plot_metrics] no records to plot")
    if keys is None:
        keys = []
        for r in records:
            for k, v in r.items():
                if k != x and k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool):
                    keys.append(k)
    if not keys:
        raise ValueError("[plot_metrics] no numeric metrics to plot")
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.5 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        pts = [(r.get(x, i), r[key]) for i, r in enumerate(records) if isinstance(r.get(key), (int, float))]
        ax.plot([p[0] for p in pts], [p[1] for p in pts])
        ax.set_ylabel(key)
        if logy:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel(x)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(os.fspath(path_png))
    plt.close(fig)
    return os.fspath(path_png)


__all__ = ["plot_metrics"]
