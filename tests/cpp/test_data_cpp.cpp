// The C++ data layer (core/data): the IDX parser on valid and malformed bytes, gzip reading,
// TensorDataset, the DataLoader (batching, per-epoch seeded shuffling, drop_last, prefetch,
// exceptions carried to the consumer) and FashionMNIST when the dataset is installed.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bigmodel.h"

using namespace bigmodel;
using namespace bigmodel::data;

namespace {

using Bytes = std::vector<uint8_t>;

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

Bytes idx_header(uint8_t type, const std::vector<uint32_t>& dims) {
  Bytes b{0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) put_be32(b, d);
  return b;
}

std::vector<double> values(const Tensor& t) {
  Tensor c = contiguous(to(t, DType::Float64));
  const double* p = c.data<double>();
  return std::vector<double>(p, p + c.numel());
}

// Runs `f`, which must throw E whose message contains every fragment.
template <class E, class F>
void expect_throw_with(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one containing " << fragments.at(0);
  } catch (const E& e) {
    for (const std::string& frag : fragments)
      EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << "'" << e.what() << "' lacks '" << frag << "'";
  }
}

// A gzip member holding `data` in deflate "stored" blocks: valid gzip without needing zlib here.
uint32_t crc32(const Bytes& d) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t byte : d) {
    c ^= byte;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

Bytes gzip_stored(const Bytes& data) {
  Bytes g{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
  size_t at = 0;
  do {
    const size_t len = std::min<size_t>(data.size() - at, 65535);
    const bool last = at + len == data.size();
    g.push_back(last ? 1 : 0);
    g.push_back(static_cast<uint8_t>(len));
    g.push_back(static_cast<uint8_t>(len >> 8));
    g.push_back(static_cast<uint8_t>(~len));
    g.push_back(static_cast<uint8_t>(~len >> 8));
    g.insert(g.end(), data.begin() + at, data.begin() + at + len);
    at += len;
  } while (at < data.size());
  const uint32_t crc = crc32(data), size = static_cast<uint32_t>(data.size());
  for (int s = 0; s < 32; s += 8) g.push_back(static_cast<uint8_t>(crc >> s));
  for (int s = 0; s < 32; s += 8) g.push_back(static_cast<uint8_t>(size >> s));
  return g;
}

std::string write_temp(const Bytes& b, const std::string& suffix) {
  static std::atomic<int> counter{0};
  const std::string path = "/tmp/bm_test_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + suffix;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  EXPECT_NE(f, nullptr);
  std::fwrite(b.data(), 1, b.size(), f);
  std::fclose(f);
  return path;
}

}  // namespace

// ---- IDX ---------------------------------------------------------------------------------

TEST(DataIdx, ParsesEveryElementTypeAndRoundTrips) {
  Bytes u8 = idx_header(0x08, {2, 3});
  u8.insert(u8.end(), {0, 7, 255, 128, 1, 42});
  IdxArray a = parse_idx(u8);
  EXPECT_EQ(a.type, IdxType::UInt8);
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.numel(), 6);
  EXPECT_EQ(a.value(2), 255.0);
  EXPECT_EQ(serialize_idx(a), u8);
  Tensor t = idx_to_tensor(a, DType::Float32);
  EXPECT_EQ(t.sizes(), (Shape{2, 3}));
  EXPECT_EQ(values(t), (std::vector<double>{0, 7, 255, 128, 1, 42}));
  EXPECT_EQ(values(idx_to_tensor(a, DType::Int64)), values(t));

  Bytes i8 = idx_header(0x09, {2});
  i8.insert(i8.end(), {0xff, 0x80});
  EXPECT_EQ(values(idx_to_tensor(parse_idx(i8), DType::Int32)), (std::vector<double>{-1, -128}));

  Bytes i16 = idx_header(0x0B, {2});
  i16.insert(i16.end(), {0xff, 0xfe, 0x01, 0x00});
  EXPECT_EQ(values(idx_to_tensor(parse_idx(i16), DType::Int64)), (std::vector<double>{-2, 256}));

  Bytes i32 = idx_header(0x0C, {1, 1, 2});
  put_be32(i32, 0x80000000u);
  put_be32(i32, 70000);
  IdxArray b = parse_idx(i32);
  EXPECT_EQ(b.dims.size(), 3u);
  EXPECT_EQ(values(idx_to_tensor(b, DType::Float64)), (std::vector<double>{-2147483648.0, 70000}));

  Bytes f32 = idx_header(0x0D, {2});
  uint32_t bits;
  float fv = -1.5f;
  std::memcpy(&bits, &fv, 4);
  put_be32(f32, bits);
  fv = 0.25f;
  std::memcpy(&bits, &fv, 4);
  put_be32(f32, bits);
  EXPECT_EQ(values(idx_to_tensor(parse_idx(f32), DType::Float32)), (std::vector<double>{-1.5, 0.25}));

  Bytes f64 = idx_header(0x0E, {1});
  double dv = 3.141592653589793;
  uint64_t dbits;
  std::memcpy(&dbits, &dv, 8);
  put_be32(f64, static_cast<uint32_t>(dbits >> 32));
  put_be32(f64, static_cast<uint32_t>(dbits));
  EXPECT_EQ(parse_idx(f64).value(0), dv);
  EXPECT_EQ(serialize_idx(parse_idx(f64)), f64);
  EXPECT_EQ(values(idx_to_tensor(parse_idx(f64), DType::Int64)), (std::vector<double>{3}));
  // Floats that no integer dtype can hold are refused, not converted with undefined behaviour.
  Bytes big = idx_header(0x0D, {1});
  fv = 3e9f;
  std::memcpy(&bits, &fv, 4);
  put_be32(big, bits);
  expect_throw_with<ValueError>([&] { idx_to_tensor(parse_idx(big), DType::Int32); }, {"[idx] element 0", "int32"});
  EXPECT_EQ(values(idx_to_tensor(parse_idx(big), DType::Int64)), (std::vector<double>{3e9}));

  // A zero dim: no data, whatever the other dims say.
  IdxArray empty = parse_idx(idx_header(0x0E, {0, 0xFFFFFFFFu, 0xFFFFFFFFu}));
  EXPECT_EQ(empty.numel(), 0);
  EXPECT_TRUE(empty.data.empty());
}

