// Python bindings: autocast (mixed precision) state.
#include "common.h"

namespace bigmodel::python {

void bind_amp(py::module_& m, py::class_<Tensor>& cls) {}

}  // namespace bigmodel::python
