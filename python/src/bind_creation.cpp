// Python bindings for the creation family: zeros/ones/empty/full and *_like, ranges,
// eye, the random factories and samplers, and the generator (manual_seed, rng state),
// with PyTorch's signatures (sizes as *args or one sequence; dtype/device/requires_grad).
#include "core/ops/creation.h"
#include "core/ops/view.h"
#include "core/random.h"
#include "python/src/common.h"

namespace bigmodel::python {
namespace {

using OptDType = std::optional<DType>;

int64_t parse_dim(py::handle v, const char* op) {
  BM_CHECK(!PyFloat_Check(v.ptr()), DTypeError, op, "size must contain integers, got a float (",
           py::str(v).cast<std::string>(), ")");
  BM_CHECK(PyIndex_Check(v.ptr()), DTypeError, op, "size must be a sequence of integers, got ",
           py::str(py::type::handle_of(v).attr("__name__")).cast<std::string>());
  return index_of(v).cast<int64_t>();
}

// A size given as one sequence, or one integer.
Shape parse_size(py::handle obj, const char* op) {
  Shape s;
  if (py::isinstance<py::tuple>(obj) || py::isinstance<py::list>(obj)) {
    for (auto v : obj) s.push_back(parse_dim(v, op));
  } else {
    s.push_back(parse_dim(obj, op));
  }
  return s;
}

// f(2, 3), f((2, 3)), f([2, 3]) and f(size=(2, 3)) all give [2, 3].
Shape size_from(const py::args& args, const py::object& size_kw, const char* op) {
  if (args.size() == 0) {
    BM_CHECK(!size_kw.is_none(), DTypeError, op, "missing the size argument");
    return parse_size(size_kw, op);
  }
  BM_CHECK(size_kw.is_none(), DTypeError, op, "size given both positionally and as a keyword");
  if (args.size() == 1 && (py::isinstance<py::tuple>(args[0]) || py::isinstance<py::list>(args[0])))
    return parse_size(args[0], op);
  Shape s;
  for (auto v : args) s.push_back(parse_dim(v, op));
  return s;
}

Generator* gen_from(const py::object& g) { return g.is_none() ? nullptr : g.cast<Generator*>(); }

Tensor finish(Tensor t, bool requires_grad) {
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

// Python ints (negative ones too) -> uint64 modulo 2^64, as torch.manual_seed accepts.
uint64_t seed_from(const py::object& seed) {
  BM_CHECK(PyIndex_Check(seed.ptr()) && !PyBool_Check(seed.ptr()), DTypeError, "manual_seed",
           "seed must be an integer, got ", py::str(py::type::handle_of(seed).attr("__name__")).cast<std::string>());
  py::object i = index_of(seed);
  const unsigned long long v = PyLong_AsUnsignedLongLongMask(i.ptr());
  if (PyErr_Occurred()) throw py::error_already_set();
  return static_cast<uint64_t>(v);
}

// randint's positional ints: (high) or (low, high); keywords low=/high= fill the gaps.
std::pair<int64_t, int64_t> low_high(const std::vector<int64_t>& ints, const py::object& low_kw,
                                     const py::object& high_kw, const char* op) {
  std::optional<int64_t> low, high;
  if (!low_kw.is_none()) low = parse_dim(low_kw, op);
  if (!high_kw.is_none()) high = parse_dim(high_kw, op);
  if (ints.size() == 2) {
    BM_CHECK(!low && !high, DTypeError, op, "low/high given both positionally and as keywords");
    return {ints[0], ints[1]};
  }
  if (ints.size() == 1) {
    if (high) return {ints[0], *high};  // randint(low, high=..., ...)
    return {low.value_or(0), ints[0]};
  }
  BM_CHECK(ints.empty() && high, DTypeError, op, "expected randint(high, size) or randint(low, high, size)");
  return {low.value_or(0), *high};
}

#define BM_FACTORY_KWARGS py::arg("dtype") = py::none(), py::arg("device") = py::none(), \
                          py::arg("requires_grad") = false

void bind_filled(py::module_& m) {
  auto filled = [&m](const char* name, Tensor (*make)(const Shape&, DType, Device)) {
    m.def(name, [name, make](const py::args& args, const py::object& size, OptDType dtype, const py::object& device,
                             bool requires_grad) {
      return finish(make(size_from(args, size, name), dtype.value_or(kDefaultFloat), device_from(device)), requires_grad);
    }, py::arg("size") = py::none(), BM_FACTORY_KWARGS);
  };
  filled("zeros", &zeros);
  filled("ones", &ones);
  filled("empty", &empty);

  m.def("full", [](const py::object& size, const Scalar& fill_value, OptDType dtype, const py::object& device,
                   bool requires_grad) {
    return finish(full(parse_size(size, "full"), fill_value, dtype.value_or(fill_value.default_dtype()),
                       device_from(device)), requires_grad);
  }, py::arg("size"), py::arg("fill_value"), py::kw_only(), BM_FACTORY_KWARGS);

  // *_like: the input's shape, dtype and device unless overridden.
  auto like = [&m](const char* name, Tensor (*make)(const Shape&, DType, Device)) {
    m.def(name, [make](const Tensor& input, OptDType dtype, const py::object& device, bool requires_grad) {
      return finish(make(input.sizes(), dtype.value_or(input.dtype()), device_from(device, input.device())),
                    requires_grad);
    }, py::arg("input"), py::kw_only(), BM_FACTORY_KWARGS);
  };
  like("zeros_like", &zeros);
  like("ones_like", &ones);
  like("empty_like", &empty);
  m.def("full_like", [](const Tensor& input, const Scalar& fill_value, OptDType dtype, const py::object& device,
                        bool requires_grad) {
    return finish(full(input.sizes(), fill_value, dtype.value_or(input.dtype()), device_from(device, input.device())),
                  requires_grad);
  }, py::arg("input"), py::arg("fill_value"), py::kw_only(), BM_FACTORY_KWARGS);
}

void bind_ranges(py::module_& m) {
  m.def("arange", [](const Scalar& start, std::optional<Scalar> end, const Scalar& step, OptDType dtype,
                     const py::object& device, bool requires_grad) {
    Tensor t = end ? arange(start, *end, step, dtype, device_from(device))
                   : arange(Scalar(int64_t{0}), start, step, dtype, device_from(device));
    return finish(t, requires_grad);
  }, py::arg("start"), py::arg("end") = py::none(), py::arg("step") = Scalar(int64_t{1}), py::kw_only(),
        BM_FACTORY_KWARGS);

  m.def("linspace", [](const Scalar& start, const Scalar& end, int64_t steps, OptDType dtype,
                       const py::object& device, bool requires_grad) {
    return finish(linspace(start.to<double>(), end.to<double>(), steps, dtype.value_or(kDefaultFloat),
                           device_from(device)), requires_grad);
  }, py::arg("start"), py::arg("end"), py::arg("steps"), py::kw_only(), BM_FACTORY_KWARGS);

  m.def("eye", [](int64_t n, std::optional<int64_t> m_cols, OptDType dtype, const py::object& device,
                  bool requires_grad) {
    BM_CHECK_VALUE(n >= 0 && (!m_cols || *m_cols >= 0), "eye", "sizes must be non-negative, got n=", n,
                   ", m=", m_cols ? *m_cols : n);
    return finish(eye(n, m_cols.value_or(n), dtype.value_or(kDefaultFloat), device_from(device)), requires_grad);
  }, py::arg("n"), py::arg("m") = py::none(), py::kw_only(), BM_FACTORY_KWARGS);
}

void bind_random(py::module_& m, py::class_<Tensor>& cls) {
  py::class_<Generator>(m, "Generator", "A Philox4x32-10 stream: a seed and a counter offset")
      .def(py::init([](const py::object& device) {
        device_from(device);  // validates; the stream itself is the same on every device
        return new Generator();
      }), py::arg("device") = py::none())
      .def("manual_seed", [](Generator& g, const py::object& seed) -> Generator& {
        g.manual_seed(seed_from(seed));
        return g;
      }, py::return_value_policy::reference)
      .def("__repr__", [](const Generator& g) {
        return str_cat("<bigmodel.Generator seed=", g.initial_seed(), " offset=", g.offset(), ">");
      })
      .def("seed", &Generator::seed)
      .def("initial_seed", &Generator::initial_seed)
      .def_property_readonly("offset", &Generator::offset)
      .def("get_state", &Generator::get_state)
      .def("set_state", [](Generator& g, const Tensor& s) -> Generator& {
        g.set_state(s);
        return g;
      }, py::return_value_policy::reference);
  m.attr("default_generator") = py::cast(&default_generator(), py::return_value_policy::reference);

  m.def("manual_seed", [](const py::object& seed) -> Generator& {
    manual_seed(seed_from(seed));
    return default_generator();
  }, py::arg("seed"), py::return_value_policy::reference);
  m.def("seed", []() { return seed(); });
  m.def("initial_seed", []() { return initial_seed(); });
  m.def("get_rng_state", []() { return get_rng_state(); });
  m.def("set_rng_state", [](const Tensor& s) { set_rng_state(s); }, py::arg("new_state"));

  using RandFn = Tensor (*)(const Shape&, DType, Device, Generator*);
  auto sampled = [&m](const char* name, RandFn make) {
    m.def(name, [name, make](const py::args& args, const py::object& size, const py::object& generator,
                             OptDType dtype, const py::object& device, bool requires_grad) {
      return finish(make(size_from(args, size, name), dtype.value_or(kDefaultFloat), device_from(device),
                         gen_from(generator)), requires_grad);
    }, py::arg("size") = py::none(), py::arg("generator") = py::none(), BM_FACTORY_KWARGS);
  };
  sampled("rand", &rand);
  sampled("randn", &randn);

  m.def("randint", [](const py::args& args, const py::object& size, const py::object& low, const py::object& high,
                      const py::object& generator, OptDType dtype, const py::object& device, bool requires_grad) {
    std::vector<int64_t> ints;
    py::object size_obj = size;
    for (size_t k = 0; k < args.size(); ++k) {
      const bool last = k + 1 == args.size();
      if (last && (py::isinstance<py::tuple>(args[k]) || py::isinstance<py::list>(args[k]))) {
        BM_CHECK(size.is_none(), DTypeError, "randint", "size given both positionally and as a keyword");
        size_obj = py::reinterpret_borrow<py::object>(args[k]);
      } else {
        ints.push_back(parse_dim(args[k], "randint"));
      }
    }
    BM_CHECK(!size_obj.is_none(), DTypeError, "randint", "missing the size argument (a tuple)");
    auto [lo, hi] = low_high(ints, low, high, "randint");
    return finish(randint(lo, hi, parse_size(size_obj, "randint"), dtype.value_or(kDefaultInt), device_from(device),
                          gen_from(generator)), requires_grad);
  }, py::arg("size") = py::none(), py::arg("low") = py::none(), py::arg("high") = py::none(),
        py::arg("generator") = py::none(), BM_FACTORY_KWARGS);

  m.def("randperm", [](int64_t n, const py::object& generator, OptDType dtype, const py::object& device,
                       bool requires_grad) {
    return finish(randperm(n, dtype.value_or(kDefaultInt), device_from(device), gen_from(generator)), requires_grad);
  }, py::arg("n"), py::kw_only(), py::arg("generator") = py::none(), BM_FACTORY_KWARGS);

  m.def("normal", [](double mean, double std, const py::object& size, const py::object& generator, OptDType dtype,
                     const py::object& device, bool requires_grad) {
    Tensor t = empty(parse_size(size, "normal"), dtype.value_or(kDefaultFloat), device_from(device));
    return finish(normal_(t, mean, std, gen_from(generator)), requires_grad);
  }, py::arg("mean"), py::arg("std"), py::arg("size"), py::kw_only(), py::arg("generator") = py::none(),
        BM_FACTORY_KWARGS);

  auto like = [&m](const char* name, Tensor (*make)(const Tensor&, OptDType, Generator*)) {
    m.def(name, [make](const Tensor& input, const py::object& generator, OptDType dtype, const py::object& device,
                       bool requires_grad) {
      Tensor t = make(input, dtype, gen_from(generator));
      if (!device.is_none()) t = to(t, device_from(device));
      return finish(t, requires_grad);
    }, py::arg("input"), py::kw_only(), py::arg("generator") = py::none(), BM_FACTORY_KWARGS);
  };
  like("rand_like", &rand_like);
  like("randn_like", &randn_like);
  m.def("randint_like", [](const Tensor& input, const py::args& args, const py::object& low, const py::object& high,
                           const py::object& generator, OptDType dtype, const py::object& device, bool requires_grad) {
    std::vector<int64_t> ints;
    for (auto a : args) ints.push_back(parse_dim(a, "randint_like"));
    auto [lo, hi] = low_high(ints, low, high, "randint_like");
    Tensor t = randint_like(input, lo, hi, dtype, gen_from(generator));
    if (!device.is_none()) t = to(t, device_from(device));
    return finish(t, requires_grad);
  }, py::arg("input"), py::arg("low") = py::none(), py::arg("high") = py::none(), py::arg("generator") = py::none(),
        BM_FACTORY_KWARGS);

  // Inverted-dropout mask shaped like `input` (0 with probability p, else 1/(1-p)): one
  // kernel on every device, for nn.functional.dropout.
  m.def("_dropout_mask", [](const Tensor& input, double p, const py::object& generator) {
    return dropout_mask(input.sizes(), p, input.dtype(), input.device(), gen_from(generator));
  }, py::arg("input"), py::arg("p"), py::kw_only(), py::arg("generator") = py::none());
  m.def("bernoulli", [](const Tensor& input, const py::object& generator) {
    return bernoulli(input, gen_from(generator));
  }, py::arg("input"), py::kw_only(), py::arg("generator") = py::none());

  // In-place samplers on Tensor.
  cls.def("uniform_", [](Tensor& t, double from, double to, const py::object& g) -> Tensor& {
    return uniform_(t, from, to, gen_from(g));
  }, py::arg("from") = 0.0, py::arg("to") = 1.0, py::kw_only(), py::arg("generator") = py::none())
      .def("normal_", [](Tensor& t, double mean, double std, const py::object& g) -> Tensor& {
        return normal_(t, mean, std, gen_from(g));
      }, py::arg("mean") = 0.0, py::arg("std") = 1.0, py::kw_only(), py::arg("generator") = py::none())
      .def("random_", [](Tensor& t, const py::args& args, const py::object& g) -> Tensor& {
        // random_(), random_(to), random_(from, to) as in PyTorch.
        BM_CHECK(args.size() <= 2, DTypeError, "random_", "expected random_(), random_(to) or random_(from, to)");
        if (args.size() == 0) return random_(t, 0, std::nullopt, gen_from(g));
        if (args.size() == 1) return random_(t, 0, parse_dim(args[0], "random_"), gen_from(g));
        std::optional<int64_t> upper;
        if (!args[1].is_none()) upper = parse_dim(args[1], "random_");
        return random_(t, parse_dim(args[0], "random_"), upper, gen_from(g));
      }, py::arg("generator") = py::none())
      .def("bernoulli_", [](Tensor& t, double p, const py::object& g) -> Tensor& {
        return bernoulli_(t, p, gen_from(g));
      }, py::arg("p") = 0.5, py::kw_only(), py::arg("generator") = py::none())
      .def("bernoulli", [](const Tensor& t, const py::object& g) { return bernoulli(t, gen_from(g)); },
           py::kw_only(), py::arg("generator") = py::none());
}

}  // namespace

void bind_creation(py::module_& m, py::class_<Tensor>& cls) {
  bind_filled(m);
  bind_ranges(m);
  bind_random(m, cls);
}

}  // namespace bigmodel::python