TEST(DataIdx, MalformedInputRaisesValueErrorNamingTheProblem) {
  auto bad = [](const Bytes& b, const std::vector<std::string>& fragments) {
    std::vector<std::string> all{"[idx] "};
    all.insert(all.end(), fragments.begin(), fragments.end());
    expect_throw_with<ValueError>([&] { parse_idx(b.data(), b.size()); }, all);
  };
  bad({}, {"too short", "0 bytes"});
  bad({0, 0, 8}, {"too short"});
  bad({1, 0, 8, 1, 0, 0, 0, 0}, {"bad magic number 0x01000801"});
  bad({0, 0, 0x07, 1, 0, 0, 0, 1, 5}, {"unknown element type code 0x07"});
  bad({0, 0, 8, 0}, {"0 dimensions"});
  bad({0, 0, 8, 3, 0, 0, 0, 1, 0, 0}, {"truncated header", "3 dims need 16 header bytes, input has 10"});
  // dims product overflow: (2^32-1)^3 float64 elements.
  bad(idx_header(0x0E, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}), {"overflow", "[4294967295, 4294967295, 4294967295]"});
  // (2^32-1)^2 * 8 bytes exceeds 2^63 too.
  bad(idx_header(0x0E, {0xFFFFFFFFu, 0xFFFFFFFFu}), {"overflow"});
  Bytes short_data = idx_header(0x08, {2, 2});
  short_data.insert(short_data.end(), {1, 2, 3});
  bad(short_data, {"size mismatch", "need 4 data bytes, input has 3", "truncated"});
  Bytes long_data = idx_header(0x0C, {1});
  long_data.insert(long_data.end(), {1, 2, 3, 4, 5});
  bad(long_data, {"size mismatch", "int32", "need 4 data bytes, input has 5", "trailing"});
  bad(idx_header(0x08, {60000, 28, 28}), {"need 47040000 data bytes, input has 0"});
  EXPECT_THROW(parse_idx(nullptr, 4), ValueError);

  IdxArray inconsistent;
  inconsistent.dims = {3};
  inconsistent.data = {1, 2};
  EXPECT_THROW(serialize_idx(inconsistent), ValueError);
  EXPECT_THROW(idx_to_tensor(inconsistent, DType::Float32), ValueError);
}

