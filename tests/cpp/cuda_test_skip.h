// Shared by the cuda tier's C++ tests: SKIP_WITHOUT_GPU() skips a test, printing why, where
// no GPU is visible (every machine without one, CI included).
#pragma once
#include <gtest/gtest.h>

#include "core/cuda_info.h"

#define SKIP_WITHOUT_GPU()                                                                    \
  if (!::bigmodel::cuda::is_available())                                                      \
  GTEST_SKIP() << "no CUDA GPU visible (built_with_cuda=" << ::bigmodel::cuda::built_with_cuda() \
               << ")"
