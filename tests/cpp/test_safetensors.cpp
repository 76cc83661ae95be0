// safetensors reader/writer: round trips of every dtype (non-contiguous sources, empty
// tensors, metadata with escapes), and malformed files that must raise ValueError.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/ops/creation.h"
#include "core/ops/view.h"
#include "core/safetensors.h"

using namespace bigmodel;
namespace st = bigmodel::safetensors;

namespace {

// A file from a literal header and a data block (header length written little-endian).
std::string make_file(const std::string& header, const std::string& data = "") {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

// Expects ValueError whose message starts with "[safetensors]" and contains `needle`.
void expect_bad(const std::string& bytes, const std::string& needle) {
  try {
    st::deserialize(bytes);
    FAIL() << "no error; expected one mentioning '" << needle << "'";
  } catch (const ValueError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("[safetensors] ", 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

std::vector<double> as_doubles(const Tensor& t) {
  Tensor c = contiguous(to(t, DType::Float64));
  return std::vector<double>(c.data<double>(), c.data<double>() + c.numel());
}

}  // namespace

TEST(Safetensors, RoundTripEveryDtype) {
  std::vector<std::pair<std::string, Tensor>> in;
  const std::vector<double> vals = {1.5, -2.0, 3.25, 0.5, -7.0, 8.0};
  for (DType t : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int32, DType::Int64}) {
    in.emplace_back(std::string("w_") + dtype_name(t), to(from_vector<double>(vals, {2, 3}), t));
  }
  const uint8_t mask[] = {1, 0, 1};
  in.emplace_back("mask", from_host(mask, {3}, DType::Bool));
  in.emplace_back("transposed", transpose(from_vector<double>(vals, {2, 3}), 0, 1));  // non-contiguous
  in.emplace_back("empty", zeros({0, 4}));
  in.emplace_back("empty_mid", zeros({2, 0, 3}));
  EXPECT_TRUE(in.back().second.is_contiguous());  // no elements: contiguous whatever the strides
  in.emplace_back("scalar", scalar_tensor(Scalar(4.5), DType::Float32));
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"quote\"and\\slash\n", "ünïcode \x01"}};
  const std::string bytes = st::serialize(in, meta);
  const st::Contents out = st::deserialize(bytes);
  EXPECT_EQ(out.metadata, meta);
  ASSERT_EQ(out.tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out.tensors[i].first, in[i].first);
    const Tensor& a = out.tensors[i].second;
    EXPECT_EQ(a.dtype(), in[i].second.dtype());
    EXPECT_EQ(a.sizes(), in[i].second.sizes());
    EXPECT_EQ(as_doubles(a), as_doubles(in[i].second)) << in[i].first;
  }
}

TEST(Safetensors, FileRoundTripAndHeaderAlignment) {
  const std::string path = ::testing::TempDir() + "bm_st_roundtrip.safetensors";
  st::save(path, {{"a", from_vector<float>({1, 2, 3}, {3})}});
  const st::Contents c = st::load(path);
  ASSERT_EQ(c.tensors.size(), 1u);
  EXPECT_EQ(as_doubles(c.tensors[0].second), (std::vector<double>{1, 2, 3}));
  const std::string bytes = st::serialize({{"a", from_vector<float>({1, 2, 3}, {3})}});
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_THROW(st::load(path + ".missing"), ValueError);
}

TEST(Safetensors, WriterRejectsBadNames) {
  Tensor t = zeros({2});
  EXPECT_THROW(st::serialize({{"x", t}, {"x", t}}), ValueError);
  EXPECT_THROW(st::serialize({{"__metadata__", t}}), ValueError);
}

TEST(Safetensors, BoolBytesNormalised) {
  const std::string f = make_file(R"({"b":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", std::string("\x07\x00", 2));
  const Tensor b = st::deserialize(f).tensors[0].second;
  const uint8_t* raw = static_cast<const uint8_t*>(b.data_ptr());
  EXPECT_EQ(raw[0], 1);
  EXPECT_EQ(raw[1], 0);
  EXPECT_EQ(as_doubles(b), (std::vector<double>{1, 0}));
}

TEST(Safetensors, HeaderLengthProblems) {
  expect_bad("", "too short");
  expect_bad(std::string("\x05\x00\x00", 3), "too short");
  std::string huge(8, '\0');
  huge[7] = 0x10;  // 2^60 bytes
  expect_bad(huge + "{}", "exceeds the limit");
  std::string past = make_file("{}");
  past[0] = 40;  // claims 40 header bytes, file has 2
  expect_bad(past, "past the end of the file");
}

TEST(Safetensors, NotJson) {
  expect_bad(make_file("not json"), "not valid JSON");
  expect_bad(make_file("{\"a\":"), "not valid JSON");
  expect_bad(make_file("{\"a\":1,}"), "not valid JSON");
  expect_bad(make_file("{\"a\":\"\\x\"}"), "not valid JSON");
  expect_bad(make_file("{\"a\":\"\\ud800\"}"), "surrogate");
  expect_bad(make_file("{} extra"), "trailing");
  expect_bad(make_file("[1,2]"), "JSON object");
  expect_bad(make_file(std::string(200, '[') + std::string(200, ']')), "too deep");
  expect_bad(make_file(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{}})", "abcd"), "duplicate key");
  expect_bad(make_file(std::string("{\"a\x01\":1}")), "control character");
  expect_bad(make_file("{\"\xff\":1}"), "not valid UTF-8");
  expect_bad(make_file("{\"\xc0\xaf\":1}"), "not valid UTF-8");      // overlong '/'
  expect_bad(make_file("{\"\xed\xa0\x80\":1}"), "not valid UTF-8");  // encoded surrogate
  expect_bad(make_file("{\"\xe2\x82\":1}"), "not valid UTF-8");      // truncated sequence
}

TEST(Safetensors, EntryProblems) {
  const std::string four(4, '\x01');
  expect_bad(make_file(R"({"t":{"dtype":"Q8","shape":[1],"data_offsets":[0,4]}})", four), "unsupported dtype 'Q8'");
  expect_bad(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", four), "needs 8 bytes");
  expect_bad(make_file(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", four), "non-negative integer");
  expect_bad(make_file(R"({"t":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", four), "non-negative integer");
  expect_bad(make_file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", four),
             "overflows");
  // No elements, but the strides of [0, 2^40, 2^40] overflow int64 (found by the fuzzer).
  expect_bad(make_file(R"({"t":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}})"),
             "overflows");
  EXPECT_THROW(zeros({0, int64_t{1} << 40, int64_t{1} << 40}), ValueError);
  expect_bad(make_file(R"({"t":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}})", four),
             "non-negative integer");
  expect_bad(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", four), "reversed");
  expect_bad(make_file(R"({"t":{"dtype":"F32","shape":[1]}})", four), "needs \"dtype\"");
  expect_bad(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", four), "unexpected field");
  expect_bad(make_file(R"({"t":[1]})", four), "expected an object");
  expect_bad(make_file(R"({"__metadata__":{"k":1}})"), "must be a string");
}

TEST(Safetensors, OffsetProblems) {
  const std::string eight(8, '\x01');
  // Out of bounds.
  expect_bad(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", eight), "run past");
  // Overlap.
  expect_bad(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight), "overlap");
  // Gap before a tensor, and unused trailing bytes.
  expect_bad(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight), "gap");
  expect_bad(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", eight), "trailing bytes");
  // Truncated data block (a file cut short).
  const std::string good = st::serialize({{"x", zeros({16})}});
  expect_bad(good.substr(0, good.size() - 5), "run past");
}
