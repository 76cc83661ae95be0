// Indexing family through the C++ API: TensorIndex reads (views vs copies) and writes,
// gather/scatter_add/index_select/embedding values and gradients, and bad indices.
#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/index.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"

using namespace bigmodel;
using indexing::Ellipsis;
using indexing::None;
using indexing::Slice;

namespace {

template <typename T>
std::vector<T> values(const Tensor& t) {
  Tensor c = contiguous(t.detach());
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

// 0.5, 1.5, 2.5, ... in the given shape.
Tensor ramp(const Shape& shape) {
  std::vector<float> v(shape_numel(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) + 0.5f;
  return from_vector<float>(v, shape);
}

Tensor longs(const std::vector<int64_t>& v, const Shape& shape) { return from_vector<int64_t>(v, shape); }

}  // namespace

TEST(Index, BasicIndicesGiveViews) {
  Tensor x = ramp({2, 3, 4});
  Tensor v = index(x, {1, Slice(std::nullopt, std::nullopt, 2), None, Ellipsis});
  EXPECT_EQ(v.sizes(), (Shape{2, 1, 4}));
  EXPECT_EQ(v.storage(), x.storage());
  EXPECT_EQ(values<float>(v)[0], 12.5f);
  EXPECT_EQ(values<float>(v)[4], 20.5f);  // x[1, 2, 0]
  index_put_(x, {1, Slice(1, 3), -1}, Scalar(-7.0));
  EXPECT_EQ(values<float>(x)[12 + 4 + 3], -7.0f);
  EXPECT_EQ(values<float>(x)[12 + 8 + 3], -7.0f);
  EXPECT_EQ(values<float>(x)[12 + 3], 15.5f);  // untouched
}

TEST(Index, AdvancedIndexCopiesAndPlacesDims) {
  Tensor x = ramp({2, 3, 4});
  Tensor i = longs({2, 0, 2}, {3});
  Tensor a = index(x, {Slice(), i});  // adjacent: [2, 3(idx), 4]
  EXPECT_EQ(a.sizes(), (Shape{2, 3, 4}));
  EXPECT_NE(a.storage(), x.storage());
  EXPECT_EQ(values<float>(a)[4], 0.5f);  // x[0, 0, 0]
  Tensor j = longs({3, 1, 0}, {3});
  Tensor b = index(x, {longs({1, 0, 1}, {3}), Slice(), j});  // separated
  EXPECT_EQ(b.sizes(), (Shape{3, 3}));  // broadcast dims first, then the sliced dim
  EXPECT_EQ(values<float>(b)[0], 12.5f + 3);  // x[1, 0, 3]
  EXPECT_EQ(values<float>(b)[3 + 2], 0.5f + 4 * 2 + 1);  // x[0, 2, 1]
}

TEST(Index, IndexPutAccumulatesRepeatedIndices) {
  Tensor x = zeros({4});
  advanced_index_put_(x, {longs({1, 1, 3}, {3})}, from_vector<float>({1, 2, 4}, {3}), true);
  EXPECT_EQ(values<float>(x), (std::vector<float>{0, 3, 0, 4}));
}

TEST(Index, GatherScatterAddRoundTrip) {
  Tensor x = ramp({3, 2});
  Tensor idx = longs({2, 0, 2, 2}, {2, 2});
  Tensor g = gather(x, 0, idx);
  EXPECT_EQ(values<float>(g), (std::vector<float>{4.5f, 1.5f, 4.5f, 5.5f}));
  Tensor acc = scatter_add(zeros({3, 2}), 0, idx, ones({2, 2}));
  EXPECT_EQ(values<float>(acc), (std::vector<float>{0, 1, 0, 0, 2, 1}));
}

TEST(Index, EmbeddingGradientSkipsPaddingAndAddsRepeats) {
  Tensor w = ramp({4, 2});
  w.set_requires_grad(true);
  Tensor out = embedding(w, longs({3, 1, 3, 0}, {2, 2}), int64_t{0});
  EXPECT_EQ(out.sizes(), (Shape{2, 2, 2}));
  EXPECT_EQ(values<float>(out)[0], 6.5f);
  sum(out).backward();
  EXPECT_EQ(values<float>(w.grad()), (std::vector<float>{0, 0, 1, 1, 0, 0, 2, 2}));
}

TEST(Index, GradThroughAdvancedIndexAddsRepeats) {
  Tensor x = ramp({3});
  x.set_requires_grad(true);
  Tensor y = index(x, {longs({0, 2, 0, 0}, {4})});
  sum(y).backward();
  EXPECT_EQ(values<float>(x.grad()), (std::vector<float>{3, 0, 1}));
}

TEST(Index, BadIndicesRaise) {
  Tensor x = ramp({3, 2});
  EXPECT_THROW(index(x, {5}), IndexError);
  EXPECT_THROW(index(x, {0, 0, 0}), IndexError);
  EXPECT_THROW(index(x, {longs({3}, {1})}), IndexError);
  EXPECT_THROW(index(x, {zeros({2})}), IndexError);  // float index tensor
  EXPECT_THROW(index(x, {Slice(0, 2, -1)}), ValueError);
  EXPECT_THROW(gather(x, 0, zeros({1, 1})), DTypeError);
  EXPECT_THROW(gather(x, 1, longs({2}, {1, 1})), IndexError);
  EXPECT_THROW(index_select(x, 0, longs({-1}, {1})), IndexError);
  try {
    index(x, {5});
    FAIL();
  } catch (const IndexError& e) {
    EXPECT_STREQ(e.what(), "[index] index 5 is out of bounds for dimension 0 with size 3");
  }
}
