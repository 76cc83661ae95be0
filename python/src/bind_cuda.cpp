// Python bindings: the bm.cuda runtime (devices, streams, events, synchronisation, the
// caching allocator's statistics), the CPU allocator's statistics and block cache (_C._cpu,
// wrapped by python/bigmodel/cpu.py), bm.memory_stats(device) for CPU and CUDA, and the
// Tensor methods that move data (.cuda(non_blocking=...), .record_stream).
#include "common.h"
#include "core/allocator.h"
#include "core/cuda_info.h"
#include "core/ops/view.h"

namespace bigmodel::python {
namespace {

int device_index(const py::object& d) {
  if (d.is_none()) return -1;
  if (py::isinstance<py::int_>(d)) return d.cast<int>();
  Device dev = device_from(d, Device(DeviceType::CUDA, 0));
  BM_CHECK_VALUE(dev.is_cuda(), "cuda", "expected a CUDA device, got ", dev.str());
  // "cuda" without an index means the current device.
  if (py::isinstance<py::str>(d) && d.cast<std::string>() == "cuda") return -1;
  return dev.index;
}

py::dict cuda_stats_dict(const cuda::MemoryStats& s) {
  py::dict d;
  d["allocated_bytes"] = s.allocated_bytes;
  d["requested_bytes"] = s.requested_bytes;
  d["reserved_bytes"] = s.reserved_bytes;
  d["peak_allocated_bytes"] = s.peak_allocated_bytes;
  d["peak_reserved_bytes"] = s.peak_reserved_bytes;
  d["inactive_split_bytes"] = s.inactive_split_bytes;
  d["fragmentation"] = s.fragmentation();
  d["num_allocs"] = s.num_allocs;
  d["num_frees"] = s.num_frees;
  d["num_segments"] = s.num_segments;
  d["num_alloc_retries"] = s.num_alloc_retries;
  d["num_ooms"] = s.num_ooms;
  return d;
}

// The CPU allocator's figures under bm.cuda.memory_stats()'s key names where the meaning is
// the same. allocated_bytes counts requested sizes (the CPU allocator does not track its
// rounding); reserved_bytes is what the allocator holds for tensors: live plus cached idle.
py::dict cpu_stats_dict(const CpuMemoryStats& s) {
  py::dict d;
  d["allocated_bytes"] = s.allocated_bytes;
  d["peak_allocated_bytes"] = s.peak_allocated_bytes;
  d["reserved_bytes"] = s.allocated_bytes + s.cached_bytes;
  d["cached_bytes"] = s.cached_bytes;
  d["num_allocs"] = s.num_allocs;
  d["num_frees"] = s.num_frees;
  d["cache_hits"] = s.cache_hits;
  d["cache_enabled"] = cpu_cache_enabled();
  return d;
}

// Python's Event owns its CUDA event; shared so Python's refcounting decides its lifetime.
using EventPtr = std::shared_ptr<cuda::Event>;

}  // namespace

void bind_cuda(py::module_& m, py::class_<Tensor>& cls) {
  py::module_ c = m.def_submodule("cuda", "CUDA runtime: devices, streams, events, memory");
  c.def("is_available", &cuda::is_available);
  c.def("device_count", &cuda::device_count);
  c.def("built_with_cuda", &cuda::built_with_cuda);
  c.def("current_device", &cuda::current_device);
  c.def("set_device", [](py::object d) {
    int i = device_index(d);
    cuda::set_device(i < 0 ? 0 : i);
  });
  c.def("synchronize", [](py::object d) {
    int i = device_index(d);
    py::gil_scoped_release nogil;
    cuda::synchronize(i);
  }, py::arg("device") = py::none());

  py::class_<cuda::Stream>(c, "Stream")
      .def(py::init([](py::object d, int priority) { return cuda::create_stream(device_index(d), priority); }),
           py::arg("device") = py::none(), py::arg("priority") = 0)
      .def_property_readonly("device", [](const cuda::Stream& s) { return Device(DeviceType::CUDA, s.device); })
      .def_property_readonly("cuda_stream", [](const cuda::Stream& s) { return reinterpret_cast<uintptr_t>(s.handle); })
      .def("synchronize", [](const cuda::Stream& s) {
        py::gil_scoped_release nogil;
        cuda::stream_synchronize(s);
      })
      .def("query", &cuda::stream_query)
      .def("wait_event", [](const cuda::Stream& s, const EventPtr& e) { e->wait(s); })
      .def("wait_stream", [](const cuda::Stream& s, const cuda::Stream& other) {
        cuda::Event e(false, other.device);  // s waits for everything queued on `other` so far
        e.record(other);
        e.wait(s);
      })
      .def("record_event", [](const cuda::Stream& s, py::object ev) {
        EventPtr e = ev.is_none() ? std::make_shared<cuda::Event>(false, s.device) : ev.cast<EventPtr>();
        e->record(s);
        return e;
      }, py::arg("event") = py::none())
      .def("__eq__", [](const cuda::Stream& a, const cuda::Stream& b) { return a == b; })
      .def("__hash__", [](const cuda::Stream& s) { return std::hash<void*>()(s.handle) ^ static_cast<size_t>(s.device); })
      .def("__repr__", [](const cuda::Stream& s) {
        return str_cat("<bigmodel.cuda.Stream device=cuda:", s.device, " cuda_stream=0x", std::hex,
                       reinterpret_cast<uintptr_t>(s.handle), ">");
      });

  py::class_<cuda::Event, EventPtr>(c, "Event")
      .def(py::init([](bool enable_timing) { return std::make_shared<cuda::Event>(enable_timing, -1); }),
           py::arg("enable_timing") = false)
      .def("record", [](cuda::Event& e, py::object s) {
        e.record(s.is_none() ? cuda::current_stream(e.device()) : s.cast<cuda::Stream>());
      }, py::arg("stream") = py::none())
      .def("wait", [](const cuda::Event& e, py::object s) {
        e.wait(s.is_none() ? cuda::current_stream(e.device()) : s.cast<cuda::Stream>());
      }, py::arg("stream") = py::none())
      .def("synchronize", [](const cuda::Event& e) {
        py::gil_scoped_release nogil;
        e.synchronize();
      })
      .def("query", &cuda::Event::query)
      .def("elapsed_time", &cuda::Event::elapsed_ms, py::arg("end_event"));

  c.def("current_stream", [](py::object d) { return cuda::current_stream(device_index(d)); },
        py::arg("device") = py::none());
  c.def("default_stream", [](py::object d) { return cuda::default_stream(device_index(d)); },
        py::arg("device") = py::none());
  c.def("set_stream", &cuda::set_current_stream);

  c.def("memory_stats", [](py::object d) { return cuda_stats_dict(cuda::memory_stats(device_index(d))); },
        py::arg("device") = py::none());
  c.def("memory_allocated", [](py::object d) { return cuda::memory_stats(device_index(d)).allocated_bytes; },
        py::arg("device") = py::none());
  c.def("max_memory_allocated", [](py::object d) { return cuda::memory_stats(device_index(d)).peak_allocated_bytes; },
        py::arg("device") = py::none());
  c.def("memory_reserved", [](py::object d) { return cuda::memory_stats(device_index(d)).reserved_bytes; },
        py::arg("device") = py::none());
  c.def("max_memory_reserved", [](py::object d) { return cuda::memory_stats(device_index(d)).peak_reserved_bytes; },
        py::arg("device") = py::none());
  c.def("reset_peak_memory_stats", [](py::object d) { cuda::reset_peak_memory_stats(device_index(d)); },
        py::arg("device") = py::none());
  c.def("empty_cache", &cuda::empty_cache);
  c.def("sync_debug_enabled", &cuda::sync_debug_enabled);

  // bm.cpu (python/bigmodel/cpu.py): the CPU allocator's figures and its large-block cache.
  py::module_ cpum = m.def_submodule("_cpu", "CPU allocator: statistics and the large-block cache");
  cpum.def("memory_stats", [] { return cpu_stats_dict(cpu_memory_stats()); });
  cpum.def("reset_peak_memory_stats", &reset_cpu_peak_memory_stats);
  cpum.def("empty_cache", &cpu_empty_cache);
  cpum.def("cache_enabled", &cpu_cache_enabled);
  cpum.def("set_cache_enabled", &set_cpu_cache_enabled, py::arg("enabled"));

  // bm.memory_stats("cpu") / ("cuda[:N]"): live and peak bytes of a device's allocator.
  m.def("memory_stats", [](py::object d) {
    Device dev = device_from(d, Device());
    if (dev.is_cuda()) return cuda_stats_dict(cuda::memory_stats(dev.index));
    return cpu_stats_dict(cpu_memory_stats());
  }, py::arg("device") = "cpu");
  m.def("reset_peak_memory_stats", [](py::object d) {
    Device dev = device_from(d, Device());
    if (dev.is_cuda()) cuda::reset_peak_memory_stats(dev.index);
    else reset_cpu_peak_memory_stats();
  }, py::arg("device") = "cpu");

  // Tensor methods. bind_tensor's .cuda(device) comes first; this overload adds non_blocking.
  cls.def("cuda", [](const Tensor& t, py::object d, bool non_blocking) {
    return to(t, device_from(d, Device(DeviceType::CUDA, cuda::is_available() ? cuda::current_device() : 0)), t.dtype(),
              non_blocking);
  }, py::arg("device") = py::none(), py::arg("non_blocking") = false);
  cls.def("record_stream", [](const Tensor& t, const cuda::Stream& s) {
    BM_CHECK_DEVICE(t.device().is_cuda() && t.device().index == s.device, "record_stream", "tensor on ",
                    t.device().str(), " and stream on cuda:", s.device);
    cuda::record_stream(t.storage()->data(), s);
  });
}

}  // namespace bigmodel::python
