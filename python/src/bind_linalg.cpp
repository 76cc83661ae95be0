// Python bindings for the linalg family (filled in as the family grows).
#include "python/src/common.h"

namespace bigmodel::python {

void bind_linalg(py::module_& m, py::class_<Tensor>& cls) {}

}  // namespace bigmodel::python
