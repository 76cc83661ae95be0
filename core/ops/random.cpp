// Random factories and in-place samplers: validate, reserve counters from the generator,
// run the kernel on a contiguous buffer (copied into strided targets afterwards).
#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/ops/copy_kernels.h"
#include "core/ops/creation.h"
#include "core/ops/random_kernels.h"
#include "core/random.h"

namespace bigmodel {

BM_DEFINE_KERNEL(uniform_kernel);
BM_DEFINE_KERNEL(normal_kernel);
BM_DEFINE_KERNEL(randint_kernel);
BM_DEFINE_KERNEL(bernoulli_kernel);
BM_DEFINE_KERNEL(bernoulli_tensor_kernel);
BM_DEFINE_KERNEL(randperm_kernel);

namespace {

// Values per Philox block for each op and dtype (the layout in core/philox.h).
int uniform_per_block(DType dt) { return dt == DType::Float64 ? 2 : 4; }
constexpr int kIntPerBlock = 2;
constexpr int kBernoulliPerBlock = 4;

void check_floating(const char* op, DType dt) {
  BM_CHECK_DTYPE(is_floating(dt), op, "expected a floating dtype, got ", dtype_name(dt));
}

// Runs `fill(buffer)` on self, or on a contiguous buffer copied into a strided self, then
// cuts autograd history: the new values do not depend on the old ones.
template <typename F>
Tensor& sample_inplace(Tensor& self, const char* op, F&& fill) {
  check_inplace(self, op);
  if (self.numel() == 0) return self;
  if (self.is_contiguous()) {
    fill(self);
  } else {
    Tensor buf = Tensor::empty(self.sizes(), self.dtype(), self.device());
    fill(buf);
    copy_kernel.get(self.device())(self, buf);
  }
  if (needs_grad({self}))
    rebase_history(self, op, {self}, [](const std::vector<Tensor>& g) { return std::vector<Tensor>{zeros_like(g[0])}; });
  return self;
}

// Largest magnitude an integer written into `dt` may have (exact for ints, finite for floats).
double dtype_int_limit(DType dt) {
  switch (dt) {
    case DType::Bool: return 1;
    case DType::Int32: return 2147483647.0;
    case DType::Float16: return 65504.0;
    case DType::BFloat16:
    case DType::Float32: return 3.4028234663852886e38;
    default: return std::numeric_limits<double>::infinity();
  }
}

// Largest integer `random_()` draws by default: the dtype's max, or 2^mantissa for floats.
int64_t default_random_max(DType dt) {
  switch (dt) {
    case DType::Bool: return 1;
    case DType::Int32: return std::numeric_limits<int32_t>::max();
    case DType::Int64: return std::numeric_limits<int64_t>::max();
    case DType::Float16: return int64_t{1} << 11;
    case DType::BFloat16: return int64_t{1} << 8;
    case DType::Float32: return int64_t{1} << 24;
    case DType::Float64: return int64_t{1} << 53;
  }
  return 0;
}

void run_randint(const Tensor& out, int64_t low, uint64_t range, Generator* gen) {
  PhiloxState st = generator_or_default(gen).reserve_values(out.numel(), kIntPerBlock);
  randint_kernel.get(out.device())(out, st, low, range);
}

}  // namespace

Tensor& uniform_(Tensor& self, double from, double to, Generator* gen) {
  check_floating("uniform_", self.dtype());
  BM_CHECK_VALUE(std::isfinite(from) && std::isfinite(to) && from <= to && std::isfinite(to - from), "uniform_",
                 "expected finite from <= to, got from=", from, ", to=", to);
  return sample_inplace(self, "uniform_", [&](const Tensor& out) {
    PhiloxState st = generator_or_default(gen).reserve_values(out.numel(), uniform_per_block(out.dtype()));
    uniform_kernel.get(out.device())(out, st, from, to);
  });
}

Tensor& normal_(Tensor& self, double mean, double std, Generator* gen) {
  check_floating("normal_", self.dtype());
  BM_CHECK_VALUE(std::isfinite(mean) && std::isfinite(std) && std >= 0.0, "normal_",
                 "expected finite mean and std >= 0, got mean=", mean, ", std=", std);
  return sample_inplace(self, "normal_", [&](const Tensor& out) {
    PhiloxState st = generator_or_default(gen).reserve_values(out.numel(), uniform_per_block(out.dtype()));
    normal_kernel.get(out.device())(out, st, mean, std);
  });
}

Tensor& random_(Tensor& self, int64_t from, std::optional<int64_t> to, Generator* gen) {
  const DType dt = self.dtype();
  if (to) BM_CHECK_VALUE(from < *to, "random_", "expected from < to, got from=", from, ", to=", *to);
  const int64_t hi_incl = to ? *to - 1 : default_random_max(dt);
  BM_CHECK_VALUE(from <= hi_incl, "random_", "expected from <= ", hi_incl, " (the largest value ",
                 dtype_name(dt), " draws by default), got from=", from);
  const double lim = dtype_int_limit(dt);
  BM_CHECK_VALUE(std::fabs(static_cast<double>(from)) <= lim && std::fabs(static_cast<double>(hi_incl)) <= lim &&
                     (dt != DType::Bool || from >= 0),
                 "random_", "range [", from, ", ", hi_incl, "] does not fit in ", dtype_name(dt));
  // hi_incl - from + 1 computed in uint64: exact for every int64 pair with from <= hi_incl.
  const uint64_t range = static_cast<uint64_t>(hi_incl) - static_cast<uint64_t>(from) + 1u;
  return sample_inplace(self, "random_", [&](const Tensor& out) { run_randint(out, from, range, gen); });
}

Tensor& bernoulli_(Tensor& self, double p, Generator* gen) {
  BM_CHECK_VALUE(p >= 0.0 && p <= 1.0, "bernoulli_", "expected 0 <= p <= 1, got p=", p);
  return sample_inplace(self, "bernoulli_", [&](const Tensor& out) {
    PhiloxState st = generator_or_default(gen).reserve_values(out.numel(), kBernoulliPerBlock);
    bernoulli_kernel.get(out.device())(out, st, p, 1.0);
  });
}

Tensor bernoulli(const Tensor& probs, Generator* gen) {
  check_floating("bernoulli", probs.dtype());
  Tensor p = probs.is_contiguous() ? probs.detach() : Tensor::empty(probs.sizes(), probs.dtype(), probs.device());
  if (!probs.is_contiguous()) copy_kernel.get(probs.device())(p, probs);
  Tensor out = Tensor::empty(probs.sizes(), probs.dtype(), probs.device());
  if (out.numel() == 0) return out;
  PhiloxState st = generator_or_default(gen).reserve_values(out.numel(), kBernoulliPerBlock);
  bernoulli_tensor_kernel.get(out.device())(out, p, st);
  return out;
}

Tensor dropout_mask(const Shape& sizes, double p, DType dtype, Device device, Generator* gen) {
  check_sizes("dropout_mask", sizes);
  check_floating("dropout_mask", dtype);
  BM_CHECK_VALUE(p >= 0.0 && p <= 1.0, "dropout_mask", "dropout probability must be in [0, 1], got ", p);
  Tensor out = Tensor::empty(sizes, dtype, device);
  if (out.numel() == 0) return out;
  const double keep = 1.0 - p;
  PhiloxState st = generator_or_default(gen).reserve_values(out.numel(), kBernoulliPerBlock);
  bernoulli_kernel.get(device)(out, st, keep, keep > 0.0 ? 1.0 / keep : 0.0);
  return out;
}

Tensor rand(const Shape& sizes, DType dtype, Device device, Generator* gen) {
  check_sizes("rand", sizes);
  check_floating("rand", dtype);
  Tensor out = Tensor::empty(sizes, dtype, device);
  return uniform_(out, 0.0, 1.0, gen);
}

Tensor randn(const Shape& sizes, DType dtype, Device device, Generator* gen) {
  check_sizes("randn", sizes);
  check_floating("randn", dtype);
  Tensor out = Tensor::empty(sizes, dtype, device);
  return normal_(out, 0.0, 1.0, gen);
}

Tensor randint(int64_t low, int64_t high, const Shape& sizes, DType dtype, Device device, Generator* gen) {
  check_sizes("randint", sizes);
  BM_CHECK_VALUE(low < high, "randint", "expected low < high, got low=", low, ", high=", high);
  const double lim = dtype_int_limit(dtype);
  BM_CHECK_VALUE(std::fabs(static_cast<double>(low)) <= lim && std::fabs(static_cast<double>(high - 1)) <= lim &&
                     (dtype != DType::Bool || low >= 0),
                 "randint", "range [", low, ", ", high, ") does not fit in ", dtype_name(dtype));
  Tensor out = Tensor::empty(sizes, dtype, device);
  if (out.numel() > 0) run_randint(out, low, static_cast<uint64_t>(high) - static_cast<uint64_t>(low), gen);
  return out;
}

Tensor rand_like(const Tensor& t, std::optional<DType> dtype, Generator* gen) {
  return rand(t.sizes(), dtype.value_or(t.dtype()), t.device(), gen);
}
Tensor randn_like(const Tensor& t, std::optional<DType> dtype, Generator* gen) {
  return randn(t.sizes(), dtype.value_or(t.dtype()), t.device(), gen);
}
Tensor randint_like(const Tensor& t, int64_t low, int64_t high, std::optional<DType> dtype, Generator* gen) {
  return randint(low, high, t.sizes(), dtype.value_or(t.dtype()), t.device(), gen);
}

Tensor randperm(int64_t n, DType dtype, Device device, Generator* gen) {
  BM_CHECK_VALUE(n >= 0, "randperm", "n must be non-negative, got ", n);
  BM_CHECK_VALUE(static_cast<double>(n) - 1.0 <= dtype_int_limit(dtype) && dtype != DType::Bool, "randperm",
                 "n=", n, " does not fit in ", dtype_name(dtype));
  Tensor idx = Tensor::empty({n}, DType::Int64, device);
  if (n > 0) {
    PhiloxState st = generator_or_default(gen).reserve_values(n, kIntPerBlock);
    randperm_kernel.get(device)(idx, st);
  }
  if (dtype == DType::Int64) return idx;
  Tensor out = Tensor::empty({n}, dtype, device);
  if (n > 0) copy_kernel.get(device)(out, idx);
  return out;
}

}  // namespace bigmodel
