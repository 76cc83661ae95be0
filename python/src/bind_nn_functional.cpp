// Python bindings for the nn_functional family (filled in as the family grows).
#include "python/src/common.h"

namespace bigmodel::python {

void bind_nn_functional(py::module_& m, py::class_<Tensor>& cls) {}

}  // namespace bigmodel::python
