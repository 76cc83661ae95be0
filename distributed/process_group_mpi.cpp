// ProcessGroupMPI: collectives over Open MPI for CPU tensors of every dtype. One worker
// thread issues every MPI call in queue order (so all ranks see collectives in the order
// they were launched, and MPI needs only MPI_THREAD_SERIALIZED); the caller's thread
// stages tensors (contiguous copies, float16/bfloat16 -> float32) and, in Work::wait(),
// writes results back, so the worker touches raw buffers only.
// A rank that dies or stops calling collectives would block the others forever: wait()
// gives up after the collective timeout (init_process_group(timeout), else BIGMODEL_DIST_TIMEOUT seconds, default 600; 0 = never) with an Error, and
// the group is then unusable (the worker is stuck inside MPI; exit skips MPI_Finalize).
#include "distributed/process_group.h"

#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/shape_ops.h"
#include "core/ops/view.h"

#ifdef BIGMODEL_WITH_MPI
#include <mpi.h>
#endif

namespace bigmodel::distributed {

#ifndef BIGMODEL_WITH_MPI

bool mpi_available() { return false; }
ProcessGroupPtr make_process_group_mpi() {
  BM_CHECK_RUNTIME(false, "init_process_group",
                   "bigmodel was built without MPI: install libopenmpi-dev and rebuild to use backend='mpi'");
  return nullptr;
}

#else

bool mpi_available() { return true; }

namespace {

void mark_runtime_broken();

// ---- Work: completion flag + error, set by the worker; finalize runs in wait() ----
class MpiWork : public Work {
 public:
  explicit MpiWork(const char* name) : name_(name) {}
  std::function<void()> finalize;  // caller-thread post-processing (copy back, divide)

  void wait() override {
    std::unique_lock<std::mutex> lock(mutex_);
    const double timeout = collective_timeout_seconds();
    if (timeout > 0) {
      if (!cv_.wait_for(lock, std::chrono::duration<double>(timeout), [&] { return done_; })) {
        mark_runtime_broken();
        BM_CHECK_RUNTIME(false, name_, "timed out after ", timeout,
                         " s waiting for the collective to complete: another rank has probably died or stopped "
                         "calling collectives (the limit is init_process_group(timeout=...) or "
                         "BIGMODEL_DIST_TIMEOUT, in seconds). The process group can no longer be used; end this "
                         "process");
      }
    } else {
      cv_.wait(lock, [&] { return done_; });
    }
    if (error_) std::rethrow_exception(error_);
    if (finalize) {
      auto f = std::move(finalize);
      finalize = nullptr;
      lock.unlock();
      NoGradGuard no_grad;  // writing into leaves (parameters, grads) is not an autograd op
      f();
    }
  }
  bool is_completed() override {
    std::lock_guard<std::mutex> lock(mutex_);
    return done_;
  }
  void mark_done(std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
      error_ = e;
    }
    cv_.notify_all();
  }

 private:
  const char* name_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::exception_ptr error_;
};

// ---- the MPI runtime: initialised once, one worker thread, finalised at exit ----
class MpiRuntime {
 public:
  static MpiRuntime& get() {
    static MpiRuntime* rt = new MpiRuntime();  // leaked on purpose: lives until exit
    return *rt;
  }

  std::shared_ptr<MpiWork> submit(const char* name, std::function<void()> job) {
    auto work = std::make_shared<MpiWork>(name);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      BM_CHECK_RUNTIME(!stopped_, name, "MPI has been finalised (the process is exiting)");
      BM_CHECK_RUNTIME(!broken_, name, "an earlier collective timed out (BIGMODEL_DIST_TIMEOUT), so the process "
                       "group is unusable: another rank has probably died; end this process");
      queue_.emplace_back(std::move(job), work);
    }
    cv_.notify_one();
    return work;
  }

  // A collective timed out: the worker may never come back from MPI.
  void mark_broken() {
    std::lock_guard<std::mutex> lock(mutex_);
    broken_ = true;
  }

 private:
  MpiRuntime() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
      BM_CHECK_RUNTIME(provided >= MPI_THREAD_SERIALIZED, "init_process_group",
                       "the MPI library does not provide MPI_THREAD_SERIALIZED");
      owns_mpi_ = true;
    }
    worker_ = std::thread([this] { loop(); });
    std::atexit([] { MpiRuntime::get().shutdown(); });
  }

  void loop() {
    for (;;) {
      std::pair<std::function<void()>, std::shared_ptr<MpiWork>> item;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and drained
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      std::exception_ptr err;
      try {
        item.first();
      } catch (...) {
        err = std::current_exception();
      }
      item.second->mark_done(err);
    }
  }

  // Drains the queue, joins the worker, then finalises MPI (if we initialised it). After a
  // timeout the worker is stuck in MPI: it is left behind (the process is exiting) and MPI
  // is not finalised, so the launcher sees this rank fail and ends the job.
  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopped_) return;
      stopped_ = stopping_ = true;
      if (broken_) {
        worker_.detach();
        return;
      }
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_mpi_ && !finalized) MPI_Finalize();
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::pair<std::function<void()>, std::shared_ptr<MpiWork>>> queue_;
  bool stopping_ = false, stopped_ = false, owns_mpi_ = false, broken_ = false;
  std::thread worker_;
};

