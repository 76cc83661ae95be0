"""bm.save / bm.load: checkpoints of nested dicts, lists and tuples holding tensors and plain
Python values, stored as one safetensors file. Tensors go into the file under flattened keys
("model.fc.weight", "optim.state.0.exp_avg"); the structure and every other value go into
the header's __metadata__ as JSON. Saving writes a temporary file in the same directory,
fsyncs it and renames it over the target, so a failed or interrupted save keeps the old file.

bm.save_file / bm.load_file read and write plain {name: tensor} safetensors files.
"""
import json
import math
import os
import tempfile
from collections import OrderedDict

from . import _C

_FORMAT = "bigmodel.checkpoint"
_VERSION = "1"
_MARKERS = ("__tensor__", "__tuple__", "__items__", "__odict__", "__float__", "__dtype__", "__device__",
            "__ndarray__")


class _Encoder:
    """Turns an object tree into JSON-safe structure plus a list of (key, tensor)."""

    def __init__(self):
        self.tensors = []
        self._keys = set()

    def _key(self, path):
        base = ".".join(path) if path else "tensor"
        key, n = base, 1
        while key in self._keys:
            key = f"{base}#{n}"
            n += 1
        self._keys.add(key)
        return key

    def encode(self, obj, path):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"__float__": repr(obj)}
        if isinstance(obj, _C.Tensor):
            from .nn.parameter import is_parameter
            key = self._key(path)
            self.tensors.append((key, obj.detach()))
            enc = {"__tensor__": key}
            if is_parameter(obj):
                enc["parameter"] = True
                enc["requires_grad"] = bool(obj.requires_grad)
            return enc
        if isinstance(obj, _C.dtype):
            return {"__dtype__": str(obj).split(".")[-1]}
        if isinstance(obj, _C.device):
            return {"__device__": str(obj)}
        if isinstance(obj, (list, tuple)):
            items = [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]
            return {"__tuple__": items} if isinstance(obj, tuple) else items
        if isinstance(obj, dict):
            ordered = isinstance(obj, OrderedDict)
            plain = not ordered and all(isinstance(k, str) and not k.startswith("__") for k in obj)
            if plain:
                return {k: self.encode(v, path + [k]) for k, v in obj.items()}
            items = [[self.encode_key(k, path), self.encode(v, path + [str(k)])] for k, v in obj.items()]
            return {"__odict__" if ordered else "__items__": items}
        np_value = _numpy_value(obj)
        if np_value is not None:
            kind, value = np_value
            if kind == "scalar":
                return self.encode(value, path)
            key = self._key(path)
            self.tensors.append((key, value))
            return {"__ndarray__": key}
        raise TypeError(f"[save] cannot serialise an object of type {type(obj).__name__} at "
                        f"'{'.'.join(path) or '<root>'}': only tensors, dicts, lists, tuples, numbers, strings, "
                        "bools, None, dtypes, devices and NumPy arrays are supported")

    def encode_key(self, k, path):
        if isinstance(k, _C.Tensor) or isinstance(k, (dict, list)):
            raise TypeError(f"[save] unsupported dict key of type {type(k).__name__} at '{'.'.join(path)}'")
        return self.encode(k, path + ["<key>"])


def _numpy_value(obj):
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return None
    if isinstance(obj, np.generic):
        return "scalar", obj.item()
    if isinstance(obj, np.ndarray):
        if obj.dtype not in (np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_):
            raise TypeError(f"[save] NumPy arrays of dtype {obj.dtype} are not supported")
        return "array", _C._from_numpy_copy(np.ascontiguousarray(obj))
    return None


def _decode(obj, tensors, path="<root>"):
    if isinstance(obj, list):
        return [_decode(v, tensors, path) for v in obj]
    if not isinstance(obj, dict):
        return obj
    marker = next((m for m in _MARKERS if m in obj), None)
    if marker is None:
        return {k: _decode(v, tensors, f"{path}.{k}") for k, v in obj.items()}
    value = obj[marker]
    if marker in ("__tensor__", "__ndarray__"):
        if value not in tensors:
            raise ValueError(f"[load] the structure refers to tensor '{value}', which the file does not hold")
        t = tensors[value]
        if marker == "__ndarray__":
            return t.numpy()
        if obj.get("parameter"):
            from .nn.parameter import Parameter
            return Parameter(t, requires_grad=bool(obj.get("requires_grad", True)))
        return t
    if marker == "__tuple__":
        return tuple(_decode(v, tensors, path) for v in value)
    if marker in ("__items__", "__odict__"):
        pairs = [(_hashable(_decode(k, tensors, path)), _decode(v, tensors, path)) for k, v in value]
        return OrderedDict(pairs) if marker == "__odict__" else dict(pairs)
    if marker == "__float__":
        if not isinstance(value, str):
            raise ValueError(f"[load] a __float__ record holds {type(value).__name__}, expected a string")
        return float(value)
    if marker == "__dtype__":
        dtype = getattr(_C.dtype, value, None) if isinstance(value, str) and not value.startswith("_") else None
        if not isinstance(dtype, _C.dtype):
            raise ValueError(f"[load] unknown dtype {value!r} in the checkpoint")
        return dtype
    if not isinstance(value, str):  # __device__
        raise ValueError(f"[load] a __device__ record holds {type(value).__name__}, expected a string")
    return _C.device(value)


