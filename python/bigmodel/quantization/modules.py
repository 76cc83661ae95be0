"""Quantized layers and post-training quantization of a model.

QuantizedLinear / QuantizedConv2d hold int8 weights (per-output-channel scales), a float
bias and a calibrated per-tensor input scale, all as buffers, so state_dict / bm.save store
them (one byte per weight). forward quantizes the input with that scale, runs the int8 GEMM
(int32 accumulation) and applies the scales and bias in a float epilogue. Inference only.
"""
import numpy as np

from .. import _C
from .. import nn
from .._autograd import no_grad
from .observer import OBSERVERS
from .qtensor import QTensor, quantize_per_channel


class _QuantizedBase(nn.Module):
    def _init_buffers(self, out_channels, k, bias):
        self.register_buffer("weight_q", _C.zeros(out_channels, _C._int8_words(k), dtype=_C.dtype.int32))
        self.register_buffer("weight_scale", _C.ones(out_channels, dtype=_C.dtype.float32))
        self.register_buffer("input_scale", _C.ones(1, dtype=_C.dtype.float32))
        self.register_buffer("bias", _C.zeros(out_channels, dtype=_C.dtype.float32) if bias else None)

    def _set_from_float(self, weight, bias, input_scale):
        if not isinstance(input_scale, (int, float)) or not input_scale > 0:
            raise ValueError(f"[{type(self).__name__}] input_scale must be a positive number, got {input_scale!r}")
        q = quantize_per_channel(weight.detach().to(_C.dtype.float32), axis=0)
        self.weight_q = q.data
        self.weight_scale = q.scale
        self.input_scale = _C.full((1,), float(input_scale), dtype=_C.dtype.float32)
        if bias is not None:
            self.bias = bias.detach().to(_C.dtype.float32).contiguous()

    def weight(self):
        """The int8 weight as a QTensor (per-channel along axis 0)."""
        return QTensor(self.weight_q, self.weight_scale, self._weight_shape(), axis=0)

    def dequantized_weight(self):
        return self.weight().dequantize()


class QuantizedLinear(_QuantizedBase):
    """y = int8(x) @ int8(W)^T * (s_x * s_w) + b, for x [..., in_features]."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._init_buffers(out_features, in_features, bias)

    def _weight_shape(self):
        return (self.out_features, self.in_features)

    @classmethod
    def from_float(cls, linear, input_scale):
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"[QuantizedLinear] from_float expects an nn.Linear, got {type(linear).__name__}")
        out_f, in_f = linear.weight.shape
        m = cls(in_f, out_f, bias=linear.bias is not None)
        m._set_from_float(linear.weight, linear.bias, input_scale)
        return m

    def forward(self, x):
        return _C._quantized_linear(x, self.weight_q, self.in_features, self.weight_scale, self.input_scale,
                                    self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"input_scale={float(self.input_scale[0]):.4g}")


class QuantizedConv2d(_QuantizedBase):
    """2-D convolution (groups 1) with int8 weights and activations; input [N, C, H, W] or [C, H, W]."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True):
        super().__init__()
        pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = pair(kernel_size), pair(stride)
        self.padding, self.dilation = pair(padding), pair(dilation)
        self._init_buffers(out_channels, in_channels * self.kernel_size[0] * self.kernel_size[1], bias)

    def _weight_shape(self):
        return (self.out_channels, self.in_channels) + self.kernel_size

    @staticmethod
    def supports(conv):
        """Float convs this layer can replace: groups 1, numeric (not 'same'/'valid') padding, zeros mode."""
        return (isinstance(conv, nn.Conv2d) and getattr(conv, "groups", 1) == 1
                and not isinstance(getattr(conv, "padding", 0), str)
                and getattr(conv, "padding_mode", "zeros") == "zeros")

    @classmethod
    def from_float(cls, conv, input_scale):
        if not cls.supports(conv):
            raise ValueError(f"[QuantizedConv2d] from_float needs an nn.Conv2d with groups=1 and numeric zero "
                             f"padding, got {conv!r}")
        o, c, kh, kw = conv.weight.shape
        m = cls(c, o, (kh, kw), conv.stride, conv.padding, conv.dilation, bias=conv.bias is not None)
        m._set_from_float(conv.weight, conv.bias, input_scale)
        return m

    def forward(self, x):
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        y = _C._quantized_conv2d(x, self.weight_q, list(self._weight_shape()), self.weight_scale, self.input_scale,
                                 self.bias, stride=list(self.stride), padding=list(self.padding),
                                 dilation=list(self.dilation))
        return y.squeeze(0) if unbatched else y

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, input_scale={float(self.input_scale[0]):.4g}")


