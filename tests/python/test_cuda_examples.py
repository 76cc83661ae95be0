"""cuda tier: the character examples (examples/train_gpt.py, examples/train_lstm.py) with
--device cuda, each run in its own process at tiny sizes for a few steps: the run finishes
on the GPU, the loss falls, its checkpoint loads on the CPU, a --resume on the GPU gives the
uninterrupted GPU run's losses, and checkpoints cross devices both ways (GPU -> CPU resume,
CPU -> GPU resume). Also --amp on the GPU (autocast("cuda"), GradScaler("cuda")) and, where
two GPUs (or two emulated ones) and mpirun are at hand, a 2-rank --ddp/--zero run with each
rank on its own GPU. Skips without a GPU."""
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import bigmodel as bm

from _examples import ROOT, make_fortunes

pytestmark = pytest.mark.skipif(not bm.cuda.is_available(), reason="no CUDA GPU visible")


def _emulated():
    """True for the CUDA emulation build (tests/cuda_emu): its build tree says so."""
    cache = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(bm._C.__file__)))),
                         "CMakeCache.txt")
    try:
        with open(cache, encoding="utf-8", errors="replace") as f:
            return "BIGMODEL_CUDA:STRING=EMULATE" in f.read()
    except OSError:
        return False


# A resume restores every state exactly (weights, AdamW moments and step, schedule, both RNGs),
# so a resumed run computes the same thing as the uninterrupted one. On the emulator (and
# the CPU) the kernels are deterministic (blocks run in a fixed order), so the losses must be
# equal bit for bit. On a real GPU the embedding backward accumulates with atomicAdd
# (docs/PERF.md, "Indexing"; the tensor-core attention backward's dQ too): repeated
# characters in a batch add their gradients in a run-to-run varying order, so even two uninterrupted runs differ in the last bits, and
# Adam's first steps (update ~ lr * sign(g)) can amplify that for near-zero gradients.
# Hence a tolerance there.
SAME_DEVICE_RTOL = 0.0 if _emulated() else 1e-3
# Across devices (CPU <-> GPU) the kernels round differently (7e-8 relative on the emulator
# for these runs); the same amplification applies, so a loose bound.
CROSS_DEVICE_RTOL = 2e-3


def assert_same_run(actual, expected):
    if SAME_DEVICE_RTOL == 0.0:
        assert actual == expected  # every float equal, not merely close
    else:
        np.testing.assert_allclose(actual, expected, rtol=SAME_DEVICE_RTOL)


@pytest.fixture(scope="module")
def fortunes_root(tmp_path_factory):
    return make_fortunes(tmp_path_factory.mktemp("corpus"))


def child_env(**extra):
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(bm.__file__)))
    env["PYTHONPATH"] = pkg_parent + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_example(name, args, timeout=300):
    """Runs examples/<name>.py in a fresh python; asserts it exits 0 and returns its stdout."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", f"{name}.py"), *args],
                          env=child_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{name} {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def ckpt_losses(out):
    """The per-step losses the run's checkpoint holds, read on the CPU."""
    ck = bm.load(os.path.join(out, "ckpt.bm"))
    return [float(v) for v in ck["losses"]], ck


def gpt_args(root, out, device, *extra):
    return ["--root", root, "--out", str(out), "--device", device, "--steps", "6", "--batch-size", "3",
            "--block-size", "12", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--dropout", "0.1",
            "--warmup", "2", "--eval-every", "3", "--eval-batches", "1", "--sample-len", "6",
            "--save-every", "100", "--no-plot", *extra]


def lstm_args(root, out, device, *extra):
    return ["--root", root, "--out", str(out), "--device", device, "--steps", "6", "--batch-size", "3",
            "--seq-len", "10", "--embed", "8", "--hidden", "12", "--layers", "2", "--dropout", "0.2",
            "--lr", "0.02", "--sample-every", "3", "--sample-len", "5", "--eval-batches", "1",
            "--save-every", "100", "--no-plot", *extra]


