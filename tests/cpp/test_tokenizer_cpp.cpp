// The C++ BertTokenizer (core/data/tokenizer.h) and its Unicode and JSON helpers: basic
// tokenization, WordPiece, encoding, pairs, truncation, padding and malformed files on a
// hand-made vocabulary; and ids equal to the Python tokenizer's on the fixture
// tests/fixtures/tokenizer_reference.json (needs the MiniLM vocabulary, else skips).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/data/tokenizer.h"
#include "core/data/unicode.h"
#include "core/error.h"
#include "core/json.h"

namespace bigmodel::data {
namespace {

using Strings = std::vector<std::string>;
using Ids = std::vector<int64_t>;

const Strings kSpecial = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
const Strings kWords = {"the",  "un",    "##aff", "##able", "aff", "play", "##ing", "##s", "runn", "##er", ",",
                        "!",    ".",     "cafe",  "hello",  "world", "你",  "a",     "##b", "##c",  "ab"};

Vocab tiny_vocab() {
  Vocab v;
  int64_t id = 0;
  for (const auto& t : kSpecial) v.add(t, id++);
  for (const auto& t : kWords) v.add(t, id++);
  return v;
}

int64_t id_of(const BertTokenizer& tok, const std::string& t) { return tok.vocab().find(t); }

std::string minilm_dir() {
  if (const char* env = std::getenv("BIGMODEL_MINILM_DIR")) return env;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/bigmodel/minilm";
}

std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("bm_tok_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void write(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ValueError& e) {
    return e.what();
  }
  return "(no ValueError)";
}

TEST(Tokenizer, BasicSplittingAccentsCjkControl) {
  BertTokenizer tok(tiny_vocab());
  EXPECT_EQ(tok.basic_tokenize("  Hello,World!! "), (Strings{"hello", ",", "world", "!", "!"}));
  EXPECT_EQ(tok.basic_tokenize("Café NAÏVE résumé"), (Strings{"cafe", "naive", "resume"}));
  EXPECT_EQ(tok.basic_tokenize("ab你好cd"), (Strings{"ab", "你", "好", "cd"}));
  EXPECT_EQ(tok.basic_tokenize("ありがとう"), (Strings{"ありかとう"}));  // the voicing mark is an accent
  EXPECT_EQ(tok.basic_tokenize(std::string("a\0b\tc\nd$e^f`g", 13)),
            (Strings{"ab", "c", "d", "$", "e", "^", "f", "`", "g"}));
  EXPECT_EQ(tok.basic_tokenize(""), Strings{});
  // Greek final sigma, U+2028 splits as Python's str.split does, invalid bytes vanish.
  EXPECT_EQ(tok.basic_tokenize("ΟΔΥΣΣΕΥΣ"), (Strings{"οδυσσευς"}));
  EXPECT_EQ(tok.basic_tokenize("a\xE2\x80\xA8" "b"), (Strings{"a", "b"}));
  EXPECT_EQ(tok.basic_tokenize("he\xFFllo \xE2\x82"), (Strings{"hello"}));
  TokenizerOptions cased;
  cased.do_lower_case = false;
  BertTokenizer cased_tok(tiny_vocab(), cased);
  EXPECT_EQ(cased_tok.basic_tokenize("Héllo World"), (Strings{"Héllo", "World"}));
  // NFC composes "e" + combining acute into one code point when accents are kept.
  EXPECT_EQ(cased_tok.basic_tokenize("e\xCC\x81"), (Strings{"\xC3\xA9"}));
  TokenizerOptions keep_accents;
  keep_accents.strip_accents = false;
  EXPECT_EQ(BertTokenizer(tiny_vocab(), keep_accents).basic_tokenize("ありがとう"), (Strings{"ありがとう"}));
}

TEST(Tokenizer, WordPieceGreedyLongestMatch) {
  BertTokenizer tok(tiny_vocab());
  EXPECT_EQ(tok.wordpiece("unaffable"), (Strings{"un", "##aff", "##able"}));
  EXPECT_EQ(tok.wordpiece("playings"), (Strings{"play", "##ing", "##s"}));
  EXPECT_EQ(tok.wordpiece("abc"), (Strings{"ab", "##c"}));  // longest first: "ab" beats "a" + "##b"
  EXPECT_EQ(tok.wordpiece("playx"), (Strings{"[UNK]"}));    // no complete split: the whole word
  EXPECT_EQ(tok.wordpiece(std::string(101, 'a')), (Strings{"[UNK]"}));
  EXPECT_EQ(tok.tokenize("The runner, playing!"), (Strings{"the", "runn", "##er", ",", "play", "##ing", "!"}));
}

TEST(Tokenizer, EncodeBatchPaddingTruncation) {
  BertTokenizer tok(tiny_vocab());
  const int64_t hello = id_of(tok, "hello"), world = id_of(tok, "world"), the = id_of(tok, "the"),
                cafe = id_of(tok, "cafe");
  EXPECT_EQ(tok.encode("hello world"), (Ids{2, hello, world, 3}));
  EXPECT_EQ(tok.encode("hello [MASK] world"), (Ids{2, hello, 4, world, 3}));
  EXPECT_EQ(tok.encode("hello world", /*add_special_tokens=*/false), (Ids{hello, world}));

  const BatchEncoding batch = tok({"hello world", "the cafe", "hello"});
  ASSERT_EQ(batch.input_ids.sizes(), (Shape{3, 4}));
  EXPECT_EQ(batch.input_ids.dtype(), DType::Int64);
  const int64_t* ids = batch.input_ids.data<int64_t>();
  EXPECT_EQ(Ids(ids, ids + 12), (Ids{2, hello, world, 3, 2, the, cafe, 3, 2, hello, 3, 0}));
  const int64_t* mask = batch.attention_mask.data<int64_t>();
  EXPECT_EQ(Ids(mask, mask + 12), (Ids{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}));
  const int64_t* types = batch.token_type_ids.data<int64_t>();
  EXPECT_EQ(Ids(types, types + 12), Ids(12, 0));

  EXPECT_EQ(tok.encode("hello world the cafe", true, true, 4), (Ids{2, hello, world, 3}));
  EXPECT_EQ(tok.encode("hello world the cafe", true, /*truncation=*/false, 4), (Ids{2, hello, world, the, cafe, 3}));
  const auto fixed = tok.encode_batch({"hello"}, Padding::MaxLength, true, 6);
  EXPECT_EQ(fixed[0].input_ids, (Ids{2, hello, 3, 0, 0, 0}));
  EXPECT_EQ(fixed[0].attention_mask, (Ids{1, 1, 1, 0, 0, 0}));
  const auto ragged = tok.encode_batch(Strings{"hello", "hello world"}, Padding::None);
  EXPECT_EQ(ragged[1].input_ids.size(), 4u);
  EXPECT_NE(error_of([&] { tok(Strings{"hello", "hello world"}, Padding::None); }).find("different lengths"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tok.encode_batch({"a"}, Padding::MaxLength); }).find("[tokenizer]"), std::string::npos);
  EXPECT_NE(error_of([&] { tok.encode("a", true, true, 1); }).find("no room"), std::string::npos);
  EXPECT_EQ(tok.decode(tok.encode("the runner")), "the runner");
  EXPECT_EQ(tok.decode({2, 999, 3}, false), "[CLS] [UNK] [SEP]");
}

