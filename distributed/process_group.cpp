// The default process group and backend selection; the backends live in their own files.
#include "distributed/process_group.h"

#include <mutex>

#include "core/error.h"

namespace bigmodel::distributed {

namespace {
std::mutex g_mutex;
ProcessGroupPtr g_default;
}  // namespace

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "SUM";
    case ReduceOp::Avg: return "AVG";
    case ReduceOp::Max: return "MAX";
    case ReduceOp::Min: return "MIN";
  }
  return "?";
}

ProcessGroupPtr init_process_group(const std::string& backend) {
  std::lock_guard<std::mutex> lock(g_mutex);
  BM_CHECK_RUNTIME(!g_default, "init_process_group",
                   "the default process group is already initialised; call destroy_process_group() first");
  std::string name = backend.empty() ? "mpi" : backend;
  if (name == "mpi") {
    g_default = make_process_group_mpi();
  } else if (name == "nccl") {
    BM_CHECK_RUNTIME(false, "init_process_group",
                     "the nccl backend is not available in this build yet (CUDA tensors); use backend='mpi'");
  } else {
    BM_CHECK_VALUE(false, "init_process_group", "unknown backend '", name, "' (expected 'mpi' or 'nccl')");
  }
  return g_default;
}

bool is_initialized() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_default != nullptr;
}

ProcessGroupPtr default_group(const char* op) {
  std::lock_guard<std::mutex> lock(g_mutex);
  BM_CHECK_RUNTIME(g_default != nullptr, op,
                   "the default process group is not initialised; call init_process_group() first");
  return g_default;
}

void destroy_process_group() {
  ProcessGroupPtr old;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    old.swap(g_default);
  }
  // Finishes queued collectives; MPI itself stays up (it cannot be re-initialised) and
  // is finalised at exit.
  old.reset();
}

}  // namespace bigmodel::distributed
