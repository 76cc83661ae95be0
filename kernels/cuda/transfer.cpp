// Copies between devices, registered as transfer_kernel's CUDA entry. Host data is made
// contiguous on the CPU, device data on the GPU; dtype changes run on the GPU (copy_kernel)
// on whichever side is CUDA. Blocking copies wait for their stream; non_blocking ones stage
// host memory in pinned buffers (H2D: the source may change right after the call; D2H: the
// result lives in pinned memory and is valid after a synchronize).
#include <cstring>

#include "core/cuda/transfer.h"
#include "core/ops/copy_kernels.h"
#include "core/ops/view.h"
#include "kernels/cuda/cuda_allocator.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

// src (on a CUDA device) as a contiguous tensor of `dtype` on the same device.
Tensor contiguous_on_device(const Tensor& src, DType dtype) {
  if (src.is_contiguous() && src.dtype() == dtype) return src;
  Tensor tmp = Tensor::empty(src.sizes(), dtype, src.device());
  copy_kernel.get(src.device())(tmp, src);
  return tmp;
}

Tensor host_to_device(const Tensor& src, Device device, DType dtype, bool non_blocking) {
  check_device_index(device.index, "to");
  DeviceGuard guard(device.index);
  cudaStream_t stream = current_cuda_stream(device.index);
  Tensor host = contiguous(src);
  Tensor out = Tensor::empty(src.sizes(), dtype, device);
  Tensor staged = dtype == src.dtype() ? out : Tensor::empty(src.sizes(), src.dtype(), device);
  const size_t nbytes = host.nbytes();
  if (nbytes > 0) {
    if (non_blocking) {
      void* pinned = pinned_alloc(nbytes);
      std::memcpy(pinned, host.data_ptr(), nbytes);
      try {
        BM_CUDA_CHECK(cudaMemcpyAsync(staged.data_ptr(), pinned, nbytes, cudaMemcpyHostToDevice, stream));
        pinned_record_use(pinned, device.index, stream);
      } catch (...) {
        pinned_free(pinned);
        throw;
      }
      pinned_free(pinned);  // back to the cache; reused only after the copy is done
    } else {
      BM_CUDA_CHECK(cudaMemcpyAsync(staged.data_ptr(), host.data_ptr(), nbytes, cudaMemcpyHostToDevice, stream));
      BM_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
  }
  if (!staged.is_same(out)) copy_kernel.get(device)(out, staged);  // same stream: ordered
  return out;
}

Tensor device_to_host(const Tensor& src, DType dtype, bool non_blocking) {
  const int dev = src.device().index;
  check_device_index(dev, "to");
  DeviceGuard guard(dev);
  cudaStream_t stream = current_cuda_stream(dev);
  Tensor dsrc = contiguous_on_device(src, dtype);
  const size_t nbytes = dsrc.nbytes();
  if (non_blocking && nbytes > 0) {
    void* pinned = pinned_alloc(nbytes);
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::make_shared<Storage>(pinned, nbytes, Device(), [](void* p) { pinned_free(p); });
    impl->sizes = src.sizes();
    impl->strides = contiguous_strides(src.sizes());
    impl->dtype = dtype;
    Tensor out(impl);
    BM_CUDA_CHECK(cudaMemcpyAsync(pinned, dsrc.data_ptr(), nbytes, cudaMemcpyDeviceToHost, stream));
    pinned_record_use(pinned, dev, stream);
    return out;
  }
  Tensor out = Tensor::empty(src.sizes(), dtype, Device());
  if (nbytes > 0) {
    BM_CUDA_CHECK(cudaMemcpyAsync(out.data_ptr(), dsrc.data_ptr(), nbytes, cudaMemcpyDeviceToHost, stream));
    BM_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  return out;
}

Tensor device_to_device(const Tensor& src, Device device, DType dtype) {
  const int from = src.device().index, to_dev = device.index;
  check_device_index(from, "to");
  check_device_index(to_dev, "to");
  Tensor dsrc;
  {
    DeviceGuard guard(from);
    dsrc = contiguous_on_device(src, src.dtype());
  }
  DeviceGuard guard(to_dev);
  Tensor out = Tensor::empty(src.sizes(), dtype, device);
  Tensor staged = dtype == src.dtype() ? out : Tensor::empty(src.sizes(), src.dtype(), device);
  const size_t nbytes = dsrc.nbytes();
  if (nbytes > 0) {
    Stream src_stream = current_stream(from), dst_stream = current_stream(to_dev);
    Event produced(false, from);  // the copy starts after src's producers on its stream
    produced.record(src_stream);
    produced.wait(dst_stream);
    BM_CUDA_CHECK(cudaMemcpyPeerAsync(staged.data_ptr(), to_dev, dsrc.data_ptr(), from, nbytes,
                                      static_cast<cudaStream_t>(dst_stream.handle)));
    // dsrc's block may be reused on src_stream once freed: make that stream wait for the copy.
    Event copied(false, to_dev);
    copied.record(dst_stream);
    copied.wait(src_stream);
  }
  if (!staged.is_same(out)) copy_kernel.get(device)(out, staged);
  return out;
}

Tensor transfer_cuda(const Tensor& src_in, Device device, DType dtype, bool non_blocking) {
  Tensor src = src_in.detach();  // internal copies record no autograd; to() records one node
  if (src.device().is_cpu()) return host_to_device(src, device, dtype, non_blocking);
  if (device.is_cpu()) return device_to_host(src, dtype, non_blocking);
  return device_to_device(src, device, dtype);
}

}  // namespace

BM_REGISTER_KERNEL(transfer_kernel, CUDA, &transfer_cuda);

}  // namespace bigmodel::cuda