TEST(DataIdx, ReadsPlainAndGzipFiles) {
  Bytes raw = idx_header(0x08, {3, 70000});  // > 64 KiB: several stored blocks
  for (int i = 0; i < 3 * 70000; ++i) raw.push_back(static_cast<uint8_t>((i * 7 + 3) % 251));
  const std::string plain = write_temp(raw, ".idx");
  EXPECT_EQ(read_idx_file(plain).data, Bytes(raw.begin() + 12, raw.end()));

  const Bytes gz = gzip_stored(raw);
  try {
    gunzip(gz.data(), gz.size(), "probe");
  } catch (const Error& e) {
    if (std::string(e.what()).find("zlib1g-dev") != std::string::npos) {
      std::remove(plain.c_str());
      GTEST_SKIP() << "bigmodel was built without zlib: " << e.what();
    }
    throw;
  }
  const std::string gz_path = write_temp(gz, ".gz");
  IdxArray a = read_idx_file(gz_path);
  EXPECT_EQ(a.dims, (std::vector<int64_t>{3, 70000}));
  EXPECT_EQ(a.data, Bytes(raw.begin() + 12, raw.end()));
  // Two concatenated members decompress to both contents.
  Bytes two = gzip_stored({1, 2, 3});
  const Bytes second = gzip_stored({4, 5});
  two.insert(two.end(), second.begin(), second.end());
  EXPECT_EQ(gunzip(two.data(), two.size(), "two"), (Bytes{1, 2, 3, 4, 5}));

  Bytes corrupt = gz;
  corrupt[corrupt.size() - 6] ^= 0x55;  // the CRC
  expect_throw_with<ValueError>([&] { gunzip(corrupt.data(), corrupt.size(), "c.gz"); }, {"[gzip] corrupt gzip data in c.gz"});
  const Bytes truncated(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2));
  expect_throw_with<ValueError>([&] { gunzip(truncated.data(), truncated.size(), "t.gz"); }, {"[gzip] t.gz is truncated"});
  Bytes garbage = gzip_stored({1});
  garbage.push_back(7);
  expect_throw_with<ValueError>([&] { gunzip(garbage.data(), garbage.size(), "g.gz"); }, {"garbage after the end"});
  expect_throw_with<ValueError>([&] { gunzip(gz.data(), gz.size(), "big.gz", 1000); }, {"more than 1000 bytes"});
  // A malformed IDX payload inside a good gzip names the file.
  Bytes bad_idx = idx_header(0x08, {5});
  const std::string bad_path = write_temp(gzip_stored(bad_idx), ".gz");
  expect_throw_with<ValueError>([&] { read_idx_file(bad_path); }, {"[idx] " + bad_path + ": size mismatch"});
  expect_throw_with<Error>([&] { read_idx_file("/nonexistent/x.gz"); }, {"[idx] cannot open /nonexistent/x.gz"});
  for (const std::string& p : {plain, gz_path, bad_path}) std::remove(p.c_str());
}

// ---- datasets and the loader ---------------------------------------------------------------

namespace {

// data[i] = [i, 10 i] (float32), target[i] = i (int64).
std::shared_ptr<TensorDataset> counting_dataset(int64_t n) {
  std::vector<float> d;
  std::vector<int64_t> t;
  for (int64_t i = 0; i < n; ++i) {
    d.push_back(static_cast<float>(i));
    d.push_back(static_cast<float>(10 * i));
    t.push_back(i);
  }
  return std::make_shared<TensorDataset>(from_vector<float>(d, {n, 2}), from_vector<int64_t>(t, {n}));
}

// The sample indices of each batch, read from the targets.
std::vector<std::vector<int64_t>> batches_of(DataLoader& loader) {
  std::vector<std::vector<int64_t>> out;
  for (const Example& b : loader) {
    std::vector<int64_t> ids;
    for (double v : values(b.target)) ids.push_back(static_cast<int64_t>(v));
    // The data rows must belong to the same samples.
    std::vector<double> d = values(b.data);
    EXPECT_EQ(b.data.size(0), static_cast<int64_t>(ids.size()));
    for (size_t r = 0; r < ids.size(); ++r) {
      EXPECT_EQ(d[2 * r], static_cast<double>(ids[r]));
      EXPECT_EQ(d[2 * r + 1], 10.0 * static_cast<double>(ids[r]));
    }
    out.push_back(ids);
  }
  return out;
}

// A dataset without get_batch (the per-sample path) that fails at `bad`.
class FailingDataset : public Dataset {
 public:
  FailingDataset(int64_t n, int64_t bad, bool std_error) : n_(n), bad_(bad), std_error_(std_error) {}
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override {
    if (i == bad_) {
      if (std_error_) throw std::runtime_error("disk on fire");
      throw ValueError("[FailingDataset] sample is corrupt");
    }
    return {full({3}, Scalar(static_cast<double>(i))), scalar_tensor(Scalar(i), DType::Int64)};
  }

 private:
  int64_t n_, bad_;
  bool std_error_;
};

}  // namespace

