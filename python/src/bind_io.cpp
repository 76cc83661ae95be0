// Python bindings for the io family: safetensors bytes and files. The public API
// (bm.save/bm.load, bm.save_file/bm.load_file) lives in python/bigmodel/serialization.py.
#include "python/src/common.h"

#include "core/safetensors.h"

namespace bigmodel::python {
namespace {

using Named = std::vector<std::pair<std::string, Tensor>>;

py::tuple contents_to_python(safetensors::Contents&& c) {
  py::list tensors;
  for (auto& [name, t] : c.tensors) tensors.append(py::make_tuple(name, t));
  py::dict meta;
  for (const auto& [k, v] : c.metadata) meta[py::str(k)] = py::str(v);
  return py::make_tuple(tensors, meta);
}

}  // namespace

void bind_io(py::module_& m, py::class_<Tensor>& /*cls*/) {
  m.def("_safetensors_serialize", [](const Named& tensors, const std::map<std::string, std::string>& meta) {
    return py::bytes(safetensors::serialize(tensors, meta));
  }, py::arg("tensors"), py::arg("metadata"));
  m.def("_safetensors_deserialize", [](const py::bytes& data) {
    std::string_view view = data;  // no copy of the whole file
    return contents_to_python(safetensors::deserialize(view.data(), view.size()));
  }, py::arg("data"));
  m.def("_safetensors_save", [](const std::string& path, const Named& tensors,
                                const std::map<std::string, std::string>& meta) {
    safetensors::save(path, tensors, meta);
  }, py::arg("path"), py::arg("tensors"), py::arg("metadata"));
  m.def("_safetensors_load", [](const std::string& path) { return contents_to_python(safetensors::load(path)); },
        py::arg("path"));
}

}  // namespace bigmodel::python
