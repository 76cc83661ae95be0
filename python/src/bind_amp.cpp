// Python bindings: autocast (mixed precision) state, per device type and thread (core/amp.h).
// bigmodel.amp / bm.autocast build the context manager on top of these.
#include "common.h"
#include "core/amp.h"

namespace bigmodel::python {

namespace {
// "cpu", "cuda", "cuda:1", a bm.device: only the device type matters for autocast.
DeviceType device_type_of(const py::object& obj) { return device_from(obj).type; }
}  // namespace

void bind_amp(py::module_& m, py::class_<Tensor>& /*cls*/) {
  m.def("_is_autocast_enabled", [](const py::object& dev) { return amp::is_autocast_enabled(device_type_of(dev)); },
        py::arg("device_type"));
  m.def("_set_autocast_enabled",
        [](const py::object& dev, bool on) { amp::set_autocast_enabled(device_type_of(dev), on); },
        py::arg("device_type"), py::arg("enabled"));
  m.def("_get_autocast_dtype", [](const py::object& dev) { return amp::get_autocast_dtype(device_type_of(dev)); },
        py::arg("device_type"));
  m.def("_set_autocast_dtype",
        [](const py::object& dev, DType dtype) { amp::set_autocast_dtype(device_type_of(dev), dtype); },
        py::arg("device_type"), py::arg("dtype"));
  // Fast path for the float32-list wrappers in bigmodel/amp: true when any device type has autocast on.
  m.def("_autocast_any_enabled", []() {
    return amp::is_autocast_enabled(DeviceType::CPU) || amp::is_autocast_enabled(DeviceType::CUDA);
  });
  m.def("_autocast_upcast", [](const Tensor& t) { return amp::autocast_upcast(t); }, py::arg("tensor"));
}

}  // namespace bigmodel::python
