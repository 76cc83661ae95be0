// CUDA device discovery. cudart is linked statically, so on a machine without a driver
// cudaGetDeviceCount fails and bigmodel reports zero devices instead of failing to load.
#include <cuda_runtime.h>

#include "core/cuda_info.h"

namespace bigmodel::cuda {

int device_count() {
  // Asked once: the answer cannot change within a process, and every allocation checks it.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the "no driver" error so later calls start clean
      return 0;
    }
    return n;
  }();
  return count;
}

bool built_with_cuda() { return true; }

}  // namespace bigmodel::cuda