EXAMPLES = {"train_gpt": gpt_args, "train_lstm": lstm_args}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_trains_on_gpu_and_resumes_exactly(name, tmp_path, fortunes_root):
    make_args = EXAMPLES[name]
    out = run_example(name, make_args(fortunes_root, tmp_path / "full", "cuda"))
    assert out.splitlines()[0].startswith("fortunes:") and out.splitlines()[0].endswith("on cuda:0")
    full, ck = ckpt_losses(tmp_path / "full")
    assert len(full) == 6 and all(math.isfinite(v) for v in full)
    assert full[-1] < full[0], full
    # The GPU run's checkpoint is plain CPU data once loaded: every tensor on the CPU.
    tensors = [v for v in ck["model"].values()]
    assert tensors and all(t.device.type == "cpu" for t in tensors)

    cut = run_example(name, make_args(fortunes_root, tmp_path / "cut", "cuda", "--stop-at", "3"))
    assert "stopped at step 3" in cut
    assert_same_run(ckpt_losses(tmp_path / "cut")[0], full[:3])
    shutil.copytree(tmp_path / "cut", tmp_path / "cut_cpu")  # the same checkpoint, resumed on the CPU below
    resumed = run_example(name, make_args(fortunes_root, tmp_path / "cut", "cuda", "--resume"))
    assert "resumed from" in resumed
    assert_same_run(ckpt_losses(tmp_path / "cut")[0], full)

    # GPU checkpoint -> CPU resume: finishes, with the GPU run's losses up to rounding.
    run_example(name, make_args(fortunes_root, tmp_path / "cut_cpu", "cpu", "--resume"))
    on_cpu = ckpt_losses(tmp_path / "cut_cpu")[0]
    assert_same_run(on_cpu[:3], full[:3])  # the GPU steps, carried in the checkpoint
    np.testing.assert_allclose(on_cpu[3:], full[3:], rtol=CROSS_DEVICE_RTOL)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_cpu_checkpoint_resumes_on_gpu(name, tmp_path, fortunes_root):
    make_args = EXAMPLES[name]
    run_example(name, make_args(fortunes_root, tmp_path / "cpu", "cpu"))
    cpu_full = ckpt_losses(tmp_path / "cpu")[0]
    run_example(name, make_args(fortunes_root, tmp_path / "cut", "cpu", "--stop-at", "3"))
    run_example(name, make_args(fortunes_root, tmp_path / "cut", "cuda", "--resume"))
    mixed = ckpt_losses(tmp_path / "cut")[0]
    assert mixed[:3] == cpu_full[:3]
    np.testing.assert_allclose(mixed[3:], cpu_full[3:], rtol=CROSS_DEVICE_RTOL)


def test_gpt_amp_on_gpu(tmp_path, fortunes_root):
    # autocast("cuda") in bfloat16, and float16 with GradScaler("cuda"): a few finite steps
    # near the float32 run's losses (as test_resume.py checks bf16 on the CPU).
    run_example("train_gpt", gpt_args(fortunes_root, tmp_path / "f32", "cuda", "--steps", "3"))
    base = ckpt_losses(tmp_path / "f32")[0]
    for amp in ("bf16", "fp16"):
        run_example("train_gpt", gpt_args(fortunes_root, tmp_path / amp, "cuda", "--steps", "3", "--amp", amp))
        losses, ck = ckpt_losses(tmp_path / amp)
        assert losses != base, amp  # autocast really ran in low precision
        assert all(abs(a - b) < 0.05 * b for a, b in zip(losses, base)), (amp, losses, base)
        if amp == "fp16":
            assert ck["scaler"]["scale"] > 0


