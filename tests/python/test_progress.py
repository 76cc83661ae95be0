"""Progress bar (rate, ETA, metrics, TTY redraws vs plain lines), metrics writers (JSONL,
CSV with columns appearing later) and plot_metrics."""
import io
import json

import pytest

import bigmodel as bm
from bigmodel.utils import MetricsWriter, ProgressBar, plot_metrics, progress, read_metrics


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_rate_eta_and_format():
    clock = FakeClock()
    out = io.StringIO()
    bar = ProgressBar(total=10, desc="train", file=out, clock=clock, plain=True, plain_interval=1e9)
    clock.t += 4.0
    bar.update(2, loss=bm.tensor(0.123456))
    assert bar.rate == pytest.approx(0.5) and bar.eta == pytest.approx(16.0)
    line = bar.format()
    assert line.startswith("train:  20%|#####") and "2/10" in line
    assert "[00:04<00:16, 0.50 it/s, loss=0.1235]" in line


def test_plain_lines_when_not_a_tty():
    clock = FakeClock()
    out = io.StringIO()  # not a TTY: plain lines, throttled
    bar = ProgressBar(total=5, file=out, clock=clock, plain_interval=8.0)
    assert bar.plain
    for _ in range(5):
        clock.t += 3.0
        bar.update(acc=0.5)
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    # First update (t=3), the one 9 s later (>= 8), and the final complete one; close adds nothing.
    assert len(lines) == 3 and lines[-1].startswith("100%") and "5/5" in lines[-1] and "acc=0.5" in lines[-1]


def test_tty_redraws_in_place():
    clock = FakeClock()
    out = Tty()
    with ProgressBar(total=3, file=out, clock=clock, min_interval=0.0) as bar:
        for _ in range(3):
            clock.t += 1
            bar.update()
    text = out.getvalue()
    assert text.count("\r") >= 3 and text.endswith("\n") and text.count("\n") == 1
    assert "3/3" in text


def test_progress_wraps_iterables():
    out = io.StringIO()
    items = list(progress(range(7), file=out, desc="x"))
    assert items == list(range(7))
    assert "7/7" in out.getvalue().splitlines()[-1]
    out = io.StringIO()
    list(progress((i for i in range(3)), file=out))  # no len(): count only
    assert out.getvalue().splitlines()[-1].startswith("3it")
    out = io.StringIO()
    list(progress(range(3), file=out, disable=True))
    assert out.getvalue() == ""


def test_jsonl_writer(tmp_path):
    path = tmp_path / "m.jsonl"
    with MetricsWriter(path) as w:
        w.write(step=1, loss=bm.tensor(0.5))
        w.write({"step": 2, "loss": 0.25, "lr": 1e-3})
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"step": 1, "loss": 0.5}
    assert read_metrics(path) == [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25, "lr": 1e-3}]
    with MetricsWriter(path, append=True) as w:
        w.write(step=3, loss=0.125)
    assert len(read_metrics(path)) == 3


def test_csv_writer_widens_header(tmp_path):
    path = tmp_path / "m.csv"
    w = MetricsWriter(path)
    w.write(step=1, loss=0.5)
    w.write(step=2, loss=0.25, acc=0.9)  # a new column: earlier rows get blanks
    w.write(step=3, loss=0.125, acc=0.95, note="ok")
    w.close()
    assert path.read_text().splitlines()[0] == "step,loss,acc,note"
    assert read_metrics(path) == [
        {"step": 1, "loss": 0.5, "acc": None, "note": None},
        {"step": 2, "loss": 0.25, "acc": 0.9, "note": None},
        {"step": 3, "loss": 0.125, "acc": 0.95, "note": "ok"},
    ]
    with pytest.raises(ValueError, match="format"):
        MetricsWriter(tmp_path / "x.txt", format="xml")


def test_plot_metrics(tmp_path):
    records = [{"step": i, "loss": 1.0 / (i + 1)} for i in range(5)]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="matplotlib is not installed"):
            plot_metrics(tmp_path / "p.png", records)
        return
    out = plot_metrics(tmp_path / "p.png", records)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.endswith("p.png")
