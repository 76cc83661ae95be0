// Python bindings of the multi-tensor (fused) optimizer updates and norms.
#include "common.h"

namespace bigmodel::python {

void bind_fused_optim(py::module_& /*m*/, py::class_<Tensor>& /*cls*/) {}

}  // namespace bigmodel::python