void mark_runtime_broken() { MpiRuntime::get().mark_broken(); }

void check_mpi(int rc, const char* op) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  BM_CHECK_RUNTIME(false, op, "MPI error: ", std::string(msg, len));
}

// float16/bfloat16 travel and reduce as float32 (MPI has no half types).
DType wire_dtype(DType t) { return (t == DType::Float16 || t == DType::BFloat16) ? DType::Float32 : t; }

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::Bool: return MPI_C_BOOL;
    case DType::Int32: return MPI_INT32_T;
    case DType::Int64: return MPI_INT64_T;
    case DType::Float32: return MPI_FLOAT;
    case DType::Float64: return MPI_DOUBLE;
    default: return MPI_BYTE;  // not reached: halves are staged as float32
  }
}

MPI_Op mpi_op(ReduceOp op, DType t) {
  if (t == DType::Bool) return op == ReduceOp::Min ? MPI_LAND : MPI_LOR;  // sum/max of bools = any
  switch (op) {
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
    default: return MPI_SUM;  // Avg = sum, then divide_in_place on the worker
  }
}

// ReduceOp::Avg's division, run by the worker right after the sum so that wait() finds the
// result ready (DDP calls wait() when backward ends: work done there is not hidden). The
// same IEEE division as div_(t, world), element by element, so results are unchanged.
template <typename T>
void divide_elements(void* data, int64_t n, int world) {
  T* p = static_cast<T*>(data);
  const T w = static_cast<T>(world);
  for (int64_t i = 0; i < n; ++i) p[i] /= w;
}

void divide_in_place(void* data, int64_t n, DType wire, int world) {
  if (wire == DType::Float32) divide_elements<float>(data, n, world);
  else if (wire == DType::Float64) divide_elements<double>(data, n, world);
  else BM_CHECK_DTYPE(false, "all_reduce", "ReduceOp.AVG needs a floating tensor; got ", dtype_name(wire));
}

int checked_count(int64_t n, const char* op) {
  BM_CHECK_VALUE(n <= INT_MAX, op, "tensor of ", n, " elements is too large for one MPI call");
  return static_cast<int>(n);
}

void check_cpu(const Tensor& t, const char* op) {
  BM_CHECK_VALUE(t.defined(), op, "expected a tensor, got an undefined one");
  BM_CHECK_DEVICE(t.device().is_cpu(), op, "the MPI backend takes CPU tensors; got a tensor on ",
                  t.device().str(), " (use backend='nccl' for CUDA tensors)");
}

void check_op_dtype(ReduceOp op, DType t, const char* opname) {
  BM_CHECK_DTYPE(op != ReduceOp::Avg || is_floating(t), opname,
                 "ReduceOp.AVG needs a floating tensor; got ", dtype_name(t));
}

// A contiguous tensor of dtype `wire` holding t's values; t itself when it already is one.
Tensor stage(const Tensor& t, DType wire) {
  NoGradGuard no_grad;
  Tensor d = t.detach();
  if (d.dtype() == wire && d.is_contiguous()) return d;
  return contiguous(to(d, wire));
}

