// ProcessGroup: the collective-communication interface data-parallel training uses
// (all_reduce, broadcast, all_gather, reduce_scatter, barrier, each sync or async), and
// the process-wide default group made by init_process_group ("mpi" for CPU tensors, "nccl"
// for CUDA tensors).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace bigmodel::distributed {

enum class ReduceOp { Sum, Avg, Max, Min };
const char* reduce_op_name(ReduceOp op);

// Handle on an async collective. wait() blocks until it is done, writes results into the
// caller's tensors (when the backend worked on a staging copy) and rethrows its error.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
  virtual bool is_completed() = 0;
};
using WorkPtr = std::shared_ptr<Work>;

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual std::string backend() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;

  // In place on `tensor` (every rank passes the same shape and dtype).
  virtual WorkPtr all_reduce_async(Tensor& tensor, ReduceOp op) = 0;
  // `tensor` on every rank becomes root's.
  virtual WorkPtr broadcast_async(Tensor& tensor, int root) = 0;
  // outputs[r] receives rank r's `input`; outputs has size() tensors shaped like input.
  virtual WorkPtr all_gather_async(std::vector<Tensor>& outputs, const Tensor& input) = 0;
  // output = reduction over ranks of inputs[rank()]; inputs has size() tensors shaped like output.
  virtual WorkPtr reduce_scatter_async(Tensor& output, const std::vector<Tensor>& inputs, ReduceOp op) = 0;
  virtual WorkPtr barrier_async() = 0;

  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::Sum) { all_reduce_async(t, op)->wait(); }
  void broadcast(Tensor& t, int root = 0) { broadcast_async(t, root)->wait(); }
  void all_gather(std::vector<Tensor>& outs, const Tensor& in) { all_gather_async(outs, in)->wait(); }
  void reduce_scatter(Tensor& out, const std::vector<Tensor>& ins, ReduceOp op = ReduceOp::Sum) {
    reduce_scatter_async(out, ins, op)->wait();
  }
  void barrier() { barrier_async()->wait(); }
};
using ProcessGroupPtr = std::shared_ptr<ProcessGroup>;

// Shared by the backends. Seconds a collective may wait: init_process_group's timeout when one
// was given, else BIGMODEL_DIST_TIMEOUT, else 10 minutes; 0 (or <= 0 from the environment) is
// forever. A malformed environment value raises ValueError naming the variable.
constexpr double kDefaultCollectiveTimeout = 600.0;
double collective_timeout_seconds();
// A per-rank list: `world` tensors, each shaped and typed like `like` (devices are the
// backend's to check).
void check_rank_list(const std::vector<Tensor>& list, const Tensor& like, int world, const char* op);

// Creates the default group. backend: "mpi", "nccl", or "" (mpi for CPU training).
// Throws Error when already initialised or when the backend was not built in.
// timeout_seconds >= 0 sets the collective timeout (0: forever); negative keeps the environment's.
ProcessGroupPtr init_process_group(const std::string& backend = "", double timeout_seconds = -1.0);
bool is_initialized();
ProcessGroupPtr default_group(const char* op);  // throws "[op] ... not initialised"
void destroy_process_group();
bool mpi_available();   // built with MPI
bool nccl_available();  // built with NCCL (and CUDA and MPI, which bootstraps it)

// Backend factories (defined in their own files; throw when built without them).
ProcessGroupPtr make_process_group_mpi();
ProcessGroupPtr make_process_group_nccl();  // collective: every rank calls it together

}  // namespace bigmodel::distributed
