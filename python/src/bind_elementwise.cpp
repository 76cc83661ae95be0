// Python bindings for elementwise ops: operators, Tensor methods and module functions for
// binary arithmetic, unary math and activations, comparisons, logical ops, where/masked_fill.
#include "core/ops/compare.h"
#include "core/ops/elementwise.h"
#include "core/ops/unary.h"
#include "python/src/common.h"

namespace bigmodel::python {
namespace {

std::optional<Scalar> optional_scalar(const py::object& o) {
  if (o.is_none()) return std::nullopt;
  return o.cast<Scalar>();
}

// clamp(x, min, max) where each bound is None, a number or a tensor.
Tensor clamp_any(const Tensor& x, const py::object& min, const py::object& max) {
  bool tmin = py::isinstance<Tensor>(min), tmax = py::isinstance<Tensor>(max);
  if (!tmin && !tmax) return clamp(x, optional_scalar(min), optional_scalar(max));
  Tensor r = x;
  if (!min.is_none()) r = tmin ? maximum(r, min.cast<Tensor>()) : clamp_min(r, min.cast<Scalar>());
  if (!max.is_none()) r = tmax ? minimum(r, max.cast<Tensor>()) : clamp_max(r, max.cast<Scalar>());
  return r;
}

void bind_arith(py::module_& m, py::class_<Tensor>& cls) {
  cls.def("__add__", [](const Tensor& a, const Tensor& b) { return add(a, b); }, py::is_operator())
      .def("__add__", [](const Tensor& a, const Scalar& b) { return add(a, b); }, py::is_operator())
      .def("__radd__", [](const Tensor& a, const Scalar& b) { return add(a, b); }, py::is_operator())
      .def("__sub__", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, py::is_operator())
      .def("__sub__", [](const Tensor& a, const Scalar& b) { return sub(a, b); }, py::is_operator())
      .def("__rsub__", [](const Tensor& a, const Scalar& b) { return rsub(a, b); }, py::is_operator())
      .def("__mul__", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, py::is_operator())
      .def("__mul__", [](const Tensor& a, const Scalar& b) { return mul(a, b); }, py::is_operator())
      .def("__rmul__", [](const Tensor& a, const Scalar& b) { return mul(a, b); }, py::is_operator())
      .def("__truediv__", [](const Tensor& a, const Tensor& b) { return div(a, b); }, py::is_operator())
      .def("__truediv__", [](const Tensor& a, const Scalar& b) { return div(a, b); }, py::is_operator())
      .def("__rtruediv__", [](const Tensor& a, const Scalar& b) { return rdiv(a, b); }, py::is_operator())
      .def("__iadd__", [](Tensor& a, const Tensor& b) { return add_(a, b); }, py::is_operator())
      .def("__iadd__", [](Tensor& a, const Scalar& b) { return add_(a, b); }, py::is_operator())
      .def("__isub__", [](Tensor& a, const Tensor& b) { return sub_(a, b); }, py::is_operator())
      .def("__isub__", [](Tensor& a, const Scalar& b) { return sub_(a, b); }, py::is_operator())
      .def("__imul__", [](Tensor& a, const Tensor& b) { return mul_(a, b); }, py::is_operator())
      .def("__imul__", [](Tensor& a, const Scalar& b) { return mul_(a, b); }, py::is_operator())
      .def("__itruediv__", [](Tensor& a, const Tensor& b) { return div_(a, b); }, py::is_operator())
      .def("__itruediv__", [](Tensor& a, const Scalar& b) { return div_(a, b); }, py::is_operator())
      .def("add", [](const Tensor& a, const Tensor& b, const Scalar& alpha) { return add(a, b, alpha); },
           py::arg("other"), py::arg("alpha") = 1)
      .def("add", [](const Tensor& a, const Scalar& b) { return add(a, b); })
      .def("sub", [](const Tensor& a, const Tensor& b, const Scalar& alpha) { return sub(a, b, alpha); },
           py::arg("other"), py::arg("alpha") = 1)
      .def("sub", [](const Tensor& a, const Scalar& b) { return sub(a, b); })
      .def("mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); })
      .def("mul", [](const Tensor& a, const Scalar& b) { return mul(a, b); })
      .def("div", [](const Tensor& a, const Tensor& b) { return div(a, b); })
      .def("div", [](const Tensor& a, const Scalar& b) { return div(a, b); })
      .def("add_", [](Tensor& a, const Tensor& b, const Scalar& alpha) { return add_(a, b, alpha); },
           py::arg("other"), py::arg("alpha") = 1)
      .def("add_", [](Tensor& a, const Scalar& b) { return add_(a, b); })
      .def("sub_", [](Tensor& a, const Tensor& b, const Scalar& alpha) { return sub_(a, b, alpha); },
           py::arg("other"), py::arg("alpha") = 1)
      .def("sub_", [](Tensor& a, const Scalar& b) { return sub_(a, b); })
      .def("mul_", [](Tensor& a, const Tensor& b) { return mul_(a, b); })
      .def("mul_", [](Tensor& a, const Scalar& b) { return mul_(a, b); })
      .def("div_", [](Tensor& a, const Tensor& b) { return div_(a, b); })
      .def("div_", [](Tensor& a, const Scalar& b) { return div_(a, b); });

  m.def("add", [](const Tensor& a, const Tensor& b, const Scalar& alpha) { return add(a, b, alpha); },
        py::arg("input"), py::arg("other"), py::arg("alpha") = 1);
  m.def("add", [](const Tensor& a, const Scalar& b) { return add(a, b); });
  m.def("sub", [](const Tensor& a, const Tensor& b, const Scalar& alpha) { return sub(a, b, alpha); },
        py::arg("input"), py::arg("other"), py::arg("alpha") = 1);
  m.def("sub", [](const Tensor& a, const Scalar& b) { return sub(a, b); });
  m.def("mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); });
  m.def("mul", [](const Tensor& a, const Scalar& b) { return mul(a, b); });
  m.def("div", [](const Tensor& a, const Tensor& b) { return div(a, b); });
  m.def("div", [](const Tensor& a, const Scalar& b) { return div(a, b); });
  m.def("result_type", [](const Tensor& a, const Tensor& b) { return result_type(a, b); });
  m.def("result_type", [](const Tensor& a, const Scalar& b) { return result_type(a, b); });
}

// fname(Tensor, Tensor) and fname(Tensor, Scalar) as method and module function.
#define BM_BIND_BINARY(fname)                                                                         \
  cls.def(#fname, [](const Tensor& a, const Tensor& b) { return bigmodel::fname(a, b); }, py::arg("other")) \
      .def(#fname, [](const Tensor& a, const Scalar& b) { return bigmodel::fname(a, b); }, py::arg("other")); \
  m.def(#fname, [](const Tensor& a, const Tensor& b) { return bigmodel::fname(a, b); }, py::arg("input"),  \
        py::arg("other"));                                                                            \
  m.def(#fname, [](const Tensor& a, const Scalar& b) { return bigmodel::fname(a, b); }, py::arg("input"),  \
        py::arg("other"))
#define BM_BIND_BINARY_INPLACE(fname)                                                                 \
  cls.def(#fname "_", [](Tensor& a, const Tensor& b) { return bigmodel::fname##_(a, b); }, py::arg("other")) \
      .def(#fname "_", [](Tensor& a, const Scalar& b) { return bigmodel::fname##_(a, b); }, py::arg("other"))

void bind_binary(py::module_& m, py::class_<Tensor>& cls) {
  BM_BIND_BINARY(pow);
  BM_BIND_BINARY_INPLACE(pow);
  m.def("pow", [](const Scalar& a, const Tensor& b) { return pow(a, b); }, py::arg("self"), py::arg("exponent"));
  cls.def("__pow__", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, py::is_operator())
      .def("__pow__", [](const Tensor& a, const Scalar& b) { return pow(a, b); }, py::is_operator())
      .def("__rpow__", [](const Tensor& a, const Scalar& b) { return pow(b, a); }, py::is_operator())
      .def("__ipow__", [](Tensor& a, const Tensor& b) { return pow_(a, b); }, py::is_operator())
      .def("__ipow__", [](Tensor& a, const Scalar& b) { return pow_(a, b); }, py::is_operator());

  for (const char* name : {"maximum", "minimum"}) {
    bool is_max = std::string(name) == "maximum";
    auto f = [is_max](const Tensor& a, const Tensor& b) { return is_max ? maximum(a, b) : minimum(a, b); };
    cls.def(name, f, py::arg("other"));
    m.def(name, f, py::arg("input"), py::arg("other"));
  }

  BM_BIND_BINARY(remainder);
  BM_BIND_BINARY_INPLACE(remainder);
  m.def("remainder", [](const Scalar& a, const Tensor& b) { return remainder(a, b); }, py::arg("input"),
        py::arg("other"));
  BM_BIND_BINARY(fmod);
  BM_BIND_BINARY(floor_divide);
  cls.def("__mod__", [](const Tensor& a, const Tensor& b) { return remainder(a, b); }, py::is_operator())
      .def("__mod__", [](const Tensor& a, const Scalar& b) { return remainder(a, b); }, py::is_operator())
      .def("__rmod__", [](const Tensor& a, const Scalar& b) { return remainder(b, a); }, py::is_operator())
      .def("__imod__", [](Tensor& a, const Tensor& b) { return remainder_(a, b); }, py::is_operator())
      .def("__imod__", [](Tensor& a, const Scalar& b) { return remainder_(a, b); }, py::is_operator())
      .def("__floordiv__", [](const Tensor& a, const Tensor& b) { return floor_divide(a, b); }, py::is_operator())
      .def("__floordiv__", [](const Tensor& a, const Scalar& b) { return floor_divide(a, b); }, py::is_operator());

  cls.def("lerp", [](const Tensor& s, const Tensor& e, const Tensor& w) { return lerp(s, e, w); },
          py::arg("end"), py::arg("weight"))
      .def("lerp", [](const Tensor& s, const Tensor& e, const Scalar& w) { return lerp(s, e, w); },
           py::arg("end"), py::arg("weight"));
  m.def("lerp", [](const Tensor& s, const Tensor& e, const Tensor& w) { return lerp(s, e, w); },
        py::arg("input"), py::arg("end"), py::arg("weight"));
  m.def("lerp", [](const Tensor& s, const Tensor& e, const Scalar& w) { return lerp(s, e, w); },
        py::arg("input"), py::arg("end"), py::arg("weight"));

  BM_BIND_BINARY(bitwise_and);
  BM_BIND_BINARY(bitwise_or);
  BM_BIND_BINARY(bitwise_xor);
  BM_BIND_BINARY_INPLACE(bitwise_and);
  BM_BIND_BINARY_INPLACE(bitwise_or);
  BM_BIND_BINARY_INPLACE(bitwise_xor);
  cls.def("__and__", [](const Tensor& a, const Tensor& b) { return bitwise_and(a, b); }, py::is_operator())
      .def("__and__", [](const Tensor& a, const Scalar& b) { return bitwise_and(a, b); }, py::is_operator())
      .def("__rand__", [](const Tensor& a, const Scalar& b) { return bitwise_and(a, b); }, py::is_operator())
      .def("__iand__", [](Tensor& a, const Tensor& b) { return bitwise_and_(a, b); }, py::is_operator())
      .def("__iand__", [](Tensor& a, const Scalar& b) { return bitwise_and_(a, b); }, py::is_operator())
      .def("__or__", [](const Tensor& a, const Tensor& b) { return bitwise_or(a, b); }, py::is_operator())
      .def("__or__", [](const Tensor& a, const Scalar& b) { return bitwise_or(a, b); }, py::is_operator())
      .def("__ror__", [](const Tensor& a, const Scalar& b) { return bitwise_or(a, b); }, py::is_operator())
      .def("__ior__", [](Tensor& a, const Tensor& b) { return bitwise_or_(a, b); }, py::is_operator())
      .def("__ior__", [](Tensor& a, const Scalar& b) { return bitwise_or_(a, b); }, py::is_operator())
      .def("__xor__", [](const Tensor& a, const Tensor& b) { return bitwise_xor(a, b); }, py::is_operator())
      .def("__xor__", [](const Tensor& a, const Scalar& b) { return bitwise_xor(a, b); }, py::is_operator())
      .def("__rxor__", [](const Tensor& a, const Scalar& b) { return bitwise_xor(a, b); }, py::is_operator())
      .def("__ixor__", [](Tensor& a, const Tensor& b) { return bitwise_xor_(a, b); }, py::is_operator())
      .def("__ixor__", [](Tensor& a, const Scalar& b) { return bitwise_xor_(a, b); }, py::is_operator())
      .def("__invert__", [](const Tensor& a) { return bitwise_not(a); });
}

void bind_compare(py::module_& m, py::class_<Tensor>& cls) {
  BM_BIND_BINARY(eq);
  BM_BIND_BINARY(ne);
  BM_BIND_BINARY(lt);
  BM_BIND_BINARY(le);
  BM_BIND_BINARY(gt);
  BM_BIND_BINARY(ge);
  // PyTorch's long aliases.
#define BM_BIND_COMPARE_ALIAS(alias, fname)                                                          \
  cls.def(alias, [](const Tensor& a, const Tensor& b) { return fname(a, b); }, py::arg("other"))       \
      .def(alias, [](const Tensor& a, const Scalar& b) { return fname(a, b); }, py::arg("other"));     \
  m.def(alias, [](const Tensor& a, const Tensor& b) { return fname(a, b); }, py::arg("input"), py::arg("other")); \
  m.def(alias, [](const Tensor& a, const Scalar& b) { return fname(a, b); }, py::arg("input"), py::arg("other"))
  BM_BIND_COMPARE_ALIAS("greater", gt);
  BM_BIND_COMPARE_ALIAS("greater_equal", ge);
  BM_BIND_COMPARE_ALIAS("less", lt);
  BM_BIND_COMPARE_ALIAS("less_equal", le);
  BM_BIND_COMPARE_ALIAS("not_equal", ne);
#undef BM_BIND_COMPARE_ALIAS
  cls.def("__eq__", [](const Tensor& a, const Tensor& b) { return eq(a, b); }, py::is_operator())
      .def("__eq__", [](const Tensor& a, const Scalar& b) { return eq(a, b); }, py::is_operator())
      .def("__ne__", [](const Tensor& a, const Tensor& b) { return ne(a, b); }, py::is_operator())
      .def("__ne__", [](const Tensor& a, const Scalar& b) { return ne(a, b); }, py::is_operator())
      .def("__lt__", [](const Tensor& a, const Tensor& b) { return lt(a, b); }, py::is_operator())
      .def("__lt__", [](const Tensor& a, const Scalar& b) { return lt(a, b); }, py::is_operator())
      .def("__le__", [](const Tensor& a, const Tensor& b) { return le(a, b); }, py::is_operator())
      .def("__le__", [](const Tensor& a, const Scalar& b) { return le(a, b); }, py::is_operator())
      .def("__gt__", [](const Tensor& a, const Tensor& b) { return gt(a, b); }, py::is_operator())
      .def("__gt__", [](const Tensor& a, const Scalar& b) { return gt(a, b); }, py::is_operator())
      .def("__ge__", [](const Tensor& a, const Tensor& b) { return ge(a, b); }, py::is_operator())
      .def("__ge__", [](const Tensor& a, const Scalar& b) { return ge(a, b); }, py::is_operator());

  for (const char* name : {"logical_and", "logical_or", "logical_xor"}) {
    std::string n(name);
    auto f = [n](const Tensor& a, const Tensor& b) {
      return n == "logical_and" ? logical_and(a, b) : n == "logical_or" ? logical_or(a, b) : logical_xor(a, b);
    };
    cls.def(name, f, py::arg("other"));
    m.def(name, f, py::arg("input"), py::arg("other"));
  }

  m.def("where", [](const Tensor& c, const Tensor& a, const Tensor& b) { return where(c, a, b); },
        py::arg("condition"), py::arg("input"), py::arg("other"));
  m.def("where", [](const Tensor& c, const Tensor& a, const Scalar& b) { return where(c, a, b); },
        py::arg("condition"), py::arg("input"), py::arg("other"));
  m.def("where", [](const Tensor& c, const Scalar& a, const Tensor& b) { return where(c, a, b); },
        py::arg("condition"), py::arg("input"), py::arg("other"));
  m.def("where", [](const Tensor& c, const Scalar& a, const Scalar& b) { return where(c, a, b); },
        py::arg("condition"), py::arg("input"), py::arg("other"));
  // Tensor.where(condition, other) is where(condition, self, other).
  cls.def("where", [](const Tensor& a, const Tensor& c, const Tensor& b) { return where(c, a, b); },
          py::arg("condition"), py::arg("other"))
      .def("where", [](const Tensor& a, const Tensor& c, const Scalar& b) { return where(c, a, b); },
           py::arg("condition"), py::arg("other"));

  cls.def("masked_fill", [](const Tensor& s, const Tensor& mask, const Tensor& v) { return masked_fill(s, mask, v); },
          py::arg("mask"), py::arg("value"))
      .def("masked_fill", [](const Tensor& s, const Tensor& mask, const Scalar& v) { return masked_fill(s, mask, v); },
           py::arg("mask"), py::arg("value"))
      .def("masked_fill_", [](Tensor& s, const Tensor& mask, const Tensor& v) { return masked_fill_(s, mask, v); },
           py::arg("mask"), py::arg("value"))
      .def("masked_fill_", [](Tensor& s, const Tensor& mask, const Scalar& v) { return masked_fill_(s, mask, v); },
           py::arg("mask"), py::arg("value"));
  m.def("masked_fill", [](const Tensor& s, const Tensor& mask, const Tensor& v) { return masked_fill(s, mask, v); },
        py::arg("input"), py::arg("mask"), py::arg("value"));
  m.def("masked_fill", [](const Tensor& s, const Tensor& mask, const Scalar& v) { return masked_fill(s, mask, v); },
        py::arg("input"), py::arg("mask"), py::arg("value"));
}

// fname(x) as method and module function; with_inplace adds fname_ to both.
#define BM_BIND_UNARY(fname)                                                          \
  cls.def(#fname, [](const Tensor& x) { return bigmodel::fname(x); });                \
  m.def(#fname, [](const Tensor& x) { return bigmodel::fname(x); }, py::arg("input"))
#define BM_BIND_UNARY_INPLACE(fname)                                                  \
  BM_BIND_UNARY(fname);                                                               \
  cls.def(#fname "_", [](Tensor& x) { return bigmodel::fname##_(x); });               \
  m.def(#fname "_", [](Tensor& x) { return bigmodel::fname##_(x); }, py::arg("input"))

void bind_unary(py::module_& m, py::class_<Tensor>& cls) {
  BM_BIND_UNARY_INPLACE(neg);
  BM_BIND_UNARY_INPLACE(abs);
  BM_BIND_UNARY_INPLACE(sign);
  BM_BIND_UNARY_INPLACE(relu);
  BM_BIND_UNARY_INPLACE(square);
  BM_BIND_UNARY_INPLACE(exp);
  BM_BIND_UNARY_INPLACE(log);
  BM_BIND_UNARY_INPLACE(log1p);
  BM_BIND_UNARY_INPLACE(expm1);
  BM_BIND_UNARY_INPLACE(sqrt);
  BM_BIND_UNARY_INPLACE(rsqrt);
  BM_BIND_UNARY_INPLACE(sin);
  BM_BIND_UNARY_INPLACE(cos);
  BM_BIND_UNARY_INPLACE(tanh);
  BM_BIND_UNARY_INPLACE(sigmoid);
  BM_BIND_UNARY_INPLACE(erf);
  BM_BIND_UNARY_INPLACE(reciprocal);
  BM_BIND_UNARY_INPLACE(floor);
  BM_BIND_UNARY_INPLACE(ceil);
  BM_BIND_UNARY_INPLACE(round);
  BM_BIND_UNARY_INPLACE(trunc);
  BM_BIND_UNARY_INPLACE(logical_not);
  BM_BIND_UNARY_INPLACE(bitwise_not);
  BM_BIND_UNARY(isnan);
  BM_BIND_UNARY(isinf);
  BM_BIND_UNARY(isfinite);
  // PyTorch's aliases.
  cls.def("negative", [](const Tensor& x) { return neg(x); })
      .def("negative_", [](Tensor& x) { return neg_(x); })
      .def("absolute", [](const Tensor& x) { return abs(x); })
      .def("absolute_", [](Tensor& x) { return abs_(x); })
      .def("fix", [](const Tensor& x) { return trunc(x); })
      .def("__neg__", [](const Tensor& x) { return neg(x); })
      .def("__abs__", [](const Tensor& x) { return abs(x); });
  m.def("negative", [](const Tensor& x) { return neg(x); }, py::arg("input"));
  m.def("absolute", [](const Tensor& x) { return abs(x); }, py::arg("input"));
  m.def("fix", [](const Tensor& x) { return trunc(x); }, py::arg("input"));

  // Activations: module functions (PyTorch has no Tensor.gelu/silu/softplus methods).
  m.def("gelu", [](const Tensor& x, const std::string& approximate) { return gelu(x, approximate); },
        py::arg("input"), py::arg("approximate") = "none");
  m.def("silu", [](const Tensor& x) { return silu(x); }, py::arg("input"));
  m.def("silu_", [](Tensor& x) { return silu_(x); }, py::arg("input"));
  m.def("softplus", [](const Tensor& x, double beta, double threshold) { return softplus(x, beta, threshold); },
        py::arg("input"), py::arg("beta") = 1.0, py::arg("threshold") = 20.0);

  for (const char* name : {"clamp", "clip"}) {
    cls.def(name, &clamp_any, py::arg("min") = py::none(), py::arg("max") = py::none());
    m.def(name, &clamp_any, py::arg("input"), py::arg("min") = py::none(), py::arg("max") = py::none());
    auto inplace = [](Tensor& x, const py::object& min, const py::object& max) {
      return clamp_(x, optional_scalar(min), optional_scalar(max));
    };
    cls.def((std::string(name) + "_").c_str(), inplace, py::arg("min") = py::none(), py::arg("max") = py::none());
    m.def((std::string(name) + "_").c_str(), inplace, py::arg("input"), py::arg("min") = py::none(),
          py::arg("max") = py::none());
  }
  cls.def("clamp_min", [](const Tensor& x, const Scalar& v) { return clamp_min(x, v); }, py::arg("min"))
      .def("clamp_max", [](const Tensor& x, const Scalar& v) { return clamp_max(x, v); }, py::arg("max"));
  m.def("clamp_min", [](const Tensor& x, const Scalar& v) { return clamp_min(x, v); }, py::arg("input"), py::arg("min"));
  m.def("clamp_max", [](const Tensor& x, const Scalar& v) { return clamp_max(x, v); }, py::arg("input"), py::arg("max"));
}

}  // namespace

void bind_elementwise(py::module_& m, py::class_<Tensor>& cls) {
  bind_arith(m, cls);
  bind_binary(m, cls);
  bind_compare(m, cls);
  bind_unary(m, cls);
}

}  // namespace bigmodel::python
