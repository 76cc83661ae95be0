// Python bindings: autocast (mixed precision) state.
#include "common.h"

void bind_amp(py::module_& m, py::class_<Tensor>& cls) {}
