// Random generator and factories: Philox known answers, the documented stream layout,
// determinism and state restore, rough statistics, ranges and eye.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/ops/creation.h"
#include "core/ops/view.h"
#include "core/random.h"

using namespace bigmodel;

namespace {

template <typename T>
std::vector<T> values(const Tensor& t) {
  Tensor c = contiguous(t);
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

}  // namespace

// Random123's kat_vectors for philox4x32 with 10 rounds.
TEST(Philox, KnownAnswers) {
  struct Kat {
    philox::Words4 ctr;
    uint32_t k0, k1;
    philox::Words4 expect;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const Kat& k : kats) {
    philox::Words4 got = philox::philox4x32_10(k.ctr, k.k0, k.k1);
    for (int j = 0; j < 4; ++j) EXPECT_EQ(got.w[j], k.expect.w[j]) << "word " << j;
  }
}

// rand(float32) element i is the top 24 bits of word i%4 of block offset + i/4.
TEST(Philox, StreamLayoutUniformFloat) {
  Generator gen(0x1234567890abcdefull);
  gen.reserve(7);  // a nonzero starting offset
  Tensor t = rand({2, 50001}, DType::Float32, Device(), &gen);  // large enough for the OpenMP path
  EXPECT_EQ(gen.offset(), 7u + (100002u + 3u) / 4u);
  std::vector<float> v = values<float>(t);
  for (int64_t i : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{77777}, int64_t{100001}}) {
    philox::Words4 w = philox::block_words(0x1234567890abcdefull, 7 + i / 4);
    EXPECT_EQ(v[i], static_cast<float>(w.w[i % 4] >> 8) / 16777216.0f) << i;
  }
}

TEST(Philox, StreamLayoutRandintAndDouble) {
  Generator gen(99);
  Tensor r = randint(-5, 1000, {9}, DType::Int64, Device(), &gen);
  Tensor d = rand({3}, DType::Float64, Device(), &gen);
  std::vector<int64_t> rv = values<int64_t>(r);
  for (int64_t i = 0; i < 9; ++i) {
    philox::Words4 w = philox::block_words(99, i / 2);
    uint64_t x = philox::bits64(w.w[2 * (i % 2)], w.w[2 * (i % 2) + 1]);
    EXPECT_EQ(rv[i], -5 + static_cast<int64_t>(x % 1005)) << i;
  }
  std::vector<double> dv = values<double>(d);
  for (int64_t i = 0; i < 3; ++i) {
    philox::Words4 w = philox::block_words(99, 5 + i / 2);  // randint used blocks 0..4
    EXPECT_EQ(dv[i], philox::uniform_double(w.w[2 * (i % 2)], w.w[2 * (i % 2) + 1])) << i;
  }
}

TEST(Random, SeedDeterminismAndStateRestore) {
  manual_seed(42);
  std::vector<float> a = values<float>(randn({1000}));
  manual_seed(42);
  std::vector<float> b = values<float>(randn({1000}));
  EXPECT_EQ(a, b);
  manual_seed(43);
  EXPECT_NE(values<float>(randn({1000})), a);

  manual_seed(7);
  rand({13});
  Tensor state = get_rng_state();
  std::vector<float> next = values<float>(rand({100}));
  rand({50});
  set_rng_state(state);
  EXPECT_EQ(values<float>(rand({100})), next);
  EXPECT_THROW(set_rng_state(zeros({3}, DType::Int64)), ValueError);
}

TEST(Random, UniformAndNormalStatistics) {
  Generator gen(2024);
  const int64_t n = 100000;
  for (DType dt : {DType::Float32, DType::Float64}) {
    std::vector<double> u = values<double>(to(rand({n}, dt, Device(), &gen), DType::Float64));
    double mean = 0, lo = 1, hi = 0;
    for (double x : u) { mean += x; lo = std::min(lo, x); hi = std::max(hi, x); }
    mean /= n;
    EXPECT_GE(lo, 0.0);
    EXPECT_LT(hi, 1.0);
    EXPECT_NEAR(mean, 0.5, 5 * std::sqrt(1.0 / 12 / n));

    std::vector<double> z = values<double>(to(randn({n}, dt, Device(), &gen), DType::Float64));
    double m = 0, m2 = 0;
    for (double x : z) { m += x; m2 += x * x; }
    m /= n;
    const double var = m2 / n - m * m;
    EXPECT_NEAR(m, 0.0, 5 / std::sqrt(static_cast<double>(n)));
    EXPECT_NEAR(var, 1.0, 5 * std::sqrt(2.0 / n));
  }
}

