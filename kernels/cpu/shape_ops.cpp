// CPU kernels for shape ops that move or mask elements without arithmetic: triangle
// masking (tril/triu) and flip. Both depend only on the element size, not the dtype.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/ops/shape_ops.h"

namespace bigmodel::cpu {
namespace {

void triangle_cpu(const Tensor& out, int64_t diagonal, bool upper) {
  const int64_t rows = out.size(-2), cols = out.size(-1);
  if (rows == 0 || cols == 0) return;
  const int64_t mats = out.numel() / (rows * cols);
  const size_t item = out.itemsize();
  char* base = static_cast<char*>(out.data_ptr());
#pragma omp parallel for schedule(static) if (out.numel() > 32768)
  for (int64_t m = 0; m < mats; ++m) {
    for (int64_t i = 0; i < rows; ++i) {
      char* row = base + ((m * rows + i) * cols) * item;
      // Kept columns: j >= i + diagonal (upper) or j <= i + diagonal (lower); all-zero
      // bits are zero for every dtype, so memset clears the rest.
      const int64_t edge = i + diagonal;
      if (upper) {
        const int64_t stop = std::min(std::max<int64_t>(edge, 0), cols);
        std::memset(row, 0, stop * item);
      } else {
        const int64_t start = std::min(std::max<int64_t>(edge + 1, 0), cols);
        std::memset(row + start * item, 0, (cols - start) * item);
      }
    }
  }
}

template <typename Word>
void flip_words(const Tensor& out, const Tensor& src, const std::vector<bool>& flip) {
  const int64_t nd = src.dim(), total = out.numel();
  // Reading src with negated strides from its far end walks flipped dims backwards.
  int64_t start = 0;
  std::vector<int64_t> stride(nd);
  for (int64_t d = 0; d < nd; ++d) {
    stride[d] = flip[d] ? -src.stride(d) : src.stride(d);
    if (flip[d]) start += (src.size(d) - 1) * src.stride(d);
  }
  const Word* in = static_cast<const Word*>(src.data_ptr()) + start;
  Word* o = static_cast<Word*>(out.data_ptr());
  if (nd == 0) {
    if (total == 1) o[0] = in[0];
    return;
  }
  const int64_t inner = src.size(nd - 1), inner_stride = stride[nd - 1];
  std::vector<int64_t> idx(nd, 0);
  int64_t off = 0;
  for (int64_t pos = 0; pos < total; pos += inner) {
    for (int64_t j = 0; j < inner; ++j) o[pos + j] = in[off + j * inner_stride];
    for (int64_t d = nd - 2; d >= 0; --d) {  // odometer over the outer dims
      off += stride[d];
      if (++idx[d] < src.size(d)) break;
      off -= stride[d] * src.size(d);
      idx[d] = 0;
    }
  }
}

void flip_cpu(const Tensor& out, const Tensor& src, const std::vector<bool>& flip) {
  if (out.numel() == 0) return;
  switch (src.itemsize()) {
    case 1: flip_words<uint8_t>(out, src, flip); break;
    case 2: flip_words<uint16_t>(out, src, flip); break;
    case 4: flip_words<uint32_t>(out, src, flip); break;
    case 8: flip_words<uint64_t>(out, src, flip); break;
    default: throw DTypeError(str_cat("[flip] unsupported element size ", src.itemsize()));
  }
}

}  // namespace

BM_REGISTER_KERNEL(triangle_kernel, CPU, &triangle_cpu);
BM_REGISTER_KERNEL(flip_kernel, CPU, &flip_cpu);

}  // namespace bigmodel::cpu
