// Python bindings for the rnn family (filled in as the family grows).
#include "python/src/common.h"

namespace bigmodel::python {

void bind_rnn(py::module_& m, py::class_<Tensor>& cls) {}

}  // namespace bigmodel::python
