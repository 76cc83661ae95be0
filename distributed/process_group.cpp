// The default process group and backend selection; the backends live in their own files.
#include <atomic>
#include <cmath>
#include "distributed/process_group.h"

#include <cstdlib>
#include <mutex>

#include "core/cuda_info.h"
#include "core/error.h"
#include "core/ops/creation.h"

namespace bigmodel::distributed {

namespace {
std::mutex g_mutex;
ProcessGroupPtr g_default;

// backend=None on a GPU machine: CUDA tensors go to NCCL, CPU tensors to MPI (the device
// of the first tensor decides; the backends check the rest). Barriers use MPI.
class DeviceRoutedGroup : public ProcessGroup {
 public:
  DeviceRoutedGroup(ProcessGroupPtr mpi, ProcessGroupPtr nccl) : mpi_(std::move(mpi)), nccl_(std::move(nccl)) {}
  std::string backend() const override { return "mpi+nccl"; }
  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }
  int local_rank() const override { return mpi_->local_rank(); }
  WorkPtr all_reduce_async(Tensor& t, ReduceOp op) override { return pick(t).all_reduce_async(t, op); }
  WorkPtr broadcast_async(Tensor& t, int root) override { return pick(t).broadcast_async(t, root); }
  WorkPtr all_gather_async(std::vector<Tensor>& outs, const Tensor& in) override {
    return pick(in).all_gather_async(outs, in);
  }
  WorkPtr reduce_scatter_async(Tensor& out, const std::vector<Tensor>& ins, ReduceOp op) override {
    return pick(out).reduce_scatter_async(out, ins, op);
  }
  WorkPtr barrier_async() override { return mpi_->barrier_async(); }

 private:
  ProcessGroup& pick(const Tensor& t) { return t.defined() && t.device().is_cuda() ? *nccl_ : *mpi_; }
  ProcessGroupPtr mpi_, nccl_;
};
}  // namespace

namespace {
// Set by init_process_group(timeout); negative: not set, use the environment or the default.
std::atomic<double> g_timeout_override{-1.0};
}  // namespace

double collective_timeout_seconds() {
  const double set = g_timeout_override.load();
  if (set >= 0) return set;
  static const double from_env = [] {
    const char* env = std::getenv("BIGMODEL_DIST_TIMEOUT");
    if (!env || !*env) return kDefaultCollectiveTimeout;
    char* end = nullptr;
    double v = std::strtod(env, &end);
    BM_CHECK_VALUE(end && *end == 0, "init_process_group", "BIGMODEL_DIST_TIMEOUT must be a number of seconds, got '",
                   env, "'");
    return v;
  }();
  return from_env;
}

void check_rank_list(const std::vector<Tensor>& list, const Tensor& like, int world, const char* op) {
  BM_CHECK_VALUE(static_cast<int>(list.size()) == world, op, "expected a list of ", world,
                 " tensors (the world size), got ", list.size());
  for (const Tensor& t : list) {
    BM_CHECK_VALUE(t.defined(), op, "expected a tensor, got an undefined one");
    BM_CHECK_SHAPE(t.sizes() == like.sizes(), op, "every tensor in the list must have shape ",
                   shape_str(like.sizes()), "; got ", shape_str(t.sizes()));
    BM_CHECK_DTYPE(t.dtype() == like.dtype(), op, "every tensor in the list must have dtype ",
                   dtype_name(like.dtype()), "; got ", dtype_name(t.dtype()));
  }
}

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "SUM";
    case ReduceOp::Avg: return "AVG";
    case ReduceOp::Max: return "MAX";
    case ReduceOp::Min: return "MIN";
  }
  return "?";
}

// backend=None adds NCCL only where it can run: NCCL allows one rank per GPU, so every node
// needs a GPU for each of its ranks (e.g. `mpirun -np 2` of a CPU job on a one-GPU machine
// stays on MPI). One all-reduce, so every rank decides alike.
static bool nccl_fits_every_node(ProcessGroup& mpi) {
  Tensor t = zeros({2}, DType::Int64);
  auto* v = static_cast<int64_t*>(t.data_ptr());
  v[0] = mpi.local_rank() + 1;       // ranks on this node (the largest local rank + 1)
  v[1] = -cuda::device_count();      // max of the negated count = the fewest GPUs of any node
  mpi.all_reduce(t, ReduceOp::Max);
  return v[1] < 0 && v[0] <= -v[1];
}

ProcessGroupPtr init_process_group(const std::string& backend, double timeout_seconds) {
  std::lock_guard<std::mutex> lock(g_mutex);
  BM_CHECK_RUNTIME(!g_default, "init_process_group",
                   "the default process group is already initialised; call destroy_process_group() first");
  BM_CHECK_VALUE(!std::isnan(timeout_seconds), "init_process_group", "timeout must be a number of seconds, got NaN");
  // Zero means forever, like BIGMODEL_DIST_TIMEOUT=0; a negative value leaves the timeout to the
  // environment (or the default).
  g_timeout_override.store(timeout_seconds >= 0 ? timeout_seconds : -1.0);
  collective_timeout_seconds();  // a malformed BIGMODEL_DIST_TIMEOUT raises here, not mid-training
  if (backend.empty() && nccl_available() && mpi_available()) {
    ProcessGroupPtr mpi = make_process_group_mpi();
    g_default = nccl_fits_every_node(*mpi) ? std::make_shared<DeviceRoutedGroup>(mpi, make_process_group_nccl()) : mpi;
    return g_default;
  }
  std::string name = backend.empty() ? "mpi" : backend;
  if (name == "mpi") {
    g_default = make_process_group_mpi();
  } else if (name == "nccl") {
    g_default = make_process_group_nccl();
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
