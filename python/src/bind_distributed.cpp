// Python bindings for the distributed family: bigmodel._C._distributed holds the process
// group API (init/destroy, rank/size, collectives with async Work handles) that
// bigmodel.distributed wraps, plus the graph walk DDP uses to find unused parameters.
#include <unordered_set>

#include "distributed/process_group.h"
#include "python/src/common.h"

namespace bigmodel::python {

namespace dist = bigmodel::distributed;

namespace {

// Returns the Work for async_op=True, else waits (without the GIL) and returns None.
py::object finish(dist::WorkPtr work, bool async_op) {
  if (async_op) return py::cast(work);
  py::gil_scoped_release release;
  work->wait();
  return py::none();
}

// For each parameter: does the graph behind `outputs` reach its gradient accumulator?
std::vector<bool> params_reached(const std::vector<Tensor>& outputs, const std::vector<Tensor>& params) {
  std::unordered_set<const Node*> seen;
  std::vector<std::shared_ptr<Node>> stack;
  for (const Tensor& t : outputs)
    if (t.defined() && t.grad_fn()) stack.push_back(t.grad_fn());
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    if (!seen.insert(n.get()).second) continue;
    for (const Edge& e : n->next_edges)
      if (e.fn && !seen.count(e.fn.get())) stack.push_back(e.fn);
  }
  std::vector<bool> reached;
  for (const Tensor& p : params) {
    bool hit = false;
    if (p.defined() && p.impl_ptr()->autograd) {
      std::shared_ptr<Node> acc = p.impl_ptr()->autograd->grad_accumulator.lock();
      hit = acc && seen.count(acc.get());
    }
    reached.push_back(hit);
  }
  return reached;
}

}  // namespace

void bind_distributed(py::module_& m, py::class_<Tensor>& cls) {
  py::module_ d = m.def_submodule("_distributed", "process groups and collectives (see bigmodel.distributed)");

  py::enum_<dist::ReduceOp>(d, "ReduceOp")
      .value("SUM", dist::ReduceOp::Sum)
      .value("AVG", dist::ReduceOp::Avg)
      .value("MAX", dist::ReduceOp::Max)
      .value("MIN", dist::ReduceOp::Min);

  py::class_<dist::Work, dist::WorkPtr>(d, "Work")
      .def("wait", [](dist::Work& w) {
        py::gil_scoped_release release;
        w.wait();
        return true;
      })
      .def("is_completed", &dist::Work::is_completed);

  py::class_<dist::ProcessGroup, dist::ProcessGroupPtr>(d, "ProcessGroup")
      .def("rank", &dist::ProcessGroup::rank)
      .def("size", &dist::ProcessGroup::size)
      .def("local_rank", &dist::ProcessGroup::local_rank)
      .def("backend", &dist::ProcessGroup::backend);

  d.def("mpi_available", &dist::mpi_available);
  d.def("nccl_available", &dist::nccl_available);
  d.def("init_process_group", [](const std::string& backend, double timeout_seconds) {
    py::gil_scoped_release release;  // MPI start-up can take a moment
    return dist::init_process_group(backend, timeout_seconds);
  }, py::arg("backend") = "", py::arg("timeout_seconds") = -1.0);
  d.def("collective_timeout_seconds", &dist::collective_timeout_seconds);
  d.def("is_initialized", &dist::is_initialized);
  d.def("destroy_process_group", [] {
    py::gil_scoped_release release;
    dist::destroy_process_group();
  });
  d.def("default_group", [](const std::string& op) { return dist::default_group(op.c_str()); });

  d.def("all_reduce", [](Tensor t, dist::ReduceOp op, bool async_op) {
    return finish(dist::default_group("all_reduce")->all_reduce_async(t, op), async_op);
  }, py::arg("tensor"), py::arg("op") = dist::ReduceOp::Sum, py::arg("async_op") = false);
  d.def("broadcast", [](Tensor t, int src, bool async_op) {
    return finish(dist::default_group("broadcast")->broadcast_async(t, src), async_op);
  }, py::arg("tensor"), py::arg("src") = 0, py::arg("async_op") = false);
  d.def("all_gather", [](std::vector<Tensor> outs, const Tensor& in, bool async_op) {
    return finish(dist::default_group("all_gather")->all_gather_async(outs, in), async_op);
  }, py::arg("tensor_list"), py::arg("tensor"), py::arg("async_op") = false);
  d.def("reduce_scatter", [](Tensor out, const std::vector<Tensor>& ins, dist::ReduceOp op, bool async_op) {
    return finish(dist::default_group("reduce_scatter")->reduce_scatter_async(out, ins, op), async_op);
  }, py::arg("output"), py::arg("input_list"), py::arg("op") = dist::ReduceOp::Sum, py::arg("async_op") = false);
  d.def("barrier", [](bool async_op) {
    return finish(dist::default_group("barrier")->barrier_async(), async_op);
  }, py::arg("async_op") = false);
  d.def("_params_reached", &params_reached);
}

}  // namespace bigmodel::python
