// Python bindings for the attention family (filled in as the family grows).
#include "python/src/common.h"

namespace bigmodel::python {

void bind_attention(py::module_& m, py::class_<Tensor>& cls) {}

}  // namespace bigmodel::python
