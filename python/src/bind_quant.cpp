// Python bindings: int8 quantization ops.
#include "common.h"

void bind_quant(py::module_& m, py::class_<Tensor>& cls) {}
