// Python bindings: bm.cuda runtime: streams, events, memory statistics.
#include "common.h"

namespace bigmodel::python {

void bind_cuda(py::module_& m, py::class_<Tensor>& cls) {}

}  // namespace bigmodel::python
