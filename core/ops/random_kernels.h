// Kernel families of the random ops. Every output handed to these kernels is contiguous;
// element i is computed from (state.seed, state.offset + i / V, lane i % V) with the
// layout documented in core/philox.h, so any device can reproduce any element.
#pragma once
#include "core/dispatch.h"
#include "core/random.h"
#include "core/tensor.h"

namespace bigmodel {

// out ~ U[from, to) (floating dtypes).
BM_DECLARE_KERNEL(uniform_kernel, void (*)(const Tensor& out, PhiloxState state, double from, double to));
// out ~ N(mean, std^2) (floating dtypes).
BM_DECLARE_KERNEL(normal_kernel, void (*)(const Tensor& out, PhiloxState state, double mean, double std));
// out = low + (64-bit draw mod range): integers uniform in [low, low + range) (any dtype).
BM_DECLARE_KERNEL(randint_kernel, void (*)(const Tensor& out, PhiloxState state, int64_t low, uint64_t range));
// out = (u < p) ? value : 0 (any dtype).
BM_DECLARE_KERNEL(bernoulli_kernel, void (*)(const Tensor& out, PhiloxState state, double p, double value));
// out = (u < probs[i]) ? 1 : 0; out and probs contiguous, same shape and floating dtype.
BM_DECLARE_KERNEL(bernoulli_tensor_kernel, void (*)(const Tensor& out, const Tensor& probs, PhiloxState state));
// out (int64, contiguous, n elements) = a random permutation of 0..n-1.
BM_DECLARE_KERNEL(randperm_kernel, void (*)(const Tensor& out, PhiloxState state));

}  // namespace bigmodel
