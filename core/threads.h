// The number of CPU threads the OpenMP-parallel kernels use (torch.set_num_threads /
// get_num_threads). Affects the calling thread's later parallel regions.
#pragma once

namespace bigmodel {

void set_num_threads(int n);
int get_num_threads();

}  // namespace bigmodel
