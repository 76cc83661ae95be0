"""Grad-CAM (Selvaraju et al. 2017) for CNNs: a forward hook keeps the chosen layer's
activations A [N, K, h, w], a full backward hook its output gradients dY/dA; the map is
relu(sum_k mean_ij(dY/dA_k) * A_k), one [h, w] map per image."""
import numpy as np

from .. import _C
from .._autograd import enable_grad
from ..nn.module import Module
from .gradients import _class_score, keep_parameter_grads


class GradCAM:
    """GradCAM(model, layer) -> cam(inputs, target=None) returns (maps [N, h, w], targets).

    layer: a submodule (or its dotted name) whose output is [N, K, h, w]. The hooks live
    until remove() (or the end of a `with GradCAM(...) as cam:` block). Maps are at the
    layer's resolution; upsample() scales them to the image.
    """

    def __init__(self, model, layer):
        if not isinstance(model, Module):
            raise TypeError(f"[GradCAM] model must be an nn.Module, got {type(model).__name__}")
        if isinstance(layer, str):
            layer = model.get_submodule(layer)
        if not isinstance(layer, Module):
            raise TypeError(f"[GradCAM] layer must be an nn.Module or a submodule name, got {type(layer).__name__}")
        self.model, self.layer = model, layer
        self.activations = None
        self.gradients = None
        self._handles = [layer.register_forward_hook(self._keep_activations),
                         layer.register_full_backward_hook(self._keep_gradients)]

    def _keep_activations(self, module, args, output):
        self.activations = output.detach() if isinstance(output, _C.Tensor) else output

    def _keep_gradients(self, module, grad_input, grad_output):
        self.gradients = grad_output[0].detach() if grad_output and grad_output[0] is not None else None

    def __call__(self, inputs, target=None):
        self.activations = self.gradients = None
        with enable_grad(), keep_parameter_grads(self.model):
            logits = self.model(inputs)
            a = self.activations
            if not isinstance(a, _C.Tensor) or a.dim() != 4:
                shape = list(a.shape) if isinstance(a, _C.Tensor) else type(a).__name__
                raise ValueError(f"[GradCAM] the layer must output [N, K, h, w] feature maps, got {shape}")
            score, targets = _class_score(logits, target, "GradCAM")
            score.backward()
        if self.activations is None or self.gradients is None:
            raise RuntimeError("[GradCAM] the layer was not part of the model's forward/backward pass")
        weights = self.gradients.mean((2, 3), keepdim=True)       # alpha_k: [N, K, 1, 1]
        cam = (weights * self.activations).sum(1)                  # [N, h, w]
        return cam.clamp(min=0.0), targets

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def upsample(maps, size, normalize=True):
    """Bilinear resize of maps [N, h, w] (Tensor or array) to size (H, W) as a NumPy array;
    normalize scales each map to [0, 1] (for overlays)."""
    a = maps.detach().to(_C.dtype.float64).numpy() if isinstance(maps, _C.Tensor) else np.asarray(maps, np.float64)
    if a.ndim != 3:
        raise ValueError(f"[upsample] maps must be [N, h, w], got shape {list(a.shape)}")
    H, W = size
    n, h, w = a.shape
    # Align corners off (pixel centres), as image resizing usually does.
    ys = np.clip((np.arange(H) + 0.5) * h / H - 0.5, 0, h - 1)
    xs = np.clip((np.arange(W) + 0.5) * w / W - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[None, :, None], (xs - x0)[None, None, :]
    top = a[:, y0][:, :, x0] * (1 - fx) + a[:, y0][:, :, x1] * fx
    bottom = a[:, y1][:, :, x0] * (1 - fx) + a[:, y1][:, :, x1] * fx
    out = top * (1 - fy) + bottom * fy
    if normalize:
        lo = out.min(axis=(1, 2), keepdims=True)
        span = out.max(axis=(1, 2), keepdims=True) - lo
        out = (out - lo) / np.where(span > 0, span, 1.0)
    return out


__all__ = ["GradCAM", "upsample"]