TEST(Tokenizer, SentencePairsAndTruncationStrategies) {
  BertTokenizer tok(tiny_vocab());  // [CLS]=2 [SEP]=3 the=5 play=10 ##ing=11 hello=19 world=20 a=22
  const Encoding e = tok.encode_pair("hello world", "the playing");
  EXPECT_EQ(e.input_ids, (Ids{2, 19, 20, 3, 5, 10, 11, 3}));
  EXPECT_EQ(e.token_type_ids, (Ids{0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(e.attention_mask, Ids(8, 1));
  const Encoding bare = tok.encode_pair("hello", "world", Truncation::LongestFirst, std::nullopt, false);
  EXPECT_EQ(bare.input_ids, (Ids{19, 20}));
  EXPECT_EQ(bare.token_type_ids, (Ids{0, 1}));
  // Padding gets type 0 and mask 0.
  const BatchEncoding b = tok.pairs({{"hello", "the world hello"}, {"world", "the"}});
  ASSERT_EQ(b.token_type_ids.sizes(), (Shape{2, 7}));
  const int64_t* types = b.token_type_ids.data<int64_t>();
  EXPECT_EQ(Ids(types, types + 14), (Ids{0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0}));

  const std::string five = "hello world hello world hello", six = "the the the the the the";
  auto ids = [&](const std::string& a, const std::string& c, Truncation t, int64_t n) {
    return tok.encode_pair(a, c, t, n).input_ids;
  };
  // Only the longer is cut when the shorter fits beside it.
  EXPECT_EQ(ids(five, "the", Truncation::LongestFirst, 7), (Ids{2, 19, 20, 19, 3, 5, 3}));
  // Both too long: the shorter keeps room / 2, the longer the rest (room = 8 - 3 = 5).
  EXPECT_EQ(ids(five, six, Truncation::LongestFirst, 8), (Ids{2, 19, 20, 3, 5, 5, 5, 3}));
  EXPECT_EQ(ids(six, five, Truncation::LongestFirst, 8), (Ids{2, 5, 5, 5, 3, 19, 20, 3}));
  EXPECT_EQ(ids("the the the the", "a a a a", Truncation::LongestFirst, 8), (Ids{2, 5, 5, 3, 22, 22, 22, 3}));
  EXPECT_EQ(ids(five, six, Truncation::OnlySecond, 9), (Ids{2, 19, 20, 19, 20, 19, 3, 5, 3}));
  EXPECT_EQ(ids(five, six, Truncation::OnlyFirst, 10), (Ids{2, 19, 3, 5, 5, 5, 5, 5, 5, 3}));
  EXPECT_EQ(ids(five, six, Truncation::None, 4).size(), 14u);
  EXPECT_NE(error_of([&] { ids(five, six, Truncation::OnlyFirst, 8); }).find("OnlyFirst cannot fit"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ids("hello", "world", Truncation::LongestFirst, 2); }).find("special tokens"),
            std::string::npos);
}

TEST(Tokenizer, VocabFilesAndMalformedInput) {
  std::string text;
  for (const auto& t : kSpecial) text += t + "\r\n";  // Windows line ends read as Python's text mode
  for (const auto& t : kWords) text += t + "\n";
  text += "the\n";  // a repeated token keeps its first id
  const Vocab from_text = Vocab::from_text(text);
  EXPECT_EQ(from_text.find("[MASK]"), 4);
  EXPECT_EQ(from_text.find("the"), 5);
  EXPECT_EQ(from_text.size(), kSpecial.size() + kWords.size());
  EXPECT_EQ(Vocab::from_text("a\rb\r\nc").find("c"), 2);

  std::string json = "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {";
  int64_t id = 0;
  for (const auto& group : {kSpecial, kWords})
    for (const auto& t : group) {
      json += (id ? ", \"" : "\"") + t + "\": " + std::to_string(id);
      ++id;
    }
  json += "}}}";
  const Vocab from_json = Vocab::from_tokenizer_json(json);
  EXPECT_EQ(from_json.entries(), from_text.entries());

  auto dir = temp_dir("files");
  write(dir / "vocab.txt", text);
  write(dir / "tokenizer_config.json", "{\"do_lower_case\": false, \"strip_accents\": null, \"model_max_length\": 1e30}");
  const BertTokenizer cased = BertTokenizer::from_pretrained(dir.string());
  EXPECT_FALSE(cased.options().do_lower_case);
  EXPECT_EQ(cased.options().model_max_length, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(cased.tokenize("Hello hello"), (Strings{"[UNK]", "hello"}));
  write(dir / "tokenizer_config.json", "{\"do_lower_case\": \"yes\"}");
  EXPECT_NE(error_of([&] { BertTokenizer::from_pretrained(dir.string()); }).find("do_lower_case must be a boolean"),
            std::string::npos);
  write(dir / "tokenizer_config.json", "{\"do_lower_case\": true,\n  oops}");
  const std::string bad_json = error_of([&] { BertTokenizer::from_pretrained(dir.string()); });
  EXPECT_NE(bad_json.find("tokenizer_config.json is not valid JSON"), std::string::npos) << bad_json;
  EXPECT_NE(bad_json.find("line 2"), std::string::npos) << bad_json;
  std::filesystem::remove(dir / "tokenizer_config.json");

  // Invalid UTF-8 on line 3 of vocab.txt is named with its file and line.
  write(dir / "vocab.txt", "[PAD]\n[UNK]\nbad\xC3(\n[CLS]\n");
  const std::string bad_utf8 = error_of([&] { BertTokenizer::from_pretrained(dir.string()); });
  EXPECT_NE(bad_utf8.find("[tokenizer]"), std::string::npos);
  EXPECT_NE(bad_utf8.find("vocab.txt line 3: invalid UTF-8"), std::string::npos) << bad_utf8;
  write(dir / "vocab.txt", "[PAD]\n[UNK]\n");
  EXPECT_NE(error_of([&] { BertTokenizer::from_pretrained(dir.string()); }).find("lacks the special token"),
            std::string::npos);
  EXPECT_NE(error_of([] { Vocab::from_tokenizer_json("{\"model\": {}}"); }).find("not a WordPiece tokenizer.json"),
            std::string::npos);
  EXPECT_NE(error_of([] { Vocab::from_tokenizer_json("{\"model\": {\"vocab\": {\"a\": -1}}}"); }).find("non-negative"),
            std::string::npos);
  EXPECT_NE(error_of([] { Vocab::from_tokenizer_json("{\"model\": [1, 2"); }).find("line 1, column"),
            std::string::npos);
  std::filesystem::remove_all(dir);
  EXPECT_NE(error_of([&] { BertTokenizer::from_pretrained(dir.string()); }).find("no vocab.txt or tokenizer.json"),
            std::string::npos);
}

TEST(Tokenizer, JsonReader) {
  const json::Value v = json::parse("{\"a\": [1, -2.5e1, true, null, \"x\\u00e9\\ud83d\\ude00\"], \"a\": 7}", "t", "s");
  EXPECT_EQ(v.find("a")->int_value, 7);  // the last duplicate wins, as in Python
  EXPECT_EQ(v.object[0].second.array[1].number, -25.0);
  EXPECT_FALSE(v.object[0].second.array[1].is_int);
  EXPECT_EQ(v.object[0].second.array[4].str, "x\xC3\xA9\xF0\x9F\x98\x80");
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "01", "\"\\ud800\"", "nul", "[1] x", "\"a\nb\""})
    EXPECT_THROW(json::parse(bad, "t", "s"), ValueError) << bad;
  EXPECT_THROW(json::parse(std::string(100000, '['), "t", "s"), ValueError);  // depth bound, not a stack overflow
}

TEST(Tokenizer, UnicodeHelpers) {
  namespace uc = unicode;
  EXPECT_EQ(uc::encode_utf8(uc::nfc(uc::decode_utf8("A\xCC\x8A"))), "\xC3\x85");  // A + ring -> Å
  EXPECT_EQ(uc::nfd(U"\uAC01"), (std::u32string{0x1100, 0x1161, 0x11A8}));      // Hangul by arithmetic
  EXPECT_EQ(uc::nfc(U"\u1100\u1161\u11A8"), std::u32string(U"\uAC01"));
  EXPECT_EQ(uc::nfd(U"a\u0323\u0302"), uc::nfd(U"a\u0302\u0323"));  // canonical ordering
  EXPECT_EQ(uc::to_lower(U"\u0130"), (std::u32string{U'i', 0x307}));
  EXPECT_EQ(uc::decode_utf8("\xED\xA0\x80" "a"), (std::u32string{0xFFFD, 0xFFFD, 0xFFFD, U'a'}));
  EXPECT_FALSE(uc::valid_utf8("\xC0\xAF"));
  EXPECT_TRUE(uc::valid_utf8("\xF0\x9F\x98\x80"));
}

// ids identical to the Python tokenizer's on fortunes lines and Unicode edge cases.
TEST(Tokenizer, MatchesPythonOnReferenceText) {
  const std::string dir = minilm_dir();
  if (!std::filesystem::exists(dir + "/vocab.txt"))
    GTEST_SKIP() << "all-MiniLM-L6-v2 not fetched into " << dir << " (run scripts/fetch_minilm.sh)";
  std::string path = __FILE__;
  path = path.substr(0, path.rfind("/cpp/")) + "/fixtures/tokenizer_reference.json";
  const json::Value root = json::parse_file(path, "test");
  const BertTokenizer tok = BertTokenizer::from_pretrained(dir);
  EXPECT_EQ(tok.size(), 30522u);
  TokenizerOptions cased_options;
  cased_options.do_lower_case = false;
  const BertTokenizer cased(Vocab::from_file(dir + "/vocab.txt"), cased_options);
  const json::Value* records = root.find("records");
  ASSERT_TRUE(records && records->array.size() >= 300);
  auto ids_of = [](const json::Value& arr) {
    Ids out;
    for (const json::Value& v : arr.array) out.push_back(v.int_value);
    return out;
  };
  size_t mismatches = 0, pairs = 0;
  for (const json::Value& r : records->array) {
    const std::string& text = r.find("text")->str;
    if (const json::Value* pair = r.find("pair")) {  // a sentence pair under one truncation strategy
      const std::string& strategy = r.find("truncation")->str;
      const Truncation t = strategy == "only_first"    ? Truncation::OnlyFirst
                           : strategy == "only_second" ? Truncation::OnlySecond
                                                       : Truncation::LongestFirst;
      const Encoding e = tok.encode_pair(text, pair->str, t, r.find("max_length")->int_value);
      EXPECT_EQ(e.input_ids, ids_of(*r.find("ids"))) << strategy << " pair: " << text << " | " << pair->str;
      EXPECT_EQ(e.token_type_ids, ids_of(*r.find("token_type_ids"))) << text << " | " << pair->str;
      ++pairs;
      continue;
    }
    const Ids want = ids_of(*r.find("ids")), got = tok.encode(text);
    const Ids want_cased = ids_of(*r.find("cased_ids")), got_cased = cased.encode(text);
    if (got != want || got_cased != want_cased) ++mismatches;
    EXPECT_EQ(got, want) << "text: " << text;
    EXPECT_EQ(got_cased, want_cased) << "cased text: " << text;
    if (mismatches > 5) break;
  }
  EXPECT_GE(pairs, 30u);
}

}  // namespace
}  // namespace bigmodel::data