TEST(Random, InplaceOnStridedView) {
  Generator g1(5), g2(5);
  Tensor base = zeros({6, 8});
  Tensor view = transpose(base, 0, 1);  // non-contiguous
  uniform_(view, 2.0, 3.0, &g1);
  Tensor ref = rand({8, 6}, DType::Float32, Device(), &g2);
  std::vector<float> got = values<float>(view), expect = values<float>(ref);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_FLOAT_EQ(got[i], 2.0f + expect[i]) << i;
}

TEST(Random, RandintRandpermBernoulli) {
  Generator gen(3);
  std::vector<int64_t> r = values<int64_t>(randint(-3, 4, {5000}, DType::Int64, Device(), &gen));
  std::vector<int> hits(7, 0);
  for (int64_t v : r) {
    ASSERT_GE(v, -3);
    ASSERT_LT(v, 4);
    ++hits[v + 3];
  }
  for (int h : hits) EXPECT_GT(h, 500);

  std::vector<int64_t> p = values<int64_t>(randperm(1000, DType::Int64, Device(), &gen));
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) EXPECT_EQ(sorted[i], i);
  EXPECT_NE(p, sorted);

  Tensor mask = dropout_mask({20000}, 0.25, DType::Float32, Device(), &gen);
  int kept = 0;
  for (float v : values<float>(mask)) {
    ASSERT_TRUE(v == 0.0f || std::fabs(v - 1.0f / 0.75f) < 1e-6f) << v;
    kept += v != 0.0f;
  }
  EXPECT_NEAR(kept / 20000.0, 0.75, 0.02);
}

TEST(Random, BadArguments) {
  Tensor i = zeros({3}, DType::Int64);
  EXPECT_THROW(uniform_(i), DTypeError);
  EXPECT_THROW(rand({2, -1}), ValueError);
  EXPECT_THROW(randint(5, 5, {2}), ValueError);
  EXPECT_THROW(randint(0, int64_t{1} << 40, {2}, DType::Int32), ValueError);
  EXPECT_THROW(normal_(i), DTypeError);
  Tensor f = zeros({3});
  EXPECT_THROW(normal_(f, 0.0, -1.0), ValueError);
  EXPECT_THROW(uniform_(f, 2.0, 1.0), ValueError);
}

TEST(Range, ArangeLinspaceEye) {
  EXPECT_EQ(values<int64_t>(arange(Scalar(int64_t{5}))), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(values<int64_t>(arange(Scalar(int64_t{10}), Scalar(int64_t{0}), Scalar(int64_t{-3}))),
            (std::vector<int64_t>{10, 7, 4, 1}));
  Tensor f = arange(Scalar(0.0), Scalar(1.0), Scalar(0.25));
  EXPECT_EQ(f.dtype(), DType::Float32);
  EXPECT_EQ(values<float>(f), (std::vector<float>{0.0f, 0.25f, 0.5f, 0.75f}));
  EXPECT_THROW(arange(Scalar(int64_t{0}), Scalar(int64_t{5}), Scalar(int64_t{0})), ValueError);
  EXPECT_THROW(arange(Scalar(int64_t{5}), Scalar(int64_t{0}), Scalar(int64_t{1})), ValueError);

  std::vector<double> l = values<double>(linspace(-1.0, 2.0, 7, DType::Float64));
  ASSERT_EQ(l.size(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(l[i], -1.0 + 0.5 * i, 1e-15);
  EXPECT_EQ(l.front(), -1.0);
  EXPECT_EQ(l.back(), 2.0);
  EXPECT_THROW(linspace(0, 1, -1), ValueError);

  std::vector<float> e = values<float>(eye(2, 3));
  EXPECT_EQ(e, (std::vector<float>{1, 0, 0, 0, 1, 0}));
}
