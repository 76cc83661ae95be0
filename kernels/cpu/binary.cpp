// CPU kernel for binary elementwise ops (arithmetic, comparisons, logical).
#include "core/ops/elementwise.h"
#include "kernels/functors.h"
#include "kernels/cpu/loops.h"

namespace bigmodel::cpu {
namespace {

template <typename T>
void arith_typed(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  using C = compute_t<T>;
  auto run = [&](auto f) {
    map_elements<T, T, T>(out, {&a, &b}, [f](T x, T y) { return static_cast<T>(f(static_cast<C>(x), static_cast<C>(y))); });
  };
  switch (op) {
    case BinaryOp::Add: run([](C x, C y) { return fn::add(x, y); }); break;
    case BinaryOp::Sub: run([](C x, C y) { return fn::sub(x, y); }); break;
    case BinaryOp::Mul: run([](C x, C y) { return fn::mul(x, y); }); break;
    case BinaryOp::Div: run([](C x, C y) { return fn::div(x, y); }); break;
    default:
      throw NotImplementedError("[binary] op not implemented on the CPU for this dtype");
  }
}

void binary_cpu(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  BM_DISPATCH_ALL(a.dtype(), "binary", [&] { arith_typed<scalar_t>(op, out, a, b); });
}

}  // namespace

BM_REGISTER_KERNEL(binary_kernel, CPU, &binary_cpu);

}  // namespace bigmodel::cpu
