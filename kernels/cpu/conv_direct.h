// Switch for the CPU convolution's direct path (kernels/cpu/conv.cpp): float32 stride-1,
// dilation-1 convolutions with a kernel larger than 1x1 run their forward, input gradient
// and weight gradient as register-blocked AVX2/FMA kernels instead of im2col + sgemm. Tests
// and benches turn it off to compare against the im2col path.
#pragma once

namespace bigmodel::cpu {

// Default: on where the CPU has AVX2 + FMA, unless BIGMODEL_CONV_DIRECT=0 is set.
void set_conv_direct_enabled(bool enabled);
bool conv_direct_enabled();                  // on and usable on this CPU

}  // namespace bigmodel::cpu
