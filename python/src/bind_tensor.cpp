// Python bindings for the Tensor core: geometry, views, copies and dtype conversion,
// NumPy interop (zero-copy both ways on the CPU), repr, and autograd.
#include <cstring>

#include "core/dispatch.h"
#include "core/ops/creation.h"
#include "core/ops/view.h"
#include "python/src/common.h"

namespace bigmodel::python {
namespace {

std::string numpy_format(DType t) {
  switch (t) {
    case DType::Bool: return "?";
    case DType::Int32: return "i4";
    case DType::Int64: return "i8";
    case DType::Float16: return "f2";
    case DType::Float32: return "f4";
    case DType::Float64: return "f8";
    case DType::BFloat16: break;
  }
  throw DTypeError("[numpy] NumPy has no bfloat16 type; convert with .float() first");
}

DType dtype_from_numpy(const py::dtype& dt) {
  const char kind = dt.kind();
  // '>' is the only non-native order on the little-endian hosts we build for; its bytes would
  // be read as if native. (NumPy writes native as '=', and '|' for one-byte types.)
  if (dt.byteorder() == '>') {
    throw DTypeError(str_cat("[from_numpy] can't share a byte-swapped NumPy array (dtype ",
                             py::cast<std::string>(py::repr(dt)), "); convert with arr.astype(arr.dtype.newbyteorder('='))"));
  }
  const auto size = dt.itemsize();
  if (kind == 'b') return DType::Bool;
  if (kind == 'i' && size == 4) return DType::Int32;
  if (kind == 'i' && size == 8) return DType::Int64;
  if (kind == 'f' && size == 2) return DType::Float16;
  if (kind == 'f' && size == 4) return DType::Float32;
  if (kind == 'f' && size == 8) return DType::Float64;
  throw DTypeError(str_cat("[from_numpy] can't convert a NumPy array of dtype ",
                           py::cast<std::string>(py::repr(dt)),
                           "; supported: bool, int32, int64, float16, float32, float64"));
}

py::array to_numpy(const Tensor& self) {
  BM_CHECK_DEVICE(self.device().is_cpu(), "numpy", "can't convert a ", self.device().str(),
                  " tensor to NumPy; call .cpu() first");
  BM_CHECK_RUNTIME(!self.requires_grad(), "numpy",
                   "can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()");
  std::vector<py::ssize_t> shape(self.sizes().begin(), self.sizes().end());
  std::vector<py::ssize_t> strides;
  for (int64_t s : self.strides()) strides.push_back(s * static_cast<py::ssize_t>(self.itemsize()));
  // The capsule keeps the tensor (and so its storage) alive as long as the array lives.
  auto* keep = new Tensor(self);
  py::capsule owner(keep, [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array(py::dtype(numpy_format(self.dtype())), shape, strides, self.data_ptr(), owner);
}

Tensor from_numpy(const py::array& arr) {
  DType dtype = dtype_from_numpy(arr.dtype());
  const auto item = static_cast<py::ssize_t>(itemsize(dtype));
  Shape sizes, strides;
  for (py::ssize_t d = 0; d < arr.ndim(); ++d) {
    sizes.push_back(arr.shape(d));
    BM_CHECK_VALUE(arr.strides(d) >= 0 && arr.strides(d) % item == 0, "from_numpy",
                   "arrays with negative or unaligned strides are not supported (shape ",
                   shape_str(sizes), "); pass a copy (np.ascontiguousarray)");
    strides.push_back(arr.strides(d) / item);
  }
  int64_t extent = 1;
  for (size_t d = 0; d < sizes.size(); ++d) extent += sizes[d] == 0 ? 0 : (sizes[d] - 1) * strides[d];
  if (shape_numel(sizes) == 0) extent = 0;
  // The storage holds a reference to the array; releasing it needs the GIL.
  auto* ref = new py::object(arr);
  auto storage = std::make_shared<Storage>(
      const_cast<void*>(arr.data()), static_cast<size_t>(extent * item), Device(), [ref](void*) {
        py::gil_scoped_acquire gil;
        delete ref;
      });
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->sizes = sizes;
  impl->strides = strides;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// bm.tensor's copy. A C-contiguous array is one memcpy into a fresh tensor, and a large one
// copies with the GIL released (as kernels do: g_kernel_call_hook), so other Python threads
// run meanwhile; `keep` holds the array, and so its buffer, until the copy is done. Other
// layouts go through the strided copy kernel.
Tensor from_numpy_copy(const py::array& arr) {
  if (!(arr.flags() & py::array::c_style)) return clone(from_numpy(arr));
  const DType dtype = dtype_from_numpy(arr.dtype());
  Tensor out = Tensor::empty(Shape(arr.shape(), arr.shape() + arr.ndim()), dtype, Device());
  const size_t nbytes = static_cast<size_t>(out.numel()) * itemsize(dtype);
  if (nbytes == 0) return out;
  const void* src = arr.data();
  if (g_kernel_call_hook.load(std::memory_order_acquire) && out.numel() >= kKernelHookMinElements) {
    py::object keep = arr;
    py::gil_scoped_release nogil;
    std::memcpy(out.data_ptr(), src, nbytes);
  } else {
    std::memcpy(out.data_ptr(), src, nbytes);
  }
  return out;
}

Tensor to_any(const Tensor& self, const py::args& args, const py::kwargs& kwargs) {
  Device device = self.device();
  DType dtype = self.dtype();
  auto take = [&](const py::handle& h) {
    if (py::isinstance<DType>(h)) dtype = h.cast<DType>();
    else if (py::isinstance<Tensor>(h)) {
      dtype = h.cast<Tensor>().dtype();
      device = h.cast<Tensor>().device();
    } else if (!h.is_none()) device = device_from(py::reinterpret_borrow<py::object>(h));
  };
  for (auto a : args) take(a);
  if (kwargs.contains("dtype")) take(kwargs["dtype"]);
  if (kwargs.contains("device")) take(kwargs["device"]);
  bool copy = kwargs.contains("copy") && kwargs["copy"].cast<bool>();
  // non_blocking: a cross-device copy is queued on the current stream (pinned staging).
  bool non_blocking = kwargs.contains("non_blocking") && kwargs["non_blocking"].cast<bool>();
  Tensor out = to(self, device, dtype, non_blocking);
  return copy && out.is_same(self) ? clone(self) : out;
}

}  // namespace

void bind_tensor(py::module_& m, py::class_<Tensor>& cls) {
  m.def("from_numpy", &from_numpy, "A CPU tensor sharing memory with a NumPy array");
  // Module-level forms of the view and copy methods (bm.reshape(x, ...), ...).
  m.def("reshape", [](const Tensor& t, py::sequence s) { return reshape(t, s.cast<Shape>()); });
  m.def("permute", [](const Tensor& t, py::sequence s) { return permute(t, s.cast<std::vector<int64_t>>()); });
  m.def("transpose", py::overload_cast<const Tensor&, int64_t, int64_t>(&transpose));
  m.def("swapaxes", py::overload_cast<const Tensor&, int64_t, int64_t>(&transpose));
  m.def("t", &t);
  m.def("narrow", &narrow);
  m.def("select", &select);
  m.def("squeeze", [](const Tensor& t, py::object d) { return d.is_none() ? squeeze(t) : squeeze(t, d.cast<int64_t>()); },
        py::arg("input"), py::arg("dim") = py::none());
  m.def("unsqueeze", &unsqueeze);
  m.def("flatten", &flatten, py::arg("input"), py::arg("start_dim") = 0, py::arg("end_dim") = -1);
  m.def("unflatten", [](const Tensor& t, int64_t d, py::sequence s) { return unflatten(t, d, s.cast<Shape>()); });
  m.def("movedim", &movedim);
  m.def("broadcast_to", [](const Tensor& t, py::sequence s) { return expand(t, s.cast<Shape>()); });
  m.def("clone", &clone);
  m.def("is_tensor", [](const py::object& o) { return py::isinstance<Tensor>(o); });
  m.def("numel", [](const Tensor& t) { return t.numel(); });
  m.def("_from_numpy_copy", &from_numpy_copy);

  // Tensor(t) aliases t (same storage, no history); it lets Python subclass Tensor
  // (nn.Parameter), as bm.tensor(...) is the way to build a tensor from data.
  cls.def(py::init([](const Tensor& t) { return t.detach(); }), py::arg("data"));
  // PyTorch's legacy constructor: Tensor(2, 3) (or Tensor(bm.Size(...))) is an uninitialised
  // float32 tensor of that shape, Tensor([1, 2]) (a list, tuple or array) a float32 copy of the data.
  cls.def(py::init([](const py::args& args) {
    const bool is_size = args.size() == 1 &&
                         py::str(py::type::of(args[0]).attr("__name__")).cast<std::string>() == "Size";
    if (args.size() == 1 && !PyLong_Check(args[0].ptr()) && !is_size && py::hasattr(args[0], "__len__")) {
      return py::module_::import("bigmodel").attr("tensor")(args[0], py::arg("dtype") = DType::Float32)
          .cast<Tensor>();
    }
    if (args.size() == 0) return Tensor::empty({0}, DType::Float32, Device());  // Tensor(): empty, 1-D
    return Tensor::empty(shape_from_args(args, "Tensor"), DType::Float32, Device());
  }));
  cls.def("_is_defined", &Tensor::defined);
  cls.def_property_readonly("_is_bigmodel_tensor", [](const Tensor&) { return true; })
      .def_property_readonly("shape", [](const Tensor& t) { return py::tuple(py::cast(t.sizes())); })
      .def_property_readonly("dtype", &Tensor::dtype)
      .def_property_readonly("device", &Tensor::device)
      .def_property_readonly("ndim", &Tensor::dim)
      .def_property_readonly("is_cuda", [](const Tensor& t) { return t.device().is_cuda(); })
      .def_property_readonly("is_cpu", [](const Tensor& t) { return t.device().is_cpu(); })
      .def_property_readonly("_version", &Tensor::version)
      .def_property_readonly("itemsize", &Tensor::itemsize)
      .def_property_readonly("nbytes", &Tensor::nbytes)
      .def("dim", &Tensor::dim)
      .def("ndimension", &Tensor::dim)
      .def("numel", &Tensor::numel)
      .def("element_size", &Tensor::itemsize)
      .def("size", [](const Tensor& t, py::object d) -> py::object {
        if (d.is_none()) return py::tuple(py::cast(t.sizes()));
        return py::int_(t.size(d.cast<int64_t>()));
      }, py::arg("dim") = py::none())
      .def("stride", [](const Tensor& t, py::object d) -> py::object {
        if (d.is_none()) return py::tuple(py::cast(t.strides()));
        return py::int_(t.stride(d.cast<int64_t>()));
      }, py::arg("dim") = py::none())
      .def("storage_offset", &Tensor::offset)
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()); })
      .def("is_contiguous", &Tensor::is_contiguous)
      .def("is_floating_point", [](const Tensor& t) { return is_floating(t.dtype()); })
      .def("__repr__", &Tensor::repr)
      .def("__len__", [](const Tensor& t) {
        BM_CHECK(t.dim() > 0, DTypeError, "len", "len() of a 0-d tensor");
        return t.size(0);
      })
      .def("item", [](const Tensor& t) { return t.item(); })
      .def("numpy", &to_numpy)
      .def("__array__", [](const Tensor& t, py::object dtype, py::object copy) {
        py::array a = to_numpy(t.detach());
        return dtype.is_none() ? a : a.attr("astype")(dtype).cast<py::array>();
      }, py::arg("dtype") = py::none(), py::arg("copy") = py::none())
      // Views and copies.
      .def("view", [](const Tensor& t, py::args a) {
        if (a.size() == 1 && py::isinstance<DType>(a[0]))
          throw NotImplementedError("[view] reinterpreting dtypes is not supported");
        return view(t, shape_from_args(a, "view"));
      })
      .def("reshape", [](const Tensor& t, py::args a) { return reshape(t, shape_from_args(a, "reshape")); })
      .def("view_as", [](const Tensor& t, const Tensor& o) { return view(t, o.sizes()); })
      .def("reshape_as", [](const Tensor& t, const Tensor& o) { return reshape(t, o.sizes()); })
      .def("permute", [](const Tensor& t, py::args a) { return permute(t, shape_from_args(a, "permute")); })
      .def("transpose", py::overload_cast<const Tensor&, int64_t, int64_t>(&transpose))
      .def("swapaxes", py::overload_cast<const Tensor&, int64_t, int64_t>(&transpose))
      .def("t", &t)
      .def_property_readonly("T", [](const Tensor& x) {
        std::vector<int64_t> perm;
        for (int64_t d = x.dim() - 1; d >= 0; --d) perm.push_back(d);
        return permute(x, perm);
      })
      .def_property_readonly("mT", [](const Tensor& x) { return transpose(x, -2, -1); })
      .def("narrow", &narrow)
      .def("select", &select)
      .def("expand", [](const Tensor& t, py::args a) { return expand(t, shape_from_args(a, "expand")); })
      .def("expand_as", &expand_as)
      .def("broadcast_to", [](const Tensor& t, py::args a) { return expand(t, shape_from_args(a, "broadcast_to")); })
      .def("squeeze", [](const Tensor& t, py::object d) {
        return d.is_none() ? squeeze(t) : squeeze(t, d.cast<int64_t>());
      }, py::arg("dim") = py::none())
      .def("unsqueeze", &unsqueeze)
      .def("flatten", &flatten, py::arg("start_dim") = 0, py::arg("end_dim") = -1)
      .def("unflatten", [](const Tensor& t, int64_t d, py::sequence s) {
        return unflatten(t, d, s.cast<Shape>());
      })
      .def("movedim", &movedim)
      .def("contiguous", &contiguous)
      .def("clone", &clone)
      .def("copy_", [](Tensor& t, const Tensor& src) { return copy_(t, src); })
      .def("to", &to_any)
      .def("type", [](const Tensor& t, DType d) { return to(t, d); })
      .def("float", [](const Tensor& t) { return to(t, DType::Float32); })
      .def("double", [](const Tensor& t) { return to(t, DType::Float64); })
      .def("half", [](const Tensor& t) { return to(t, DType::Float16); })
      .def("bfloat16", [](const Tensor& t) { return to(t, DType::BFloat16); })
      .def("int", [](const Tensor& t) { return to(t, DType::Int32); })
      .def("long", [](const Tensor& t) { return to(t, DType::Int64); })
      .def("bool", [](const Tensor& t) { return to(t, DType::Bool); })
      .def("cpu", [](const Tensor& t) { return to(t, Device()); })
      .def("cuda", [](const Tensor& t, py::object d) { return to(t, device_from(d, Device("cuda"))); },
           py::arg("device") = py::none())
      .def("fill_", [](Tensor& t, const Scalar& v) { return fill_(t, v); })
      .def("zero_", [](Tensor& t) { return zero_(t); })
      // Autograd.
      .def_property("requires_grad", &Tensor::requires_grad,
                    [](Tensor& t, bool r) { t.set_requires_grad(r); })
      .def("requires_grad_", [](Tensor& t, bool r) { return t.set_requires_grad(r); },
           py::arg("requires_grad") = true)
      .def_property("grad", [](const Tensor& t) -> py::object {
        Tensor g = t.grad();
        return g.defined() ? py::cast(g) : py::none();
      }, [](Tensor& t, py::object g) { t.set_grad(g.is_none() ? Tensor() : g.cast<Tensor>()); })
      .def_property_readonly("grad_fn", &Tensor::grad_fn)
      .def_property_readonly("is_leaf", &Tensor::is_leaf)
      .def_property_readonly("retains_grad", &Tensor::retains_grad)
      // t.data = src makes t alias src's memory, shape and dtype while t keeps its identity
      // and autograd flags (how Module.to() converts parameters in place, as in PyTorch).
      .def_property("data", [](const Tensor& t) { return t.detach(); },
                    [](Tensor& t, const Tensor& src) { t.set_data(src); })
      .def("backward", [](const Tensor& t, py::object gradient, py::object retain_graph, bool create_graph) {
        // retain_graph defaults to create_graph, as in PyTorch.
        const bool retain = retain_graph.is_none() ? create_graph : retain_graph.cast<bool>();
        t.backward(gradient.is_none() ? Tensor() : gradient.cast<Tensor>(), retain, create_graph);
      }, py::arg("gradient") = py::none(), py::arg("retain_graph") = py::none(), py::arg("create_graph") = false)
      .def("detach", &Tensor::detach)
      .def("detach_", [](Tensor& t) { return t.detach_(); })
      .def("retain_grad", &Tensor::retain_grad)
      .def("register_hook", [](Tensor& t, py::function fn) {
        // The hook can be removed (handle.remove()): the C++ hook then passes gradients through.
        auto active = std::make_shared<bool>(true);
        t.register_hook([fn, active](const Tensor& g) -> Tensor {
          if (!*active) return Tensor();
          py::gil_scoped_acquire gil;
          py::object r = fn(g);
          return r.is_none() ? Tensor() : r.cast<Tensor>();
        });
        return py::module_::import("bigmodel._hooks").attr("RemovableHookHandle")(
            py::cpp_function([active]() { *active = false; }));
      })
      .def("register_post_accumulate_grad_hook", [](Tensor& t, py::function fn) {
        t.register_post_accumulate_grad_hook([fn](const Tensor& leaf) {
          py::gil_scoped_acquire gil;
          fn(leaf);
        });
      });
}

}  // namespace bigmodel::python
