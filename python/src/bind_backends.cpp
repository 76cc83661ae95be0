// Python bindings of the backend registry (core/backends.h); bigmodel/backends.py turns
// them into attributes: bm.backends.conv = "cudnn".
#include "common.h"
#include "core/backends.h"

namespace bigmodel::python {

void bind_backends(py::module_& m) {
  m.def("_backend_families", []() { return backend_families(); });
  m.def("_backend_choices", [](const std::string& family) { return backend_choices(family); }, py::arg("family"));
  m.def("_backend_get", [](const std::string& family) { return backend(family); }, py::arg("family"));
  m.def("_backend_set", [](const std::string& family, const std::string& name) { set_backend(family, name); },
        py::arg("family"), py::arg("name"));
}

}  // namespace bigmodel::python
