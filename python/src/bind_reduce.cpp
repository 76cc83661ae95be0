// Python bindings for reductions: Tensor methods and module functions with PyTorch's
// signatures (dim as int, tuple or None; keepdim; max/min with dim return a namedtuple
// bigmodel.return_types.max(values, indices)).
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"
#include "python/src/common.h"

namespace bigmodel::python {
namespace {

// dim=None -> all dims; an int or a sequence of ints otherwise.
std::vector<int64_t> dims_from(const py::object& dim) {
  if (dim.is_none()) return {};
  if (py::isinstance<py::int_>(dim)) return {dim.cast<int64_t>()};
  return dim.cast<std::vector<int64_t>>();
}

int64_t single_dim(const py::object& dim, const char* op) {
  if (!py::isinstance<py::int_>(dim))
    throw DTypeError(str_cat("[", op, "] dim must be an int, got ", py::str(dim.get_type().attr("__name__")).cast<std::string>()));
  return dim.cast<int64_t>();
}

// The namedtuple types of bigmodel.return_types (kept alive for the process).
py::object* g_max_type = nullptr;
py::object* g_min_type = nullptr;

// max/min: no dim -> 0-d value; dim -> (values, indices); a tensor -> elementwise maximum.
py::object extreme(const Tensor& t, const py::object& dim, bool keepdim, bool is_max) {
  const char* op = is_max ? "max" : "min";
  if (dim.is_none()) return py::cast(is_max ? max(t) : min(t));
  if (py::isinstance<Tensor>(dim)) {
    const Tensor& other = dim.cast<const Tensor&>();
    return py::cast(is_max ? maximum(t, other) : minimum(t, other));
  }
  auto [values, indices] = is_max ? max(t, single_dim(dim, op), keepdim) : min(t, single_dim(dim, op), keepdim);
  return (*(is_max ? g_max_type : g_min_type))(values, indices);
}

std::optional<int64_t> optional_dim(const py::object& dim, const char* op) {
  if (dim.is_none()) return std::nullopt;
  return single_dim(dim, op);
}

// var/std accept (dim, unbiased, keepdim) or (dim, *, correction, keepdim); var(True) is
// the legacy var(unbiased).
double correction_from(py::object& dim, const py::object& unbiased, const py::object& correction, const char* op) {
  if (py::isinstance<py::bool_>(dim)) {
    BM_CHECK_VALUE(unbiased.is_none(), op, "unbiased given twice");
    double c = dim.cast<bool>() ? 1.0 : 0.0;
    dim = py::none();
    return c;
  }
  BM_CHECK_VALUE(unbiased.is_none() || correction.is_none(), op, "give either unbiased or correction, not both");
  if (!unbiased.is_none()) return unbiased.cast<bool>() ? 1.0 : 0.0;
  if (!correction.is_none()) return correction.cast<double>();
  return 1.0;
}

// norm's p: a number, inf, 'fro' (2 over the given dims) or None (2).
double p_from(const py::object& p) {
  if (p.is_none()) return 2.0;
  if (py::isinstance<py::str>(p)) {
    std::string s = p.cast<std::string>();
    if (s == "fro") return 2.0;
    throw ValueError(str_cat("[norm] p='", s, "' is not supported; use a number, inf or 'fro'"));
  }
  return p.cast<double>();
}

}  // namespace

void bind_reduce(py::module_& m, py::class_<Tensor>& cls) {
  py::object namedtuple = py::module_::import("collections").attr("namedtuple");
  py::module_ rt = m.def_submodule("return_types", "namedtuple results of max/min with dim");
  g_max_type = new py::object(namedtuple("max", py::make_tuple("values", "indices")));
  g_min_type = new py::object(namedtuple("min", py::make_tuple("values", "indices")));
  g_max_type->attr("__module__") = "bigmodel.return_types";
  g_min_type->attr("__module__") = "bigmodel.return_types";
  rt.attr("max") = *g_max_type;
  rt.attr("min") = *g_min_type;

  // Each op is bound twice: as a Tensor method and as a module function taking `input`.
  auto both = [&](const char* name, auto fn, auto... extra) {
    cls.def(name, fn, extra...);
    m.def(name, fn, py::arg("input"), extra...);
  };
  const auto dim_none = py::arg("dim") = py::none();
  const auto keepdim = py::arg("keepdim") = false;
  const auto dtype_none = py::arg("dtype") = py::none();

  both("sum", [](const Tensor& t, py::object dim, bool kd, std::optional<DType> dtype) {
    return sum(t, dims_from(dim), kd, dtype);
  }, dim_none, keepdim, dtype_none);
  both("mean", [](const Tensor& t, py::object dim, bool kd, std::optional<DType> dtype) {
    return mean(dtype ? to(t, *dtype) : t, dims_from(dim), kd);
  }, dim_none, keepdim, dtype_none);
  both("prod", [](const Tensor& t, py::object dim, bool kd, std::optional<DType> dtype) {
    return prod(t, dims_from(dim), kd, dtype);
  }, dim_none, keepdim, dtype_none);
  both("max", [](const Tensor& t, py::object dim, bool kd) { return extreme(t, dim, kd, true); }, dim_none, keepdim);
  both("min", [](const Tensor& t, py::object dim, bool kd) { return extreme(t, dim, kd, false); }, dim_none, keepdim);
  both("amax", [](const Tensor& t, py::object dim, bool kd) { return amax(t, dims_from(dim), kd); },
       py::arg("dim") = py::tuple(), keepdim);
  both("amin", [](const Tensor& t, py::object dim, bool kd) { return amin(t, dims_from(dim), kd); },
       py::arg("dim") = py::tuple(), keepdim);
  both("argmax", [](const Tensor& t, py::object dim, bool kd) { return argmax(t, optional_dim(dim, "argmax"), kd); },
       dim_none, keepdim);
  both("argmin", [](const Tensor& t, py::object dim, bool kd) { return argmin(t, optional_dim(dim, "argmin"), kd); },
       dim_none, keepdim);
  both("var", [](const Tensor& t, py::object dim, py::object unbiased, bool kd, py::object correction) {
    double c = correction_from(dim, unbiased, correction, "var");
    return var(t, dims_from(dim), c, kd);
  }, dim_none, py::arg("unbiased") = py::none(), keepdim, py::kw_only(), py::arg("correction") = py::none());
  both("std", [](const Tensor& t, py::object dim, py::object unbiased, bool kd, py::object correction) {
    double c = correction_from(dim, unbiased, correction, "std");
    return std_dev(t, dims_from(dim), c, kd);
  }, dim_none, py::arg("unbiased") = py::none(), keepdim, py::kw_only(), py::arg("correction") = py::none());
  both("logsumexp", [](const Tensor& t, py::object dim, bool kd) { return logsumexp(t, dims_from(dim), kd); },
       py::arg("dim"), keepdim);
  both("norm", [](const Tensor& t, py::object p, py::object dim, bool kd, std::optional<DType> dtype) {
    return norm(dtype ? to(t, *dtype) : t, p_from(p), dims_from(dim), kd);
  }, py::arg("p") = "fro", dim_none, keepdim, dtype_none);
  both("all", [](const Tensor& t, py::object dim, bool kd) { return all(t, dims_from(dim), kd); }, dim_none, keepdim);
  both("any", [](const Tensor& t, py::object dim, bool kd) { return any(t, dims_from(dim), kd); }, dim_none, keepdim);
}

}  // namespace bigmodel::python
