// core/json's options and unsigned integers, as the safetensors header reader uses them:
// duplicate keys refused on request, the nesting bound configurable, uint64 values kept.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "core/json.h"

using namespace bigmodel;

namespace {

std::string error_of(const std::string& text, const json::ParseOptions& options) {
  try {
    json::parse(text, "op", "doc", options);
  } catch (const ValueError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(JsonOptions, DuplicateKeysOnlyWhenRefused) {
  const std::string text = R"({"a":1,"b":2,"a":3})";
  EXPECT_EQ(json::parse(text, "op", "doc").find("a")->int_value, 3);  // default: the last wins
  const std::string msg = error_of(text, {json::kMaxDepth, true});
  EXPECT_NE(msg.find("[op] doc is not valid JSON: duplicate key \"a\""), std::string::npos) << msg;
  EXPECT_EQ(error_of(R"({"a":{"a":1}})", {json::kMaxDepth, true}), "");  // per object
}

TEST(JsonOptions, DepthBound) {
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  EXPECT_EQ(error_of(deep, {}), "");
  EXPECT_NE(error_of(deep, {64, false}).find("nesting too deep"), std::string::npos);
}

TEST(JsonOptions, UnsignedIntegers) {
  const json::Value v = json::parse("[18446744073709551615, 9223372036854775808, -1, 1.0, 1e3, 7, 18446744073709551616]",
                                    "op", "doc");
  EXPECT_TRUE(v.array[0].is_uint);
  EXPECT_EQ(v.array[0].uint_value, 18446744073709551615ull);
  EXPECT_FALSE(v.array[0].is_int);
  EXPECT_TRUE(v.array[1].is_uint);
  EXPECT_EQ(v.array[1].uint_value, 9223372036854775808ull);
  EXPECT_FALSE(v.array[2].is_uint);
  EXPECT_TRUE(v.array[2].is_int);
  EXPECT_FALSE(v.array[3].is_uint);
  EXPECT_FALSE(v.array[4].is_uint);
  EXPECT_TRUE(v.array[5].is_uint && v.array[5].is_int);
  EXPECT_EQ(v.array[5].uint_value, 7u);
  EXPECT_FALSE(v.array[6].is_uint);  // past uint64
}
