"""Checkpoint resume in the examples: a run stopped at step k (--stop-at, which saves a
checkpoint as an interrupted run's last periodic save would) and continued with --resume
gives the same per-step losses, bit for bit, as the run that was never stopped. The
examples are imported and their main(argv) called in-process, at tiny sizes."""
import os

import pytest

from _examples import load_example, make_fortunes


@pytest.fixture
def fortunes_root(tmp_path):
    return make_fortunes(tmp_path)


def gpt_args(root, out, *extra):
    return ["--root", root, "--out", str(out), "--steps", "7", "--batch-size", "3", "--block-size", "12",
            "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--dropout", "0.1", "--warmup", "2",
            "--eval-every", "3", "--eval-batches", "1", "--sample-len", "6", "--save-every", "100", "--no-plot",
            *extra]


def test_gpt_resume_is_bit_identical(tmp_path, fortunes_root, capsys):
    gpt = load_example("train_gpt")
    full = gpt.main(gpt_args(fortunes_root, tmp_path / "full"))["losses"]
    assert len(full) == 7
    part = gpt.main(gpt_args(fortunes_root, tmp_path / "cut", "--stop-at", "4"))["losses"]
    assert part == full[:4]
    assert os.path.isfile(tmp_path / "cut" / "ckpt.bm")
    resumed = gpt.main(gpt_args(fortunes_root, tmp_path / "cut", "--resume"))["losses"]
    assert "resumed from" in capsys.readouterr().out
    assert resumed == full  # every float equal, not merely close
    # A fresh run with another seed differs, so the equality above is not vacuous.
    other = gpt.main(gpt_args(fortunes_root, tmp_path / "other", "--seed", "5"))["losses"]
    assert other != full


def test_gpt_resume_without_checkpoint_fails_clearly(tmp_path, fortunes_root):
    gpt = load_example("train_gpt")
    with pytest.raises(SystemExit, match="no checkpoint"):
        gpt.main(gpt_args(fortunes_root, tmp_path / "none", "--resume"))


def test_gpt_with_activation_checkpointing_and_autocast_matches(tmp_path, fortunes_root):
    gpt = load_example("train_gpt")
    base = gpt.main(gpt_args(fortunes_root, tmp_path / "a", "--steps", "3"))["losses"]
    ckpt = gpt.main(gpt_args(fortunes_root, tmp_path / "b", "--steps", "3", "--checkpoint"))["losses"]
    # Recomputing blocks (same RNG state, so the same dropout masks) changes nothing.
    assert ckpt == base
    amp = gpt.main(gpt_args(fortunes_root, tmp_path / "c", "--steps", "3", "--amp", "bf16"))["losses"]
    assert amp != base and all(abs(a - b) < 0.05 * b for a, b in zip(amp, base))


def test_gpt_device_argument(tmp_path, fortunes_root, capsys):
    # --device (examples/_device.py): named in the opening line and returned; a bad name ends
    # the run with one clear line before any training.
    gpt = load_example("train_gpt")
    res = gpt.main(gpt_args(fortunes_root, tmp_path / "cpu", "--steps", "2", "--device", "cpu"))
    assert res["device"] == "cpu" and len(res["losses"]) == 2
    assert capsys.readouterr().out.splitlines()[0].endswith("; on cpu")
    with pytest.raises(SystemExit, match="--device 'cuda:x'"):
        gpt.main(gpt_args(fortunes_root, tmp_path / "bad", "--device", "cuda:x"))


FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(FASHION), reason=f"Fashion-MNIST not installed at {FASHION}")
def test_cnn_resume_is_bit_identical(tmp_path):
    cnn = load_example("train_cnn")
    # 3 steps per epoch, 2 epochs; augmentation on, so the transforms' generators matter too.
    args = ["--limit", "12", "--test-limit", "8", "--batch-size", "4", "--epochs", "2", "--warmup", "2",
            "--augment", "--plot", "", "--lr", "0.02"]
    full = cnn.main(args + ["--ckpt", str(tmp_path / "full.bm")])["losses"]
    assert len(full) == 6
    for stop in ("4",):  # inside the second epoch: the loader must be rewound mid-epoch
        ck = str(tmp_path / f"cut{stop}.bm")
        part = cnn.main(args + ["--ckpt", ck, "--stop-at", stop])
        assert part["test_acc"] is None and part["losses"] == full[:int(stop)]
        resumed = cnn.main(args + ["--ckpt", ck, "--resume"])["losses"]
        assert resumed == full, stop