TEST(DataTensorDataset, IndexesAndChecksShapes) {
  auto ds = counting_dataset(5);
  EXPECT_EQ(ds->size(), 5);
  Example e = ds->get(3);
  EXPECT_EQ(values(e.data), (std::vector<double>{3, 30}));
  EXPECT_EQ(e.target.dim(), 0);
  EXPECT_EQ(e.target.item().to_int(), 3);
  EXPECT_EQ(ds->get(-1).target.item().to_int(), 4);
  expect_throw_with<IndexError>([&] { ds->get(5); }, {"[TensorDataset] index 5 is out of range for 5 samples"});
  EXPECT_THROW(ds->get(-6), IndexError);
  std::optional<Example> b = ds->get_batch({4, 0, -2});
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(values(b->target), (std::vector<double>{4, 0, 3}));
  EXPECT_EQ(b->data.sizes(), (Shape{3, 2}));
  EXPECT_THROW(ds->get_batch({1, 9}), IndexError);
  expect_throw_with<ShapeError>([] { TensorDataset(zeros({4, 2}), zeros({3})); }, {"size mismatch", "[4, 2], [3]"});
  EXPECT_THROW(TensorDataset(scalar_tensor(Scalar(1.0), DType::Float32)), ShapeError);
  TensorDataset unlabelled(ones({2, 3}));
  EXPECT_FALSE(unlabelled.get(1).target.defined());
  EXPECT_FALSE(collate({unlabelled.get(0), unlabelled.get(1)}).target.defined());
  EXPECT_THROW(collate({unlabelled.get(0), ds->get(0)}), ValueError);
}

TEST(DataLoader, BatchesInOrderWithAndWithoutDropLast) {
  auto ds = counting_dataset(10);
  DataLoader loader(ds, {/*batch_size=*/4});
  EXPECT_EQ(loader.size(), 3);
  EXPECT_EQ(batches_of(loader), (std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}));
  DataLoader dropping(ds, {4, false, /*drop_last=*/true});
  EXPECT_EQ(dropping.size(), 2);
  EXPECT_EQ(batches_of(dropping), (std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}}));
  DataLoader exact(ds, {5, false, true});
  EXPECT_EQ(batches_of(exact).size(), 2u);
  DataLoader empty(counting_dataset(0), {3});
  EXPECT_EQ(empty.size(), 0);
  EXPECT_TRUE(batches_of(empty).empty());
  DataLoader too_big(ds, {32, false, true});
  EXPECT_TRUE(batches_of(too_big).empty());
  // The per-sample path (no get_batch) collates to the same shapes.
  DataLoader per_sample(std::make_shared<FailingDataset>(5, -1, false), {2});
  int n = 0;
  for (const Example& b : per_sample) {
    EXPECT_EQ(b.data.size(1), 3);
    EXPECT_EQ(b.target.dtype(), DType::Int64);
    ++n;
  }
  EXPECT_EQ(n, 3);
  EXPECT_THROW(DataLoader(ds, {0}), ValueError);
  EXPECT_THROW(DataLoader(ds, {1, false, false, std::nullopt, -1}), ValueError);
  EXPECT_THROW(DataLoader(nullptr), ValueError);
}

TEST(DataLoader, ShuffleIsSeededPerEpoch) {
  auto ds = counting_dataset(50);
  DataLoaderOptions o{8, /*shuffle=*/true, false, /*seed=*/uint64_t{42}};
  DataLoader a(ds, o), b(ds, o);
  auto a0 = batches_of(a), a1 = batches_of(a), b0 = batches_of(b), b1 = batches_of(b);
  EXPECT_EQ(a0, b0);  // same seed, same epochs
  EXPECT_EQ(a1, b1);
  EXPECT_NE(a0, a1);  // a new permutation every epoch
  EXPECT_EQ(a.epoch(), 2);
  for (const auto& epoch : {a0, a1}) {
    std::multiset<int64_t> seen;
    for (const auto& batch : epoch) seen.insert(batch.begin(), batch.end());
    std::multiset<int64_t> all;
    for (int64_t i = 0; i < 50; ++i) all.insert(i);
    EXPECT_EQ(seen, all);  // a permutation: every sample once
  }
  std::vector<int64_t> identity(50);
  for (int64_t i = 0; i < 50; ++i) identity[static_cast<size_t>(i)] = i;
  EXPECT_NE(a.order(0), identity);
  EXPECT_EQ(a.order(1), b.order(1));
  // set_epoch replays an epoch; another seed gives another order.
  b.set_epoch(0);
  EXPECT_EQ(batches_of(b), a0);
  DataLoader c(ds, {8, true, false, uint64_t{43}});
  EXPECT_NE(batches_of(c), a0);
  // Without a seed, manual_seed fixes the order; prefetch changes nothing.
  manual_seed(7);
  DataLoader d(ds, {8, true, false, std::nullopt, /*prefetch=*/0});
  manual_seed(7);
  DataLoader e(ds, {8, true, false, std::nullopt, /*prefetch=*/3});
  EXPECT_EQ(batches_of(d), batches_of(e));
  DataLoader unshuffled(ds, {8});
  EXPECT_EQ(unshuffled.order(5), identity);
}

