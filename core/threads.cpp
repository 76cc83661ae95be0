// set_num_threads / get_num_threads over OpenMP (see threads.h).
#include "core/threads.h"

#include <omp.h>

#include "core/error.h"

namespace bigmodel {

void set_num_threads(int n) {
  BM_CHECK_VALUE(n > 0, "set_num_threads", "expected a positive number of threads, got ", n);
  omp_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace bigmodel
