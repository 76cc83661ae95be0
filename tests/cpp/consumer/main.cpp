// Uses the installed C++ API: a tiny least-squares fit with autograd. Exits 0 on success.
#include <bigmodel/bigmodel.h>

#include <cmath>
#include <cstdio>

int main() {
  using namespace bigmodel;
  manual_seed(0);
  Tensor x = randn({64, 3});
  Tensor true_w = from_vector<float>({1.5f, -2.0f, 0.5f}, {3, 1});
  Tensor y = matmul(x, true_w);
  Tensor w = zeros({3, 1});
  w.set_requires_grad(true);
  for (int step = 0; step < 200; ++step) {
    Tensor loss = mean(mul(sub(matmul(x, w), y), sub(matmul(x, w), y)));
    loss.backward();
    NoGradGuard no_grad;
    Tensor g = w.grad();
    sub_(w, mul(g, Scalar(0.1)));
    zero_(g);
  }
  const float* p = w.data<float>();
  std::printf("w = [%.3f, %.3f, %.3f]\n", p[0], p[1], p[2]);
  bool ok = std::abs(p[0] - 1.5f) < 1e-2f && std::abs(p[1] + 2.0f) < 1e-2f && std::abs(p[2] - 0.5f) < 1e-2f;
  try {
    matmul(zeros({2, 3}), zeros({4, 5}));
    ok = false;
  } catch (const ShapeError& e) {
    std::printf("caught: %s\n", e.what());
  }
  return ok ? 0 : 1;
}
