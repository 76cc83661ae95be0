"""bm.quantization: int8 post-training quantization.

    qmodel = bm.quantization.quantize_model(model, calibration_batches)   # in place
    bm.quantization.save_quantized(qmodel, "model.int8.safetensors")
    qmodel = bm.quantization.load_quantized(ArticleCNN(), "model.int8.safetensors")

Symmetric int8 (zero point 0, values in [-127, 127]); weights per output channel,
activations per tensor with scales calibrated by observers; int8 x int8 -> int32 GEMM with
the scales applied in a float epilogue (core/ops/quant.h, kernels/cpu/int8_gemm.cpp).
"""
from .qtensor import QTensor, quantize_per_tensor, quantize_per_channel, dequantize, int8_matmul
from .observer import MinMaxObserver, PercentileObserver
from .modules import (QuantizedLinear, QuantizedConv2d, quantize_model, save_quantized, load_quantized,
                      quantized_layer_names)

__all__ = ["QTensor", "quantize_per_tensor", "quantize_per_channel", "dequantize", "int8_matmul",
           "MinMaxObserver", "PercentileObserver", "QuantizedLinear", "QuantizedConv2d", "quantize_model",
           "save_quantized", "load_quantized", "quantized_layer_names"]