DDP_DRIVER = r"""
import json, os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "python"))
import bigmodel as bm
import bigmodel.distributed as dist
from _examples import load_example
gpt = load_example("train_gpt")
base = ["--root", sys.argv[2], "--steps", "4", "--batch-size", "2", "--block-size", "12", "--n-layer", "1",
        "--n-head", "2", "--n-embd", "16", "--warmup", "2", "--eval-every", "4", "--eval-batches", "1",
        "--sample-len", "6", "--save-every", "100", "--no-plot", "--device", "cuda"]
res = {}
for mode in ("ddp", "zero"):  # the first main() joins the job itself, as under `mpirun train_gpt.py --ddp`
    r = gpt.main(base + ["--out", os.path.join(sys.argv[3], mode), "--" + mode])
    res[mode], res[mode + "_device"] = r["losses"], r["device"]
res["rank"], res["current"] = dist.get_rank(), bm.cuda.current_device()
# Every rank alone on the union of the ranks' batches (as tests/dist/test_zero.py does).
out = os.path.join(sys.argv[3], "single%d" % res["rank"])
res["single"] = gpt.main(base + ["--out", out, "--batch-size", "4"])["losses"]
# One file per rank: mpirun may interleave the ranks' stdout within a line.
with open(os.path.join(sys.argv[3], "result%d.json" % res["rank"]), "w") as f:
    json.dump(res, f)
dist.barrier()
"""


def _gpus_for_two_ranks():
    """How many GPUs a child sees with BIGMODEL_EMU_DEVICES=2 (the emulator's count; a real
    machine's own count)."""
    proc = subprocess.run([sys.executable, "-c", "import bigmodel as bm; print(bm.cuda.device_count())"],
                          env=child_env(BIGMODEL_EMU_DEVICES="2"), capture_output=True, text=True, timeout=60)
    return int(proc.stdout.strip() or 0) if proc.returncode == 0 else 0


def test_gpt_ddp_two_ranks_each_on_its_gpu(tmp_path, fortunes_root):
    import bigmodel.distributed as dist
    if shutil.which("mpirun") is None or not (dist.is_mpi_available() and dist.is_nccl_available()):
        pytest.skip("needs mpirun and a build with MPI and NCCL")
    if int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
        pytest.skip("already under mpirun")
    if _gpus_for_two_ranks() < 2:
        pytest.skip("needs two GPUs (or the emulation build's BIGMODEL_EMU_DEVICES=2)")
    # A rank that fails leaves the other waiting in a collective: short timeouts end the job soon.
    env = child_env(BIGMODEL_EMU_DEVICES="2", OMP_NUM_THREADS="1", BIGMODEL_EMU_NCCL_TIMEOUT="20",
                    BIGMODEL_DIST_TIMEOUT="30")
    passed = [a for v in ("PYTHONPATH", "BIGMODEL_BUILD_DIR", "BIGMODEL_EMU_DEVICES", "OMP_NUM_THREADS",
                          "BIGMODEL_EMU_NCCL_TIMEOUT", "BIGMODEL_DIST_TIMEOUT") if v in env for a in ("-x", v)]
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", *passed,
           sys.executable, "-c", DDP_DRIVER, ROOT, fortunes_root, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    results = [json.loads((tmp_path / f"result{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["rank"] for r in results] == [0, 1]
    for r in results:  # "cuda" under mpirun is the rank's own GPU
        assert r["current"] == r["rank"]
        assert r["ddp_device"] == r["zero_device"] == f"cuda:{r['rank']}"
    ddp = results[0]["ddp"]
    assert len(ddp) == 4 and all(math.isfinite(v) for v in ddp) and ddp[-1] < ddp[0]
    assert results[1]["ddp"] == ddp  # the printed loss is the mean over ranks: the same on both
    for r in results:
        assert_same_run(r["zero"], ddp)  # ZeRO-1 changes no number
        # The averaged gradients are those of the 2x larger batch: the single process's losses.
        np.testing.assert_allclose(ddp, r["single"], rtol=max(1e-4, SAME_DEVICE_RTOL))