class ProcessGroupMPI : public ProcessGroup {
 public:
  ProcessGroupMPI() : rt_(MpiRuntime::get()) {
    // Even setup goes through the worker, so MPI is only ever called from one thread.
    auto w = rt_.submit("init_process_group", [this] {
      check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "init_process_group");
      MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
      MPI_Comm_rank(comm_, &rank_);
      MPI_Comm_size(comm_, &size_);
      MPI_Comm local;
      MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
      MPI_Comm_rank(local, &local_rank_);
      MPI_Comm_free(&local);
    });
    w->wait();
  }
  ~ProcessGroupMPI() override {
    try {
      MPI_Comm comm = comm_;
      rt_.submit("destroy_process_group", [comm]() mutable { MPI_Comm_free(&comm); })->wait();
    } catch (...) {  // exiting: MPI already finalised
    }
  }

  std::string backend() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }

  WorkPtr all_reduce_async(Tensor& tensor, ReduceOp op) override {
    const char* name = "all_reduce";
    check_cpu(tensor, name);
    check_op_dtype(op, tensor.dtype(), name);
    DType wire = wire_dtype(tensor.dtype());
    Tensor buf = stage(tensor, wire);
    int n = checked_count(buf.numel(), name);
    MPI_Comm comm = comm_;
    const int world = size_;
    auto work = rt_.submit(name, [=] {
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, buf.data_ptr(), n, mpi_type(wire), mpi_op(op, wire), comm), name);
      if (op == ReduceOp::Avg) divide_in_place(buf.data_ptr(), n, wire, world);
    });
    Tensor target = tensor.detach();
    if (buf.data_ptr() != target.data_ptr() || buf.dtype() != target.dtype())
      work->finalize = [buf, target]() mutable { copy_(target, buf); };
    return work;
  }

  WorkPtr broadcast_async(Tensor& tensor, int root) override {
    const char* name = "broadcast";
    check_cpu(tensor, name);
    BM_CHECK_VALUE(root >= 0 && root < size_, name, "root ", root, " is out of range for world size ", size_);
    Tensor buf = stage(tensor, tensor.dtype());
    int n = checked_count(static_cast<int64_t>(buf.nbytes()), name);
    MPI_Comm comm = comm_;
    auto work = rt_.submit(name, [=] { check_mpi(MPI_Bcast(buf.data_ptr(), n, MPI_BYTE, root, comm), name); });
    Tensor target = tensor.detach();
    work->finalize = [buf, target]() mutable {
      if (buf.data_ptr() != target.data_ptr()) copy_(target, buf);
    };
    return work;
  }

  WorkPtr all_gather_async(std::vector<Tensor>& outputs, const Tensor& input) override {
    const char* name = "all_gather";
    check_cpu(input, name);
    check_list(outputs, input, name);
    Tensor in = stage(input, input.dtype());
    Tensor buf = empty({size_ * input.numel()}, input.dtype());
    int n = checked_count(static_cast<int64_t>(in.nbytes()), name);
    MPI_Comm comm = comm_;
    auto work = rt_.submit(name, [=] {
      check_mpi(MPI_Allgather(in.data_ptr(), n, MPI_BYTE, buf.data_ptr(), n, MPI_BYTE, comm), name);
    });
    std::vector<Tensor> targets;
    for (const Tensor& o : outputs) targets.push_back(o.detach());
    work->finalize = [buf, targets]() mutable {
      const int64_t n = buf.numel() / static_cast<int64_t>(targets.size());
      for (size_t r = 0; r < targets.size(); ++r)
        copy_(targets[r], reshape(narrow(buf, 0, static_cast<int64_t>(r) * n, n), targets[r].sizes()));
    };
    return work;
  }

  WorkPtr reduce_scatter_async(Tensor& output, const std::vector<Tensor>& inputs, ReduceOp op) override {
    const char* name = "reduce_scatter";
    check_cpu(output, name);
    check_op_dtype(op, output.dtype(), name);
    check_list(inputs, output, name);
    DType wire = wire_dtype(output.dtype());
    Tensor send;
    {
      NoGradGuard no_grad;
      std::vector<Tensor> flat;
      for (const Tensor& t : inputs) flat.push_back(reshape(t.detach(), {t.numel()}));
      send = contiguous(to(cat(flat, 0), wire));
    }
    Tensor recv = empty({output.numel()}, wire);
    int n = checked_count(output.numel(), name);
    MPI_Comm comm = comm_;
    const int world = size_;
    auto work = rt_.submit(name, [=] {
      check_mpi(MPI_Reduce_scatter_block(send.data_ptr(), recv.data_ptr(), n, mpi_type(wire), mpi_op(op, wire),
                                         comm),
                name);
      if (op == ReduceOp::Avg) divide_in_place(recv.data_ptr(), n, wire, world);
    });
    Tensor target = output.detach();
    work->finalize = [recv, target]() mutable { copy_(target, reshape(recv, target.sizes())); };
    return work;
  }

  WorkPtr barrier_async() override {
    MPI_Comm comm = comm_;
    return rt_.submit("barrier", [comm] { check_mpi(MPI_Barrier(comm), "barrier"); });
  }

 private:
  // A list with one tensor per rank, each shaped and typed like `like`, all on the CPU.
  void check_list(const std::vector<Tensor>& list, const Tensor& like, const char* name) const {
    check_rank_list(list, like, size_, name);
    for (const Tensor& t : list) check_cpu(t, name);
  }

  MpiRuntime& rt_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
};

}  // namespace

ProcessGroupPtr make_process_group_mpi() { return std::make_shared<ProcessGroupMPI>(); }

#endif  // BIGMODEL_WITH_MPI

}  // namespace bigmodel::distributed
