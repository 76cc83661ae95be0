// ProcessGroupNCCL: collectives over NCCL for CUDA tensors. Each rank drives the GPU of its
// local rank (mpirun's environment, through the MPI group that also carries the NCCL unique
// id from rank 0). Collectives run on a stream of their own: an event recorded on the
// caller's current stream orders them after the kernels that produced their inputs, and
// Work::wait() makes the caller's stream wait for them (the host waits too, polling, so a
// collective that never completes is detected: after BIGMODEL_DIST_TIMEOUT seconds the
// communicator is aborted and wait() raises on every surviving rank, naming the rank and
// the collective). Buffers stay alive and are marked as used by the NCCL stream in the
// caching allocator until their collective is done.
// Compiled with CUDA and NCCL; MPI carries the unique id between processes. A build without
// MPI runs NCCL in a single process (world size 1, e.g. the GPU device check); otherwise
// make_process_group_nccl() says what is missing.
#include "distributed/process_group.h"

#include "core/error.h"

#if defined(BIGMODEL_WITH_NCCL) && defined(BIGMODEL_WITH_CUDA)
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "core/autograd.h"
#include "core/cuda_info.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/shape_ops.h"
#include "core/ops/view.h"
#endif

namespace bigmodel::distributed {

#if !(defined(BIGMODEL_WITH_NCCL) && defined(BIGMODEL_WITH_CUDA))

bool nccl_available() { return false; }
ProcessGroupPtr make_process_group_nccl() {
  BM_CHECK_RUNTIME(false, "init_process_group",
                   "bigmodel was built without the NCCL backend (it needs nvcc and NCCL (nccl.h, libnccl) at build "
                   "time, and libopenmpi-dev for more than one process); use backend='mpi' for CPU tensors");
  return nullptr;
}

#else

bool nccl_available() { return true; }

namespace {

void check_nccl(ncclResult_t rc, const char* op, int rank) {
  if (rc == ncclSuccess || rc == ncclInProgress) return;
  BM_CHECK_RUNTIME(false, op, "NCCL error on rank ", rank, ": ", ncclGetErrorString(rc),
                   rc == ncclSystemError || rc == ncclRemoteError
                       ? " (another rank has probably died or a network link failed)"
                       : "");
}

#ifndef BIGMODEL_WITH_MPI
// The world size a launcher announced (mpirun, srun/PMI, torchrun-style), 1 if none.
int launcher_world_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "WORLD_SIZE"}) {
    const char* v = std::getenv(var);
    if (v && *v) return std::atoi(v);
  }
  return 1;
}
#endif

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::Bool: return ncclUint8;
    case DType::Int32: return ncclInt32;
    case DType::Int64: return ncclInt64;
    case DType::Float16: return ncclFloat16;
    case DType::BFloat16: return ncclBfloat16;
    case DType::Float32: return ncclFloat32;
    case DType::Float64: return ncclFloat64;
  }
  return ncclUint8;
}

ncclRedOp_t nccl_op(ReduceOp op, DType t) {
  if (t == DType::Bool) return op == ReduceOp::Min ? ncclMin : ncclMax;  // sum/max of bools = any
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Avg: return ncclAvg;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
  }
  return ncclSum;
}

class ProcessGroupNCCL;

// One launched collective: its end event on the NCCL stream, the buffers it uses (kept
// alive until it is done) and the copy-back the caller's thread runs in wait().
class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<ProcessGroupNCCL> group, const char* name, int device)
      : group_(std::move(group)), name_(name), done_(false, device) {}
  void wait() override;
  bool is_completed() override { return waited_ || done_.query(); }

  std::vector<Tensor> keep_alive;
  std::function<void()> finalize;
  cuda::Event& done_event() { return done_; }

 private:
  std::shared_ptr<ProcessGroupNCCL> group_;  // outlives its pending collectives
  const char* name_;
  cuda::Event done_;
  bool waited_ = false;
};

