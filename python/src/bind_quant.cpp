// Python bindings: int8 quantization ops.
#include "common.h"

namespace bigmodel::python {

void bind_quant(py::module_& m, py::class_<Tensor>& cls) {}

}  // namespace bigmodel::python
