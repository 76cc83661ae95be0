// Python bindings: bm.cuda runtime: streams, events, memory statistics (owned by the CUDA runtime work).
#include "common.h"

void bind_cuda(py::module_& m, py::class_<Tensor>& cls) {}
