"""Shared by the tests that run the examples in-process (test_resume*.py): importing an
example by name, and a small fortunes-like corpus standing in for Debian's fortunes."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_example(name):
    """examples/<name>.py as a module (its main(argv) can then be called)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(ROOT, "examples", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_fortunes(tmp_path):
    """A folder with one fortunes-style file of 120 short records; returns its path."""
    words = "the quick brown fox jumps over a lazy dog while you will be happy today".split()
    lines = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(9)) for i in range(120)]
    root = tmp_path / "fortunes"
    root.mkdir()
    (root / "cookies").write_text("\n%\n".join(lines), encoding="utf-8")
    return str(root)
