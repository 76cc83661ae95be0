"""Checkpoint resume in examples/train_lstm.py: a run stopped at step k (--stop-at saves a
checkpoint as an interrupted run's last periodic save would) and continued with --resume
gives the same per-step losses, bit for bit, as the run that was never stopped. The example
is imported and its main(argv) called in-process, at tiny sizes (two layers with dropout, so
bigmodel's RNG state matters too)."""
import os

import pytest

import bigmodel as bm
from _examples import load_example, make_fortunes


@pytest.fixture
def fortunes_root(tmp_path):
    return make_fortunes(tmp_path)


def lstm_args(root, out, *extra):
    return ["--root", root, "--out", str(out), "--steps", "7", "--batch-size", "3", "--seq-len", "10",
            "--embed", "8", "--hidden", "12", "--layers", "2", "--dropout", "0.2", "--lr", "0.02",
            "--sample-every", "3", "--sample-len", "5", "--eval-batches", "1", "--save-every", "100",
            "--no-plot", *extra]


def test_lstm_resume_is_bit_identical(tmp_path, fortunes_root, capsys):
    lstm = load_example("train_lstm")
    full = lstm.main(lstm_args(fortunes_root, tmp_path / "full"))
    assert len(full["losses"]) == 7
    part = lstm.main(lstm_args(fortunes_root, tmp_path / "cut", "--stop-at", "4"))
    assert part["final"] is None and part["losses"] == full["losses"][:4]
    assert os.path.isfile(tmp_path / "cut" / "ckpt.bm")
    resumed = lstm.main(lstm_args(fortunes_root, tmp_path / "cut", "--resume"))
    assert "resumed from" in capsys.readouterr().out
    assert resumed["losses"] == full["losses"]  # every float equal, not merely close
    assert resumed["final"] == full["final"]
    # A fresh run with another seed differs, so the equality above is not vacuous.
    other = lstm.main(lstm_args(fortunes_root, tmp_path / "other", "--seed", "5"))["losses"]
    assert other != full["losses"]


def test_lstm_periodic_checkpoint_and_custom_path(tmp_path, fortunes_root):
    # --save-every 2 with --ckpt elsewhere: stopping at 5 leaves the step-5 checkpoint, and
    # resuming from it (the schedule's and optimizer's state included) matches the full run.
    lstm = load_example("train_lstm")
    full = lstm.main(lstm_args(fortunes_root, tmp_path / "a", "--save-every", "2"))["losses"]
    ck = str(tmp_path / "elsewhere" / "run.bm")
    lstm.main(lstm_args(fortunes_root, tmp_path / "b", "--save-every", "2", "--ckpt", ck, "--stop-at", "5"))
    assert os.path.isfile(ck) and not os.path.exists(tmp_path / "b" / "ckpt.bm")
    resumed = lstm.main(lstm_args(fortunes_root, tmp_path / "b", "--save-every", "2", "--ckpt", ck, "--resume"))
    assert resumed["losses"] == full


def test_lstm_resume_without_checkpoint_fails_clearly(tmp_path, fortunes_root):
    lstm = load_example("train_lstm")
    with pytest.raises(SystemExit, match="no checkpoint"):
        lstm.main(lstm_args(fortunes_root, tmp_path / "none", "--resume"))


def test_lstm_device_argument(tmp_path, fortunes_root, capsys):
    # --device (examples/_device.py): a bad name or a GPU that is not there ends the run with
    # one clear line; --device cpu trains on the CPU and says so in the opening line.
    lstm = load_example("train_lstm")
    with pytest.raises(SystemExit, match="--device 'gpu'.*expected 'cpu', 'cuda' or 'cuda:N'"):
        lstm.main(lstm_args(fortunes_root, tmp_path / "bad", "--device", "gpu"))
    if not bm.cuda.is_available():
        with pytest.raises(SystemExit, match="--device cuda:1: .*use --device cpu"):
            lstm.main(lstm_args(fortunes_root, tmp_path / "nogpu", "--device", "cuda:1"))
    capsys.readouterr()
    res = lstm.main(lstm_args(fortunes_root, tmp_path / "cpu", "--steps", "2", "--device", "cpu"))
    assert res["device"] == "cpu" and len(res["losses"]) == 2
    assert capsys.readouterr().out.splitlines()[0].endswith("; on cpu")