def _targets(model, exclude):
    """(dotted name, parent, attribute, layer) of every Linear / supported Conv2d not excluded."""
    out = []
    for name, parent in model.named_modules():
        for attr, child in parent._modules.items():
            full = f"{name}.{attr}" if name else attr
            if child is None or full in exclude:
                continue
            if isinstance(child, nn.Linear) or QuantizedConv2d.supports(child):
                out.append((full, parent, attr, child))
    return out


def quantize_model(model, calibration_batches, observer="minmax", exclude=()):
    """Post-training static quantization, in place: runs the calibration batches (inputs, or
    (inputs, ...) tuples whose first item is fed to the model) through model in eval mode,
    observing each Linear / Conv2d input, then replaces those layers by QuantizedLinear /
    QuantizedConv2d with per-channel weight scales and the observed input scales. exclude
    names layers (dotted names) to keep in float. Returns the model (in eval mode)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"[quantize_model] model must be an nn.Module, got {type(model).__name__}")
    if observer not in OBSERVERS:
        raise ValueError(f"[quantize_model] observer must be one of {sorted(OBSERVERS)}, got {observer!r}")
    targets = _targets(model, set(exclude))
    if not targets:
        raise ValueError("[quantize_model] the model has no Linear or Conv2d layer to quantize")
    observers = {full: OBSERVERS[observer]() for full, _, _, _ in targets}
    handles = [child.register_forward_pre_hook(lambda m, args, o=observers[full]: o(args[0]))
               for full, _, _, child in targets]
    model.eval()
    try:
        with no_grad():
            n = 0
            for batch in calibration_batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(x)
                n += 1
        if n == 0:
            raise ValueError("[quantize_model] calibration_batches was empty")
    finally:
        for h in handles:
            h.remove()
    for full, parent, attr, child in targets:
        qcls = QuantizedLinear if isinstance(child, nn.Linear) else QuantizedConv2d
        setattr(parent, attr, qcls.from_float(child, observers[full].scale()))
    return model


def quantized_layer_names(model):
    return [name for name, m in model.named_modules() if isinstance(m, _QuantizedBase)]


def save_quantized(model, path):
    """bm.save of the quantized model's state_dict plus the names of its quantized layers."""
    from ..serialization import save
    names = quantized_layer_names(model)
    if not names:
        raise ValueError("[save_quantized] the model has no quantized layers (run quantize_model first)")
    save({"format": "bigmodel.int8", "quantized_layers": names, "state_dict": model.state_dict()}, path)


def load_quantized(model, path):
    """Loads a save_quantized file into `model`, a float model of the same architecture (fresh
    or trained): the layers listed in the file become empty quantized layers, then the state
    dict is loaded strictly. Returns the model in eval mode."""
    from ..serialization import load
    ckpt = load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != "bigmodel.int8":
        raise ValueError(f"[load_quantized] {path} is not a quantized model saved by save_quantized")
    names = set(ckpt["quantized_layers"])
    found = set()
    for full, parent, attr, child in _targets(model, set()):
        if full not in names:
            continue
        found.add(full)
        if isinstance(child, nn.Linear):
            out_f, in_f = child.weight.shape
            q = QuantizedLinear(in_f, out_f, bias=child.bias is not None)
        else:
            o, c, kh, kw = child.weight.shape
            q = QuantizedConv2d(c, o, (kh, kw), child.stride, child.padding, child.dilation,
                                bias=child.bias is not None)
        setattr(parent, attr, q)
    missing = sorted(names - found)
    if missing:
        raise ValueError(f"[load_quantized] the model has no Linear/Conv2d layers named {missing}")
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model.eval()


__all__ = ["QuantizedLinear", "QuantizedConv2d", "quantize_model", "save_quantized", "load_quantized",
           "quantized_layer_names"]
