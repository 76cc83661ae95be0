"""A dependency-free progress bar: count, percentage, rate, elapsed and ETA, plus live
metrics (loss=..., lr=...). On a terminal it redraws one line (at most every min_interval
seconds); elsewhere (logs, CI) it prints plain lines every plain_interval seconds and at the end.

    for batch in progress(loader, desc="train"):
        ...
    with ProgressBar(total=steps) as bar:
        bar.update(loss=loss.item())
"""
import sys
import time


def _fmt_time(seconds):
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _fmt_value(v):
    if hasattr(v, "item") and callable(v.item):
        v = v.item()
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class ProgressBar:
    def __init__(self, total=None, desc="", unit="it", width=25, file=None, min_interval=0.1, plain=None,
                 plain_interval=10.0, disable=False, clock=time.monotonic):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.width = width
        self.file = file if file is not None else sys.stderr
        self.min_interval = min_interval
        self.plain = (not _isatty(self.file)) if plain is None else plain
        self.plain_interval = plain_interval
        self.disable = disable
        self._clock = clock
        self.n = 0
        self.metrics = {}
        self._start = clock()
        self._last_draw = None
        self._closed = False

    # ------------------------------------------------------------------ state
    @property
    def elapsed(self):
        return self._clock() - self._start

    @property
    def rate(self):
        """Units per second since the start (None before any time has passed)."""
        e = self.elapsed
        return self.n / e if e > 0 else None

    @property
    def eta(self):
        """Seconds left at the current rate (None when the total or the rate is unknown)."""
        r = self.rate
        if self.total is None or not r:
            return None
        return max(self.total - self.n, 0) / r

    def set_metrics(self, **metrics):
        self.metrics.update(metrics)

    def update(self, n=1, **metrics):
        self.n += n
        self.metrics.update(metrics)
        self._maybe_draw()

    def format(self):
        parts = []
        if self.desc:
            parts.append(f"{self.desc}:")
        if self.total:
            frac = min(self.n / self.total, 1.0)
            filled = int(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            parts.append(f"{frac * 100:3.0f}%|{bar}| {self.n}/{self.total}")
        else:
            parts.append(f"{self.n}{self.unit}")
        r = self.rate
        rate = f"{r:.2f} {self.unit}/s" if r is not None else f"? {self.unit}/s"
        timing = f"[{_fmt_time(self.elapsed)}<{_fmt_time(self.eta)}, {rate}" if self.total else \
            f"[{_fmt_time(self.elapsed)}, {rate}"
        if self.metrics:
            timing += ", " + ", ".join(f"{k}={_fmt_value(v)}" for k, v in self.metrics.items())
        parts.append(timing + "]")
        return " ".join(parts)

    # ------------------------------------------------------------------ output
    def _maybe_draw(self, force=False):
        if self.disable or self._closed:
            return
        now = self._clock()
        interval = self.plain_interval if self.plain else self.min_interval
        done = self.total is not None and self.n >= self.total
        if not force and not done and self._last_draw is not None and now - self._last_draw < interval:
            return
        self._last_draw = now
        line = self.format()
        if self.plain:
            self.file.write(line + "\n")
        else:
            self.file.write("\r" + line + "\x1b[K")
        self.file.flush()

    def close(self):
        if self._closed:
            return
        if not self.disable:
            if self.plain:
                # The final state, unless the last line already showed it.
                if self._last_draw is None or not (self.total is not None and self.n >= self.total):
                    self._maybe_draw(force=True)
            else:
                self._maybe_draw(force=True)
                self.file.write("\n")
                self.file.flush()
        self._closed = True

    def write(self, message):
        """Prints a message without breaking the bar."""
        if not self.plain and not self.disable:
            self.file.write("\r\x1b[K")
        self.file.write(message + "\n")
        if not self.plain and not self.disable and self._last_draw is not None:
            self.file.write(self.format())
        self.file.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _isatty(f):
    try:
        return f.isatty()
    except (AttributeError, ValueError):
        return False


def progress(iterable, total=None, **kwargs):
    """Yields from `iterable` while showing a ProgressBar (total taken from len() when possible)."""
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    bar = ProgressBar(total=total, **kwargs)
    try:
        for item in iterable:
            yield item
            bar.update()
    finally:
        bar.close()


__all__ = ["ProgressBar", "progress"]
