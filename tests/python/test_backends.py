# bm.backends: the per-family choice between our kernels and the vendor baseline
# (core/backends.h). The choice is process state, so every test restores what it changed.
import os
import subprocess
import sys

import pytest

import bigmodel as bm


def test_families_and_defaults():
    assert set(bm.backends.families()) == {"gemm", "conv", "attention", "rnn"}
    for fam in bm.backends.families():
        assert bm.backends.choices(fam)[0] == "ours"
    assert bm.backends.choices("gemm") == ["ours", "cublas"]
    assert bm.backends.choices("conv") == ["ours", "cudnn"]


def test_set_and_restore():
    before = bm.backends.conv
    try:
        bm.backends.conv = "cudnn"
        assert bm.backends.conv == "cudnn"
        bm.backends.conv = "ours"
        assert bm.backends.conv == "ours"
    finally:
        bm.backends.conv = before


def test_bad_names_raise_and_keep_the_choice():
    before = bm.backends.gemm
    with pytest.raises(ValueError, match=r"\[backends\] unknown gemm backend 'fastest'.*'ours', 'cublas'"):
        bm.backends.gemm = "fastest"
    assert bm.backends.gemm == before
    with pytest.raises(ValueError, match="unknown kernel family 'pool'"):
        bm.backends.choices("pool")
    with pytest.raises(AttributeError):
        bm.backends.pool  # noqa: B018


def _env(**extra):
    """The environment of a child python that imports this same bigmodel build."""
    env = dict(os.environ, **extra)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(bm.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


def test_environment_sets_the_default():
    code = "import bigmodel as bm; print(bm.backends.conv, bm.backends.gemm)"
    env = _env(BIGMODEL_CONV="cudnn", BIGMODEL_GEMM="cublas")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cudnn", "cublas"]


def test_bad_environment_value_is_named():
    code = "import bigmodel as bm; bm.backends.rnn"
    env = _env(BIGMODEL_RNN="fast")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "unknown rnn backend 'fast' from BIGMODEL_RNN" in out.stderr
