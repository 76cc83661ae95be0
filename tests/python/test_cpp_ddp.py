"""The C++ data-parallel example (examples/cpp/train_ddp.cpp): launched with
`mpirun -np 2`, it trains on a Fashion-MNIST subset, exits 0, and both ranks end with the
same parameters (each rank prints a checksum of its final parameters). Skips when mpirun,
the binary (built only with MPI) or the dataset is missing."""
import os
import re
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FASHION = "/usr/share/datasets/fashion-mnist"


def _binary():
    roots = []
    env = os.environ.get("BIGMODEL_BUILD_DIR")
    if env:
        roots += [env, os.path.join(REPO, env)]
    roots.append(os.path.join(REPO, "build"))
    for root in roots:
        path = os.path.join(root, "examples", "cpp", "train_ddp")
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    pytest.skip("examples/cpp/train_ddp is not built (CMake target 'train_ddp', built when MPI is found; "
                "looked under $BIGMODEL_BUILD_DIR and ./build)")


def _launch(binary, *args):
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.skip("mpirun not found (apt-get install openmpi-bin)")
    if not os.path.isdir(FASHION):
        pytest.skip(f"Fashion-MNIST not installed at {FASHION}")
    # A parent that itself runs under mpirun (or joined MPI) must not leak its job's
    # variables into the new job.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PRTE_", "OPAL_"))}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2", binary, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)


def test_cpp_ddp_example_trains_and_ranks_agree():
    out = _launch(_binary(), "--limit", "2000", "--test-limit", "1000", "--epochs", "1")
    assert out.returncode == 0, f"train_ddp failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    sums = dict(re.findall(r"rank (\d) param checksum (\S+)", out.stdout))
    assert sorted(sums) == ["0", "1"], out.stdout
    assert sums["0"] == sums["1"]  # bit-identical parameters on both ranks
    m = re.search(r"epoch 1: train loss ([\d.]+)\s+test acc ([\d.]+)", out.stdout)
    assert m, out.stdout
    assert float(m.group(1)) < 2.0 and float(m.group(2)) > 0.5  # it learnt (chance: 2.30 / 0.10)
    assert out.stdout.count("epoch 1:") == 1  # only rank 0 reports
    assert "over 2 ranks); 1000 training images per rank" in out.stdout


def test_cpp_ddp_example_rejects_bad_arguments():
    out = _launch(_binary(), "--epochs", "0")
    assert out.returncode != 0
    assert "must be positive" in out.stderr
