// C++ bench: bigmodel::matmul against a direct OpenBLAS cblas_sgemm call on the same
// matrices, float32, several sizes. The ratio is bigmodel's overhead over raw BLAS
// (shape checks, allocation, dispatch, stride analysis). Run: build/bench_gemm
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/ops/creation.h"
#include "core/ops/linalg.h"
#include "core/random.h"

using namespace bigmodel;

namespace {

template <typename F>
double median_ms(F&& fn, int repeat) {
  fn();  // warm-up
  std::vector<double> t;
  for (int i = 0; i < repeat; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main() {
  manual_seed(0);
  std::printf("%-6s %12s %12s %9s %10s\n", "n", "bigmodel ms", "sgemm ms", "ratio", "GFLOP/s");
  for (int64_t n : {64, 256, 512, 1024}) {
    Tensor a = randn({n, n}), b = randn({n, n});
    std::vector<float> c(n * n);
    const int repeat = n <= 256 ? 200 : 15;
    double ours = median_ms([&] { matmul(a, b); }, repeat);
    double blas = median_ms([&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data<float>(), n,
                  b.data<float>(), n, 0.0f, c.data(), n);
    }, repeat);
    std::printf("%-6lld %12.3f %12.3f %9.2f %10.1f\n", static_cast<long long>(n), ours, blas, ours / blas,
                2.0 * n * n * n / (ours * 1e6));
  }
  return 0;
}
