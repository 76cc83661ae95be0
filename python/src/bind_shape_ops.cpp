// Python bindings for the shape_ops family (filled in as the family grows).
#include "python/src/common.h"

namespace bigmodel::python {

void bind_shape_ops(py::module_& m, py::class_<Tensor>& cls) {}

}  // namespace bigmodel::python