class ProcessGroupNCCL : public ProcessGroup, public std::enable_shared_from_this<ProcessGroupNCCL> {
 public:
  ProcessGroupNCCL() : timeout_(collective_timeout_seconds()) {
    const int visible = cuda::device_count();
    BM_CHECK_RUNTIME(visible > 0, "init_process_group",
                     "backend 'nccl' needs a CUDA GPU, but no CUDA device is visible to this process "
                     "(use backend='mpi' for CPU tensors)");
#ifdef BIGMODEL_WITH_MPI
    mpi_ = make_process_group_mpi();
    rank_ = mpi_->rank();
    size_ = mpi_->size();
    local_rank_ = mpi_->local_rank();
#else
    const int launched = launcher_world_size();
    BM_CHECK_RUNTIME(launched <= 1, "init_process_group", "the launcher started ", launched,
                     " processes, but this build has no MPI to carry NCCL's unique id between them: "
                     "install libopenmpi-dev and rebuild");
#endif
    device_ = local_rank_ % visible;
    cuda::set_device(device_);  // each rank takes the GPU of its local rank
    stream_ = cuda::create_stream(device_);

    // Rank 0 makes the unique id; MPI carries it to everyone.
    // The id travels as raw bytes in a one-byte-per-element CPU tensor.
    Tensor id_bytes = zeros({static_cast<int64_t>(sizeof(ncclUniqueId))}, DType::Bool);
    ncclUniqueId id;
    std::memset(&id, 0, sizeof(id));
    if (rank_ == 0) {
      check_nccl(ncclGetUniqueId(&id), "init_process_group", rank_);
      std::memcpy(id_bytes.data_ptr(), &id, sizeof(id));
    }
    if (mpi_) mpi_->broadcast(id_bytes, 0);
    std::memcpy(&id, id_bytes.data_ptr(), sizeof(id));
    cuda::DeviceGuard guard(device_);
    check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "init_process_group", rank_);
  }

  ~ProcessGroupNCCL() override {
    if (!comm_) return;
    if (aborted_) return;  // already torn down
    // Collectives never waited for may still be pending: wait for them as wait() does (a
    // plain stream sync would hang for good on one whose peer died), and abort instead of
    // destroying a communicator that failed or timed out (ncclCommDestroy would flush it).
    try {
      const auto start = std::chrono::steady_clock::now();
      while (!cuda::stream_query(stream_)) {
        ncclResult_t async = ncclSuccess;
        ncclCommGetAsyncError(comm_, &async);
        const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if ((async != ncclSuccess && async != ncclInProgress) || (timeout_ > 0 && waited > timeout_)) {
          abort();
          return;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    } catch (...) {
    }
    ncclCommDestroy(comm_);
  }

  std::string backend() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }

  WorkPtr all_reduce_async(Tensor& tensor, ReduceOp op) override {
    const char* name = "all_reduce";
    check_cuda_tensor(tensor, name);
    BM_CHECK_DTYPE(op != ReduceOp::Avg || is_floating(tensor.dtype()), name,
                   "ReduceOp.AVG needs a floating tensor; got ", dtype_name(tensor.dtype()));
    Tensor buf = staged(tensor);
    auto work = launch(name, {buf}, [&](cudaStream_t s) {
      return ncclAllReduce(buf.data_ptr(), buf.data_ptr(), static_cast<size_t>(buf.numel()), nccl_type(buf.dtype()),
                           nccl_op(op, buf.dtype()), comm_, s);
    });
    copy_back_if_staged(*work, buf, tensor);
    return work;
  }

  WorkPtr broadcast_async(Tensor& tensor, int root) override {
    const char* name = "broadcast";
    check_cuda_tensor(tensor, name);
    BM_CHECK_VALUE(root >= 0 && root < size_, name, "root ", root, " is out of range for world size ", size_);
    Tensor buf = staged(tensor);
    auto work = launch(name, {buf}, [&](cudaStream_t s) {
      return ncclBroadcast(buf.data_ptr(), buf.data_ptr(), static_cast<size_t>(buf.numel()), nccl_type(buf.dtype()),
                           root, comm_, s);
    });
    copy_back_if_staged(*work, buf, tensor);
    return work;
  }

  WorkPtr all_gather_async(std::vector<Tensor>& outputs, const Tensor& input) override {
    const char* name = "all_gather";
    check_cuda_tensor(input, name);
    check_list(outputs, input, name);
    Tensor in = staged(input);
    Tensor flat = empty({size_ * input.numel()}, input.dtype(), input.device());
    auto work = launch(name, {in, flat}, [&](cudaStream_t s) {
      return ncclAllGather(in.data_ptr(), flat.data_ptr(), static_cast<size_t>(in.numel()), nccl_type(in.dtype()),
                           comm_, s);
    });
    std::vector<Tensor> targets;
    for (const Tensor& o : outputs) targets.push_back(o.detach());
    work->finalize = [flat, targets]() mutable {
      const int64_t n = flat.numel() / static_cast<int64_t>(targets.size());
      for (size_t r = 0; r < targets.size(); ++r)
        copy_(targets[r], reshape(narrow(flat, 0, static_cast<int64_t>(r) * n, n), targets[r].sizes()));
    };
    return work;
  }

  WorkPtr reduce_scatter_async(Tensor& output, const std::vector<Tensor>& inputs, ReduceOp op) override {
    const char* name = "reduce_scatter";
    check_cuda_tensor(output, name);
    BM_CHECK_DTYPE(op != ReduceOp::Avg || is_floating(output.dtype()), name,
                   "ReduceOp.AVG needs a floating tensor; got ", dtype_name(output.dtype()));
    check_list(inputs, output, name);
    Tensor send;
    {
      NoGradGuard no_grad;
      std::vector<Tensor> flat;
      for (const Tensor& t : inputs) flat.push_back(reshape(t.detach(), {t.numel()}));
      send = contiguous(cat(flat, 0));
    }
    Tensor recv = staged(output);
    auto work = launch(name, {send, recv}, [&](cudaStream_t s) {
      return ncclReduceScatter(send.data_ptr(), recv.data_ptr(), static_cast<size_t>(recv.numel()),
                               nccl_type(recv.dtype()), nccl_op(op, recv.dtype()), comm_, s);
    });
    copy_back_if_staged(*work, recv, output);
    return work;
  }

  WorkPtr barrier_async() override {
    Tensor one = ones({1}, DType::Float32, Device(DeviceType::CUDA, device_));
    return all_reduce_async(one, ReduceOp::Sum);
  }

  // Called by NcclWork::wait(): polls until the collective is done, aborting the
  // communicator (which makes every pending NCCL kernel return) after the timeout.
  void wait_for(NcclWork& work, const char* name) {
    // An earlier failure aborted (and freed) the communicator: its pending collectives were
    // given up (their events complete without a result), so none can be trusted.
    BM_CHECK_RUNTIME(!aborted_, name, "the NCCL communicator was aborted after an earlier failure or timeout, "
                     "so this collective's result cannot be trusted; end this process");
    const auto start = std::chrono::steady_clock::now();
    int sleep_us = 1;
    while (!work.done_event().query()) {
      check_async_error(name);
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (timeout_ > 0 && waited > timeout_) {
        abort();
        BM_CHECK_RUNTIME(false, name, "rank ", rank_, " timed out after ", timeout_,
                         " s waiting for the collective to complete: another rank has probably died or stopped "
                         "calling collectives (the limit is BIGMODEL_DIST_TIMEOUT, in seconds). The NCCL "
                         "communicator was aborted; end this process");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
      if (sleep_us < 1000) sleep_us *= 2;
    }
    check_async_error(name);
    work.done_event().wait(cuda::current_stream(device_));  // later kernels of the caller see the result
  }

 private:
  void check_cuda_tensor(const Tensor& t, const char* op) const {
    BM_CHECK_VALUE(t.defined(), op, "expected a tensor, got an undefined one");
    BM_CHECK_DEVICE(t.device().is_cuda(), op, "the nccl backend takes CUDA tensors; got a tensor on ",
                    t.device().str(), " (use backend='mpi' for CPU tensors)");
    BM_CHECK_DEVICE(t.device().index == device_, op, "rank ", rank_, " drives cuda:", device_,
                    " (its local rank); got a tensor on ", t.device().str());
    BM_CHECK_RUNTIME(!aborted_, op, "the NCCL communicator was aborted after an earlier failure or timeout; "
                     "end this process");
  }

  void check_list(const std::vector<Tensor>& list, const Tensor& like, const char* name) const {
    check_rank_list(list, like, size_, name);
    for (const Tensor& t : list) check_cuda_tensor(t, name);
  }

  // A contiguous tensor holding t's values (t itself when it is contiguous).
  static Tensor staged(const Tensor& t) {
    NoGradGuard no_grad;
    Tensor d = t.detach();
    return d.is_contiguous() ? d : contiguous(d);
  }

  static void copy_back_if_staged(NcclWork& work, const Tensor& buf, const Tensor& target) {
    if (buf.data_ptr() == target.data_ptr()) return;
    Tensor t = target.detach();
    work.finalize = [buf, t]() mutable { copy_(t, reshape(buf, t.sizes())); };
  }

  // Orders the NCCL stream after the caller's stream, enqueues the collective, records
  // its end event, and marks the buffers as used by the NCCL stream.
  template <typename Call>
  std::shared_ptr<NcclWork> launch(const char* name, std::vector<Tensor> buffers, Call call) {
    cuda::DeviceGuard guard(device_);
    cuda::Event ready(false, device_);
    ready.record(cuda::current_stream(device_));
    ready.wait(stream_);
    const ncclResult_t rc = call(static_cast<cudaStream_t>(stream_.handle));
    // NCCL's error model: a system, remote, internal or CUDA error leaves the communicator
    // unusable and it must be aborted (later collectives then raise at once, and the
    // destructor does not ncclCommDestroy a communicator whose peers are gone); invalid
    // arguments or usage leave it as it was.
    if (rc != ncclSuccess && rc != ncclInProgress && rc != ncclInvalidArgument && rc != ncclInvalidUsage) abort();
    check_nccl(rc, name, rank_);
    auto work = std::make_shared<NcclWork>(shared_from_this(), name, device_);
    work->done_event().record(stream_);
    for (const Tensor& b : buffers)
      if (b.numel() > 0) cuda::record_stream(b.data_ptr(), stream_);
    work->keep_alive = std::move(buffers);
    return work;
  }

  void check_async_error(const char* name) {
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    if (async != ncclSuccess && async != ncclInProgress) {
      const char* last = ncclGetLastError(comm_);  // NCCL's account (which peer, which call)
      const std::string detail = last && *last ? last : "";
      abort();
      BM_CHECK_RUNTIME(false, name, "NCCL error on rank ", rank_, ": ", ncclGetErrorString(async),
                       async == ncclSystemError || async == ncclRemoteError
                           ? " (another rank has probably died or a network link failed)"
                           : "",
                       detail.empty() ? "" : "; NCCL says: ", detail,
                       ". The NCCL communicator was aborted; end this process");
    }
  }

  void abort() {
    if (aborted_) return;
    aborted_ = true;
    ncclCommAbort(comm_);
  }

  ProcessGroupPtr mpi_;  // bootstrap (unique id, ranks); null in a build without MPI
  double timeout_;
  int rank_ = 0, size_ = 1, local_rank_ = 0, device_ = 0;
  cuda::Stream stream_;
  ncclComm_t comm_ = nullptr;
  bool aborted_ = false;
};

void NcclWork::wait() {
  if (!waited_) {
    group_->wait_for(*this, name_);
    waited_ = true;
    keep_alive.clear();
  }
  if (finalize) {
    auto f = std::move(finalize);
    finalize = nullptr;
    NoGradGuard no_grad;  // writing into leaves (parameters, grads) is not an autograd op
    f();
  }
}

}  // namespace

ProcessGroupPtr make_process_group_nccl() { return std::make_shared<ProcessGroupNCCL>(); }

#endif

}  // namespace bigmodel::distributed
