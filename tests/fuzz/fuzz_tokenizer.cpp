// libFuzzer target for the BERT tokenizer (core/data/tokenizer.h, unicode.h) and the JSON
// reader behind tokenizer.json (core/json.h). The first byte picks what the rest is:
//   0: a vocab.txt;  1: a tokenizer.json;  2: text for a fixed vocabulary;
//   3: a vocabulary (lines) and a text, split at the first 0xFF byte.
// Contract: every input is either accepted or rejected with bigmodel::Error; accepted
// vocabularies and every text obey the invariants checked below. Anything else (another
// exception, a sanitizer report, a crash, a hang) is a bug.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "core/data/tokenizer.h"
#include "core/data/unicode.h"
#include "core/error.h"

namespace bd = bigmodel::data;
namespace uc = bigmodel::data::unicode;

namespace {

[[noreturn]] void die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_tokenizer: %s: %s\n", what, detail.c_str());
  std::abort();
}

const std::vector<std::string> kSpecial = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

bd::Vocab with_specials(const std::vector<std::string>& words) {
  bd::Vocab v;
  int64_t id = 0;
  for (const auto& t : kSpecial) v.add(t, id++);
  for (const auto& t : words) v.add(t, id++);
  return v;
}

const bd::BertTokenizer& fixed_tokenizer() {
  static const bd::BertTokenizer tok(with_specials(
      {"the", "un", "##aff", "##able", "a", "##b", "##c", "ab", ",", "!", "cafe", "你", "\xC3\xA9", "##\xC3\xA9",
       "\xCF\x83", "##s", "hello", "world"}));
  return tok;
}

// Unicode invariants: decoding always yields valid code points; NFC and NFD are idempotent
// and agree on the canonical form.
void check_unicode(const std::string& bytes) {
  const std::u32string text = uc::decode_utf8(bytes);
  const std::string back = uc::encode_utf8(text);
  if (!uc::valid_utf8(back)) die("decode/encode", "re-encoded text is not valid UTF-8");
  if (uc::valid_utf8(bytes) && back != bytes) die("decode/encode", "valid UTF-8 did not round-trip");
  const std::u32string d = uc::nfd(text), c = uc::nfc(text);
  if (uc::nfd(d) != d) die("nfd", "not idempotent");
  if (uc::nfc(c) != c) die("nfc", "not idempotent");
  if (uc::nfd(c) != d) die("nfc/nfd", "NFD(NFC(x)) != NFD(x)");
  (void)uc::to_lower(text);
}

// Encoding invariants for any tokenizer and text.
void check_encode(const bd::BertTokenizer& tok, const std::string& text) {
  for (const std::string& word : tok.basic_tokenize(text)) {
    if (word.empty()) die("basic_tokenize", "empty word");
    for (char32_t c : uc::decode_utf8(word))
      if (uc::properties(c) & uc::kSpace) die("basic_tokenize", "a word holds whitespace");
  }
  const std::vector<int64_t> ids = tok.encode(text);
  if (ids.size() < 2 || ids.front() != tok.cls_token_id() || ids.back() != tok.sep_token_id())
    die("encode", "missing [CLS]/[SEP]");
  for (int64_t id : ids)
    if (id < 0) die("encode", "negative id");
  for (const std::string& t : tok.convert_ids_to_tokens(ids))
    if (tok.vocab().find(t) < 0) die("encode", "an id outside the vocabulary: " + t);
  const std::vector<int64_t> short_ids = tok.encode(text, true, true, 5);
  if (short_ids.size() > 5) die("encode", "truncation exceeded max_length");
  const bd::Encoding pair = tok.encode_pair(text, "hello " + text, bd::Truncation::LongestFirst, 7);
  if (pair.input_ids.size() > 7 || pair.token_type_ids.size() != pair.input_ids.size())
    die("encode_pair", "bad lengths");
  try {
    const bd::Encoding second = tok.encode_pair("a", text, bd::Truncation::OnlySecond, 6);
    if (second.input_ids.size() > 6) die("encode_pair", "OnlySecond exceeded max_length");
  } catch (const bigmodel::ValueError&) {
    // "a" alone may not fit when the vocabulary splits it into several pieces
  }
  (void)tok.decode(ids);
  const auto batch = tok.encode_batch({text, "a"}, bd::Padding::Longest, true, 9);
  if (batch[0].input_ids.size() != batch[1].input_ids.size()) die("encode_batch", "rows of different lengths");
}

void run(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const int mode = data[0] % 4;
  const std::string payload(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_unicode(payload);
  switch (mode) {
    case 0: {
      bd::Vocab v = bd::Vocab::from_text(payload);
      for (const auto& [token, id] : v.entries())
        if (!uc::valid_utf8(token) || v.find(token) != id) die("from_text", "inconsistent entry");
      for (const auto& t : kSpecial) v.add(t, static_cast<int64_t>(v.size()));
      check_encode(bd::BertTokenizer(std::move(v)), "Hello, unaffable world!");
      break;
    }
    case 1: {
      bd::Vocab v = bd::Vocab::from_tokenizer_json(payload);
      for (const auto& [token, id] : v.entries())
        if (id < 0 || v.find(token) != id) die("from_tokenizer_json", "inconsistent entry");
      break;
    }
    case 2: check_encode(fixed_tokenizer(), payload); break;
    case 3: {
      const size_t cut = payload.find('\xFF');
      const std::string words = payload.substr(0, cut);
      const std::string text = cut == std::string::npos ? std::string("ab") : payload.substr(cut + 1);
      std::vector<std::string> lines;
      bd::Vocab parsed = bd::Vocab::from_text(words);
      for (const auto& entry : parsed.entries()) lines.push_back(entry.first);
      check_encode(bd::BertTokenizer(with_specials(lines)), text);
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    run(data, size);
  } catch (const bigmodel::Error&) {
    return 0;  // a rejected file: an expected outcome
  } catch (const std::exception& e) {
    die("threw a non-bigmodel exception", e.what());
  }
  return 0;
}
