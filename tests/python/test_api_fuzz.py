"""Random calls into the whole public API with odd arguments must raise Python exceptions,
never crash the interpreter. Each seed runs in a child process (api_fuzz.py)."""
import os
import subprocess
import sys

import pytest

import bigmodel

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_api_calls_never_crash(seed):
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(bigmodel.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, os.path.join(HERE, "api_fuzz.py"), str(seed), "5000"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, (
        f"seed {seed}: exit {proc.returncode} (negative = killed by a signal)\n{proc.stdout[-2000:]}\n"
        f"{proc.stderr[-4000:]}\nrerun with BIGMODEL_FUZZ_TRACE=1 to see the last call")
    assert proc.stdout.strip().endswith("ok 5000")
