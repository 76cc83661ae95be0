"""Runs a GPU bench with a CPU-only PyTorch posing as PyTorch on CUDA, so the benches' torch
peer code (columns, ratios, fallbacks) runs on a machine without a GPU: device="cuda" becomes
the CPU, .cuda() is a no-op, torch.cuda.Event times with the host clock. For
scripts/cuda_emu_benches.sh (with --smoke sizes); its numbers mean nothing.
Usage: python bench/_torch_cpu_as_cuda.py bench/bench_<name>_cuda.py [bench args...]"""
import os
import runpy
import sys
import time

import torch


def _dev(d):
    return "cpu" if d is not None and str(d).startswith("cuda") else d


def _strip_device(fn):
    def wrapped(*args, **kwargs):
        if "device" in kwargs:
            kwargs["device"] = _dev(kwargs["device"])
        return fn(*args, **kwargs)
    return wrapped


for _name in ("randn", "rand", "randint", "empty", "zeros", "ones", "full", "tensor", "arange", "as_tensor",
              "randn_like", "rand_like", "zeros_like", "ones_like", "empty_like"):
    setattr(torch, _name, _strip_device(getattr(torch, _name)))


def _to_cpu(orig):
    def to(self, *args, **kwargs):
        args = tuple(_dev(a) if isinstance(a, (str, torch.device)) else a for a in args)
        if "device" in kwargs:
            kwargs["device"] = _dev(kwargs["device"])
        return orig(self, *args, **kwargs)
    return to


torch.Tensor.to = _to_cpu(torch.Tensor.to)
torch.Tensor.cuda = lambda self, *a, **k: self
torch.nn.Module.to = _to_cpu(torch.nn.Module.to)
torch.nn.Module.cuda = lambda self, *a, **k: self


class _HostEvent:
    def __init__(self, enable_timing=False, **_):
        self.t = None

    def record(self, stream=None):
        self.t = time.perf_counter()

    def synchronize(self):
        pass

    def elapsed_time(self, end):
        return (end.t - self.t) * 1e3


# An old CPU torch (1.x) lacks what the benches call on a recent one: stand-ins, so the
# benches' torch code paths still run (the real GPU box has torch 2.x).
if not hasattr(torch.nn.functional, "scaled_dot_product_attention"):
    def _sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
        s = (q @ k.transpose(-2, -1)) * (scale or q.shape[-1] ** -0.5)
        if is_causal:
            keep = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
            s = s.masked_fill(~keep, float("-inf"))
        return s.softmax(-1) @ v
    torch.nn.functional.scaled_dot_product_attention = _sdpa

_AdamW = torch.optim.AdamW


class _AdamWNoFused(_AdamW):
    def __init__(self, *args, fused=None, **kwargs):
        super().__init__(*args, **kwargs)


try:
    _AdamW([torch.nn.Parameter(torch.zeros(1))], fused=True)
except TypeError:  # torch < 2.0: no fused AdamW; the plain one stands in
    torch.optim.AdamW = _AdamWNoFused
except Exception:  # noqa: BLE001 - fused exists but wants CUDA tensors: keep it (the bench says why)
    pass

torch.cuda.is_available = lambda: True
torch.cuda.synchronize = lambda *a, **k: None
torch.cuda.Event = _HostEvent

if __name__ == "__main__":
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    print("note: PyTorch on the CPU posing as CUDA (bench/_torch_cpu_as_cuda.py): torch numbers mean nothing",
          flush=True)
    runpy.run_path(script, run_name="__main__")
