"""Metrics logs: MetricsWriter appends one record per call to a JSONL or CSV file (chosen
by extension or format=), flushing as it goes so a crash loses at most the last record;
read_metrics reads either back as a list of dicts."""
import csv
import io
import json
import os


def _plain(v):
    if hasattr(v, "item") and callable(v.item):  # 0-d tensors and NumPy scalars
        v = v.item()
    return v


class MetricsWriter:
    def __init__(self, path, format=None, append=False):
        self.path = os.fspath(path)
        fmt = format or ("csv" if self.path.endswith(".csv") else "jsonl")
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"[MetricsWriter] format must be 'jsonl' or 'csv', got {fmt!r}")
        self.format = fmt
        self._columns = None
        if append and os.path.exists(self.path) and fmt == "csv":
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), None)
            self._columns = header
        self._file = open(self.path, "a" if append else "w", newline="" if fmt == "csv" else None)

    def write(self, record=None, **metrics):
        """Logs one record: write({"step": 3, "loss": 0.5}) or write(step=3, loss=0.5)."""
        row = dict(record or {})
        row.update(metrics)
        row = {str(k): _plain(v) for k, v in row.items()}
        if self.format == "jsonl":
            self._file.write(json.dumps(row) + "\n")
        else:
            self._write_csv(row)
        self._file.flush()

    log = write

    def _write_csv(self, row):
        if self._columns is None:
            self._columns = list(row)
            csv.writer(self._file).writerow(self._columns)
        new = [k for k in row if k not in self._columns]
        if new:  # a new metric appeared: rewrite the file with the wider header
            self._file.close()
            old = read_metrics(self.path, format="csv")
            self._columns += new
            self._file = open(self.path, "w", newline="")
            w = csv.DictWriter(self._file, fieldnames=self._columns)
            w.writeheader()
            for r in old:
                w.writerow(r)
        csv.DictWriter(self._file, fieldnames=self._columns).writerow(row)

    def close(self):
        if not self._file.closed:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _parse_csv_value(s):
    if s == "":
        return None
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(s, s)


def read_metrics(path, format=None):
    """The records of a JSONL or CSV metrics file, as dicts (CSV numbers parsed back; blanks are None)."""
    path = os.fspath(path)
    fmt = format or ("csv" if path.endswith(".csv") else "jsonl")
    with open(path, newline="" if fmt == "csv" else None) as f:
        text = f.read()
    if fmt == "csv":
        return [{k: _parse_csv_value(v) for k, v in r.items()} for r in csv.DictReader(io.StringIO(text))]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


__all__ = ["MetricsWriter", "read_metrics"]
