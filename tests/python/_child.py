"""Shared by the tests that need a fresh process (test_cpu_memory_stats.py,
test_cuda_allocator_nocache.py): settings such as the allocators' environment variables are
read once at start-up, so each setting runs in a child python importing this same build."""
import json
import os
import subprocess
import sys

import bigmodel as bm


def run_child_json(code, timeout, env_set=None, env_drop=()):
    """Runs `code` in a child python with this bigmodel on its path, the variables of env_set
    set and those of env_drop removed; asserts it exits 0 and returns the JSON value its
    last line of output holds."""
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(bm.__file__)))
    env["PYTHONPATH"] = pkg_parent + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_set or {})
    for name in env_drop:
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])