def _hashable(k):
    return tuple(_hashable(v) for v in k) if isinstance(k, (list, tuple)) else k


def _atomic_write(path, data):
    """Writes bytes to a temporary file beside `path`, fsyncs, then renames it over `path`."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (not possible on every platform)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _write(f, data):
    if hasattr(f, "write"):
        f.write(data)
    else:
        _atomic_write(f, data)


def _read(f):
    if hasattr(f, "read"):
        return f.read()
    with open(os.fspath(f), "rb") as fh:  # FileNotFoundError for a missing path, as torch.load
        return fh.read()


def _check_metadata(metadata):
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise TypeError("[save_file] metadata must be a dict of str to str")
    return dict(metadata)


def save(obj, f):
    """Saves a nested structure of tensors and plain values to a path (atomically) or a binary file object."""
    enc = _Encoder()
    structure = enc.encode(obj, [])
    meta = {"format": _FORMAT, "version": _VERSION, "structure": json.dumps(structure, allow_nan=False)}
    data = _C._safetensors_serialize(enc.tensors, meta)  # everything is built before the disk is touched
    _write(f, data)


def load(f, map_location=None, weights_only=True):
    """Loads what save() wrote; a plain safetensors file loads as {name: tensor}.

    map_location: a device (or its name) to move the tensors to. weights_only is accepted for
    PyTorch compatibility; nothing here can run code while loading.
    """
    del weights_only
    tensors_list, meta = _C._safetensors_deserialize(_read(f))
    tensors = {}
    for name, t in tensors_list:
        tensors[name] = t if map_location is None else t.to(_C.device(str(map_location)))
    if meta.get("format") != _FORMAT:
        return tensors
    if meta.get("version") != _VERSION:
        raise ValueError(f"[load] checkpoint format version {meta.get('version')!r} is not supported "
                         f"(this build reads version {_VERSION})")
    try:
        structure = json.loads(meta["structure"])
    except (KeyError, ValueError, RecursionError) as e:  # RecursionError: absurdly deep nesting
        raise ValueError(f"[load] the checkpoint's structure record is missing or corrupt: {e!r}") from None
    try:
        return _decode(structure, tensors)
    except ValueError as e:
        if str(e).startswith("[load]"):
            raise
        raise ValueError(f"[load] the checkpoint's structure record is malformed: {e}") from None
    except (TypeError, AttributeError, KeyError, IndexError, RuntimeError) as e:  # RecursionError too
        raise ValueError(f"[load] the checkpoint's structure record is malformed: {e!r}") from None


def save_file(tensors, filename, metadata=None):
    """Writes {name: tensor} as a safetensors file (atomically), with optional str->str metadata."""
    if not isinstance(tensors, dict):
        raise TypeError(f"[save_file] expected a dict of name -> Tensor, got {type(tensors).__name__}")
    for k, v in tensors.items():
        if not isinstance(k, str) or not isinstance(v, _C.Tensor):
            raise TypeError(f"[save_file] expected a dict of str -> Tensor, got an entry {type(k).__name__} -> "
                            f"{type(v).__name__}")
    data = _C._safetensors_serialize([(k, v.detach()) for k, v in tensors.items()], _check_metadata(metadata))
    _write(filename, data)


def load_file(filename, device="cpu"):
    """Reads a safetensors file into {name: tensor} on `device`."""
    tensors, _ = _C._safetensors_deserialize(_read(filename))
    dev = _C.device(str(device))
    return {name: (t if str(dev) == "cpu" else t.to(dev)) for name, t in tensors}


def load_metadata(filename):
    """The __metadata__ dict of a safetensors file."""
    return _C._safetensors_deserialize(_read(filename))[1]


__all__ = ["save", "load", "save_file", "load_file", "load_metadata"]