TEST(DataLoader, EarlyBreakStopsThePrefetchThread) {
  auto ds = counting_dataset(1000);
  DataLoader loader(ds, {1, false, false, std::nullopt, /*prefetch=*/4});
  for (int round = 0; round < 3; ++round) {
    int seen = 0;
    for (const Example& b : loader) {
      EXPECT_EQ(b.target.item().to_int(), seen);
      if (++seen == 5) break;  // the iterator's destructor stops and joins the thread
    }
    EXPECT_EQ(seen, 5);
  }
  auto it = loader.begin();
  EXPECT_EQ(it->target.item().to_int(), 0);
  ++it;
  EXPECT_EQ((*it).target.item().to_int(), 1);
}

TEST(DataLoader, DatasetErrorsReachTheConsumerNamingTheIndex) {
  for (int64_t prefetch : {0, 2}) {
    DataLoader loader(std::make_shared<FailingDataset>(10, 7, false), {3, false, false, std::nullopt, prefetch});
    std::vector<int64_t> got;
    expect_throw_with<ValueError>(
        [&] {
          for (const Example& b : loader)
            for (double v : values(b.target)) got.push_back(static_cast<int64_t>(v));
        },
        {"[FailingDataset] sample is corrupt", "[DataLoader: while loading dataset index 7]"});
    EXPECT_EQ(got, (std::vector<int64_t>{0, 1, 2, 3, 4, 5})) << "prefetch " << prefetch;
    // A later epoch runs again (and fails again) rather than hanging.
    EXPECT_THROW(for (const Example& b : loader) (void)b, ValueError);
  }
  DataLoader std_error(std::make_shared<FailingDataset>(4, 1, true), {2});
  expect_throw_with<Error>([&] { std_error.begin(); }, {"[DataLoader] disk on fire", "dataset index 1"});
  // get_batch errors name the batch.
  struct BadBatch : TensorDataset {
    using TensorDataset::TensorDataset;
    std::optional<Example> get_batch(const std::vector<int64_t>& idx) const override {
      throw IndexError("[BadBatch] no batches today");
    }
  };
  DataLoader bad(std::make_shared<BadBatch>(zeros({4, 1})), {3});
  expect_throw_with<IndexError>([&] { bad.begin(); }, {"[BadBatch] no batches today", "indices [0, 1, 2]"});
}

TEST(DataFashionMNIST, SizesAndValuesWhenInstalled) {
  const std::string root = FashionMNIST::kDefaultRoot;
  expect_throw_with<Error>([] { FashionMNIST("/nonexistent/fmnist"); },
                           {"[FashionMNIST]", "apt-get install dataset-fashion-mnist", "/nonexistent/fmnist"});
  if (access((root + "/t10k-images-idx3-ubyte.gz").c_str(), R_OK) != 0)
    GTEST_SKIP() << "Fashion-MNIST is not installed in " << root << " (apt-get install dataset-fashion-mnist)";
  FashionMNIST test(root, /*train=*/false);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(test.images().sizes(), (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(test.images().dtype(), DType::Float32);
  EXPECT_EQ(test.targets().dtype(), DType::Int64);
  EXPECT_GE(min(test.images()).item().to_double(), 0.0);
  EXPECT_EQ(max(test.images()).item().to_double(), 1.0);
  EXPECT_EQ(min(test.targets()).item().to_int(), 0);
  EXPECT_EQ(max(test.targets()).item().to_int(), 9);
  Example e = test.get(0);
  EXPECT_EQ(e.data.sizes(), (Shape{1, 28, 28}));
  EXPECT_EQ(e.target.item().to_int(), 9);  // the first test image is an ankle boot
  EXPECT_STREQ(FashionMNIST::class_name(9), "Ankle boot");
  EXPECT_THROW(FashionMNIST::class_name(10), IndexError);
  FashionMNIST train(root, /*train=*/true);
  EXPECT_EQ(train.size(), 60000);
  EXPECT_TRUE(train.train());
  DataLoader loader(std::make_shared<FashionMNIST>(root, false), {256, true, true, uint64_t{1}});
  EXPECT_EQ(loader.size(), 39);
  auto first = loader.begin();
  EXPECT_EQ(first->data.sizes(), (Shape{256, 1, 28, 28}));
}
