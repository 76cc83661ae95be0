// Python bindings for the conv_pool family (filled in as the family grows).
#include "python/src/common.h"

namespace bigmodel::python {

void bind_conv_pool(py::module_& m, py::class_<Tensor>& cls) {}

}  // namespace bigmodel::python
