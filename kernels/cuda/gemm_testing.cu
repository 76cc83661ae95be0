// Raw device memory helpers of gemm_testing.h (tests and benches of the GEMM kernels).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_testing.h"

namespace bigmodel::cuda::testing {

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  BM_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}
void device_free(void* p) noexcept {
  if (p) cudaFree(p);  // errors at teardown are not worth a throw from a destructor
}
void copy_to_device(void* dst, const void* src, size_t bytes) {
  BM_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  BM_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
void device_memset(void* p, int byte, size_t bytes) { BM_CUDA_CHECK(cudaMemset(p, byte, bytes)); }
void device_synchronize() {
  BM_CUDA_CHECK(cudaDeviceSynchronize());
  BM_CUDA_CHECK(cudaGetLastError());
}

}  // namespace bigmodel::cuda::testing
