// BertTokenizer (core/data/tokenizer.h): vocabulary readers, the basic tokenizer and
// WordPiece, written step for step as python/bigmodel/models/tokenizer.py so both give the
// same ids; the Unicode facts come from core/data/unicode.h.
#include "core/data/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "core/data/unicode.h"
#include "core/error.h"
#include "core/json.h"
#include "core/ops/creation.h"

namespace bigmodel::data {
namespace {

constexpr const char* kOp = "tokenizer";
namespace uc = unicode;

bool is_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || (uc::properties(c) & uc::kZs);
}
bool is_control(char32_t c) {
  // \t \n \r count as whitespace, not control, as in BERT.
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return (uc::properties(c) & uc::kOther) != 0;
}
bool is_punctuation(char32_t c) {
  // Every non-alphanumeric ASCII symbol, plus Unicode's P* categories (BERT's rule).
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return (uc::properties(c) & uc::kPunctuation) != 0;
}
bool is_cjk(char32_t c) {
  // CJK Unified Ideographs blocks only (Hangul and kana are not split), as in BERT.
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  BM_CHECK_VALUE(f.good(), kOp, "cannot open '", path, "' for reading");
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  BM_CHECK_VALUE(!f.bad(), kOp, "reading '", path, "' failed");
  return bytes;
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The line (1-based) holding byte `offset` of `bytes`, for error messages.
size_t line_of(const std::string& bytes, size_t offset) {
  return 1 + static_cast<size_t>(std::count(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

void check_utf8_file(const std::string& bytes, const std::string& source) {
  if (uc::valid_utf8(bytes)) return;
  // Find the first bad line for the message.
  size_t start = 0;
  while (start <= bytes.size()) {
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    if (!uc::valid_utf8(bytes.substr(start, end - start)))
      throw ValueError(str_cat("[tokenizer] ", source, " line ", line_of(bytes, start), ": invalid UTF-8"));
    start = end + 1;
  }
  throw ValueError(str_cat("[tokenizer] ", source, ": invalid UTF-8"));
}

const json::Value* member(const json::Value& v, const char* key) { return v.find(key); }

void read_bool(const json::Value& root, const char* key, const std::string& source, bool& out) {
  const json::Value* v = member(root, key);
  if (!v) return;
  BM_CHECK_VALUE(v->kind == json::Value::Bool, kOp, source, ": ", key, " must be a boolean, got ",
                 json::kind_name(v->kind));
  out = v->boolean;
}

void read_optional_bool(const json::Value& root, const char* key, const std::string& source,
                        std::optional<bool>& out) {
  const json::Value* v = member(root, key);
  if (!v) return;
  if (v->is_null()) {
    out.reset();
    return;
  }
  BM_CHECK_VALUE(v->kind == json::Value::Bool, kOp, source, ": ", key, " must be a boolean or null, got ",
                 json::kind_name(v->kind));
  out = v->boolean;
}

}  // namespace

// ------------------------------------------------------------------------------ Vocab
void Vocab::add(const std::string& token, int64_t id) {
  if (ids_.emplace(token, id).second) entries_.emplace_back(token, id);
}

int64_t Vocab::find(const std::string& token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

Vocab Vocab::from_text(const std::string& bytes, const std::string& source) {
  Vocab vocab;
  size_t line = 0, start = 0;
  const size_t n = bytes.size();
  while (start < n) {
    size_t end = start;
    while (end < n && bytes[end] != '\n' && bytes[end] != '\r') ++end;
    std::string token = bytes.substr(start, end - start);
    if (!uc::valid_utf8(token)) throw ValueError(str_cat("[tokenizer] ", source, " line ", line + 1, ": invalid UTF-8"));
    vocab.add(token, static_cast<int64_t>(line));
    ++line;
    if (end < n && bytes[end] == '\r' && end + 1 < n && bytes[end + 1] == '\n') ++end;  // \r\n is one break
    start = end + 1;
  }
  return vocab;
}

Vocab Vocab::from_tokenizer_json(const std::string& bytes, const std::string& source) {
  check_utf8_file(bytes, source);
  const json::Value root = json::parse(bytes, kOp, source);
  const json::Value* model = member(root, "model");
  const json::Value* table = model ? member(*model, "vocab") : nullptr;
  BM_CHECK_VALUE(table && table->kind == json::Value::Object, kOp, source,
                 " is not a WordPiece tokenizer.json: it has no \"model\": {\"vocab\": {...}} object");
  // A repeated key takes its last id but keeps its first place, as a Python dict does.
  std::unordered_map<std::string, int64_t> last;
  for (const auto& [token, id] : table->object) {
    BM_CHECK_VALUE(id.kind == json::Value::Number && id.is_int && id.int_value >= 0, kOp, source,
                   ": model.vocab id of \"", token, "\" must be a non-negative integer");
    last[token] = id.int_value;
  }
  Vocab vocab;
  for (const auto& entry : table->object) vocab.add(entry.first, last[entry.first]);
  return vocab;
}

Vocab Vocab::from_file(const std::string& path) {
  const std::string bytes = read_file(path);
  return ends_with(path, ".json") ? from_tokenizer_json(bytes, path) : from_text(bytes, path);
}

// ------------------------------------------------------------------------------ BertTokenizer
BertTokenizer::BertTokenizer(Vocab vocab, TokenizerOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  strip_accents_ = options_.strip_accents.value_or(options_.do_lower_case);
  special_tokens_ = {options_.unk_token, options_.sep_token, options_.pad_token, options_.cls_token,
                     options_.mask_token};
  std::string missing;
  for (const std::string& t : special_tokens_)
    if (vocab_.find(t) < 0) missing += str_cat(missing.empty() ? "" : ", ", "'", t, "'");
  BM_CHECK_VALUE(missing.empty(), kOp, "the vocabulary lacks the special token(s) [", missing, "]");
  BM_CHECK_VALUE(options_.max_input_chars_per_word >= 0, kOp, "max_input_chars_per_word must be >= 0");
  for (const auto& [token, id] : vocab_.entries()) tokens_by_id_[id] = token;
}

BertTokenizer BertTokenizer::from_pretrained(const std::string& directory) {
  const std::string dir = directory.empty() || directory.back() == '/' ? directory : directory + "/";
  std::string vocab_path;
  for (const char* name : {"vocab.txt", "tokenizer.json"}) {
    if (is_file(dir + name)) {
      vocab_path = dir + name;
      break;
    }
  }
  BM_CHECK_VALUE(!vocab_path.empty(), kOp, "no vocab.txt or tokenizer.json in ", directory);
  TokenizerOptions options;
  const std::string config_path = dir + "tokenizer_config.json";
  const std::string json_path = dir + "tokenizer.json";
  if (is_file(config_path)) {
    const std::string bytes = read_file(config_path);
    check_utf8_file(bytes, config_path);
    const json::Value cfg = json::parse(bytes, kOp, config_path);
    BM_CHECK_VALUE(cfg.kind == json::Value::Object, kOp, config_path, " must hold a JSON object");
    read_bool(cfg, "do_lower_case", config_path, options.do_lower_case);
    read_bool(cfg, "tokenize_chinese_chars", config_path, options.tokenize_chinese_chars);
    read_optional_bool(cfg, "strip_accents", config_path, options.strip_accents);
    if (const json::Value* m = member(cfg, "model_max_length")) {
      BM_CHECK_VALUE(m->kind == json::Value::Number && m->number >= 0, kOp, config_path,
                     ": model_max_length must be a non-negative number");
      // Hugging Face writes 1e30 for "no limit": clamp to int64.
      options.model_max_length = m->is_int ? m->int_value
                                 : m->number >= 9.2e18 ? std::numeric_limits<int64_t>::max()
                                                       : static_cast<int64_t>(m->number);
    }
  } else if (is_file(json_path)) {
    // No tokenizer_config.json: take the normalizer's settings from tokenizer.json.
    const std::string bytes = read_file(json_path);
    check_utf8_file(bytes, json_path);
    const json::Value root = json::parse(bytes, kOp, json_path);
    const json::Value* norm = member(root, "normalizer");
    const json::Value* type = norm ? member(*norm, "type") : nullptr;
    if (type && type->kind == json::Value::String && type->str == "BertNormalizer") {
      read_bool(*norm, "lowercase", json_path, options.do_lower_case);
      read_bool(*norm, "handle_chinese_chars", json_path, options.tokenize_chinese_chars);
      read_optional_bool(*norm, "strip_accents", json_path, options.strip_accents);
    }
  }
  return BertTokenizer(Vocab::from_file(vocab_path), options);
}

std::vector<std::string> BertTokenizer::basic_tokenize(const std::string& text) const {
  // Clean: drop NUL, U+FFFD (what invalid bytes decode to) and control characters; every
  // whitespace character becomes a space. Then NFC and spaces around CJK ideographs.
  std::u32string cleaned;
  for (char32_t c : uc::decode_utf8(text)) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    cleaned += is_whitespace(c) ? U' ' : c;
  }
  std::u32string normal = uc::nfc(cleaned);
  if (options_.tokenize_chinese_chars) {
    std::u32string spaced;
    for (char32_t c : normal) {
      if (is_cjk(c)) {
        spaced += U' ';
        spaced += c;
        spaced += U' ';
      } else {
        spaced += c;
      }
    }
    normal.swap(spaced);
  }
  std::vector<std::string> words;
  size_t i = 0;
  const size_t n = normal.size();
  while (i < n) {
    // str.split(): runs of str.isspace characters separate words.
    while (i < n && (uc::properties(normal[i]) & uc::kSpace)) ++i;
    size_t j = i;
    while (j < n && !(uc::properties(normal[j]) & uc::kSpace)) ++j;
    if (j == i) break;
    std::u32string word = normal.substr(i, j - i);
    i = j;
    const std::string utf8 = uc::encode_utf8(word);
    if (std::find(special_tokens_.begin(), special_tokens_.end(), utf8) != special_tokens_.end()) {
      words.push_back(utf8);
      continue;
    }
    if (options_.do_lower_case) word = uc::to_lower(word);
    if (strip_accents_) {
      std::u32string stripped;
      for (char32_t c : uc::nfd(word))
        if (!(uc::properties(c) & uc::kNonspacingMark)) stripped += c;
      word.swap(stripped);
    }
    // Punctuation characters become words of their own.
    std::u32string current;
    for (char32_t c : word) {
      if (is_punctuation(c)) {
        if (!current.empty()) words.push_back(uc::encode_utf8(current));
        current.clear();
        words.push_back(uc::encode_utf8(std::u32string(1, c)));
      } else {
        current += c;
      }
    }
    if (!current.empty()) words.push_back(uc::encode_utf8(current));
  }
  return words;
}

std::vector<std::string> BertTokenizer::wordpiece(const std::string& word_utf8) const {
  const std::u32string word = uc::decode_utf8(word_utf8);
  if (static_cast<int64_t>(word.size()) > options_.max_input_chars_per_word) return {options_.unk_token};
  // Byte offset of each code point, so candidates are substrings of the UTF-8 form.
  std::string utf8;
  std::vector<size_t> offset;
  for (char32_t c : word) {
    offset.push_back(utf8.size());
    uc::append_utf8(utf8, c);
  }
  offset.push_back(utf8.size());
  std::vector<std::string> pieces;
  size_t start = 0;
  while (start < word.size()) {
    size_t end = word.size();
    std::string piece;
    bool found = false;
    while (start < end) {
      std::string candidate = utf8.substr(offset[start], offset[end] - offset[start]);
      if (start > 0) candidate = "##" + candidate;
      if (vocab_.find(candidate) >= 0) {
        piece = std::move(candidate);
        found = true;
        break;
      }
      --end;
    }
    if (!found) return {options_.unk_token};
    pieces.push_back(std::move(piece));
    start = end;
  }
  return pieces;
}

std::vector<std::string> BertTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  for (const std::string& word : basic_tokenize(text))
    for (std::string& piece : wordpiece(word)) out.push_back(std::move(piece));
  return out;
}

std::vector<int64_t> BertTokenizer::convert_tokens_to_ids(const std::vector<std::string>& tokens) const {
  const int64_t unk = unk_token_id();
  std::vector<int64_t> ids;
  ids.reserve(tokens.size());
  for (const std::string& t : tokens) {
    const int64_t id = vocab_.find(t);
    ids.push_back(id >= 0 ? id : unk);
  }
  return ids;
}

std::vector<std::string> BertTokenizer::convert_ids_to_tokens(const std::vector<int64_t>& ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    const auto it = tokens_by_id_.find(id);
    tokens.push_back(it != tokens_by_id_.end() ? it->second : options_.unk_token);
  }
  return tokens;
}

std::string BertTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::string joined;
  bool first = true;
  for (const std::string& t : convert_ids_to_tokens(ids)) {
    if (skip_special_tokens && std::find(special_tokens_.begin(), special_tokens_.end(), t) != special_tokens_.end())
      continue;
    if (!first) joined += ' ';
    joined += t;
    first = false;
  }
  std::string out;  // " ##" joins a continuation to its word
  for (size_t i = 0; i < joined.size();) {
    if (joined.compare(i, 3, " ##") == 0) {
      i += 3;
    } else {
      out += joined[i++];
    }
  }
  return out;
}

std::vector<int64_t> BertTokenizer::ids_of(const std::string& text) const {
  return convert_tokens_to_ids(tokenize(text));
}

std::vector<int64_t> BertTokenizer::encode(const std::string& text, bool add_special_tokens, bool truncation,
                                           std::optional<int64_t> max_length) const {
  std::vector<int64_t> ids = ids_of(text);
  const int64_t limit = max_length.value_or(options_.model_max_length);
  const int64_t room = limit - (add_special_tokens ? 2 : 0);
  BM_CHECK_VALUE(!truncation || room >= 0, kOp, "max_length=", limit, " leaves no room for [CLS] and [SEP]");
  if (truncation && static_cast<int64_t>(ids.size()) > room) ids.resize(static_cast<size_t>(room));
  if (!add_special_tokens) return ids;
  ids.insert(ids.begin(), cls_token_id());
  ids.push_back(sep_token_id());
  return ids;
}

namespace {

// Lengths kept of a pair under longest-first truncation into `room` pieces, the rule of the
// Rust tokenizers library (and of the Python tokenizer): the shorter keeps everything when
// the longer can absorb the cut; otherwise the shorter keeps room / 2 and the longer the
// rest (so on ties the first gets the floor, the second the ceiling).
std::pair<size_t, size_t> longest_first(size_t la, size_t lb, size_t room) {
  const bool swap = la > lb;
  const size_t shorter = swap ? lb : la, longer_len = swap ? la : lb;
  size_t long_keep = shorter > room ? shorter : std::max(shorter, room - shorter);
  size_t short_keep = shorter;
  if (short_keep + long_keep > room) {
    short_keep = room / 2;
    long_keep = short_keep + room % 2;
  }
  long_keep = std::min(long_keep, longer_len);
  return swap ? std::make_pair(long_keep, short_keep) : std::make_pair(short_keep, long_keep);
}

}  // namespace

Encoding BertTokenizer::with_specials(std::vector<int64_t> a, const std::vector<int64_t>* b,
                                      bool add_special_tokens) const {
  Encoding e;
  if (add_special_tokens) e.input_ids.push_back(cls_token_id());
  e.input_ids.insert(e.input_ids.end(), a.begin(), a.end());
  if (add_special_tokens) e.input_ids.push_back(sep_token_id());
  e.token_type_ids.assign(e.input_ids.size(), 0);
  if (b) {
    e.input_ids.insert(e.input_ids.end(), b->begin(), b->end());
    if (add_special_tokens) e.input_ids.push_back(sep_token_id());
    e.token_type_ids.resize(e.input_ids.size(), 1);
  }
  e.attention_mask.assign(e.input_ids.size(), 1);
  return e;
}

Encoding BertTokenizer::encode_pair(const std::string& a, const std::string& b, Truncation truncation,
                                    std::optional<int64_t> max_length, bool add_special_tokens) const {
  std::vector<int64_t> first = ids_of(a), second = ids_of(b);
  const int64_t limit = max_length.value_or(options_.model_max_length);
  const int64_t specials = add_special_tokens ? 3 : 0;
  const int64_t room = limit - specials;
  if (truncation != Truncation::None) {
    BM_CHECK_VALUE(room >= 0, kOp, "max_length=", limit, " leaves no room for the ", specials, " special tokens");
    const auto la = static_cast<int64_t>(first.size()), lb = static_cast<int64_t>(second.size());
    if (truncation == Truncation::OnlyFirst) {
      BM_CHECK_VALUE(room - lb >= 0, kOp, "truncation OnlyFirst cannot fit: the second sequence alone has ", lb,
                     " pieces, max_length=", limit);
      first.resize(static_cast<size_t>(std::min(la, room - lb)));
    } else if (truncation == Truncation::OnlySecond) {
      BM_CHECK_VALUE(room - la >= 0, kOp, "truncation OnlySecond cannot fit: the first sequence alone has ", la,
                     " pieces, max_length=", limit);
      second.resize(static_cast<size_t>(std::min(lb, room - la)));
    } else if (la + lb > room) {
      const auto [ka, kb] = longest_first(first.size(), second.size(), static_cast<size_t>(room));
      first.resize(std::min(ka, first.size()));
      second.resize(std::min(kb, second.size()));
    }
  }
  return with_specials(std::move(first), &second, add_special_tokens);
}

std::vector<Encoding> BertTokenizer::pad(std::vector<Encoding> batch, Padding padding,
                                         std::optional<int64_t> max_length) const {
  size_t target = 0;
  if (padding == Padding::None) return batch;
  if (padding == Padding::MaxLength) {
    BM_CHECK_VALUE(max_length.has_value(), kOp, "padding to max_length needs max_length");
    BM_CHECK_VALUE(*max_length >= 0, kOp, "max_length must be >= 0, got ", *max_length);
    target = static_cast<size_t>(*max_length);
    for (const Encoding& e : batch)
      BM_CHECK_VALUE(e.input_ids.size() <= target, kOp, "a text of ", e.input_ids.size(),
                     " tokens is longer than max_length=", target, " (enable truncation)");
  } else {
    for (const Encoding& e : batch) target = std::max(target, e.input_ids.size());
  }
  const int64_t pad_id = pad_token_id();
  for (Encoding& e : batch) {
    e.input_ids.resize(target, pad_id);
    e.token_type_ids.resize(target, 0);
    e.attention_mask.resize(target, 0);
  }
  return batch;
}

std::vector<Encoding> BertTokenizer::encode_batch(const std::vector<std::string>& texts, Padding padding,
                                                  bool truncation, std::optional<int64_t> max_length) const {
  std::vector<Encoding> batch;
  batch.reserve(texts.size());
  for (const std::string& t : texts) {
    Encoding e;
    e.input_ids = encode(t, true, truncation, max_length);
    e.token_type_ids.assign(e.input_ids.size(), 0);
    e.attention_mask.assign(e.input_ids.size(), 1);
    batch.push_back(std::move(e));
  }
  return pad(std::move(batch), padding, max_length);
}

std::vector<Encoding> BertTokenizer::encode_pair_batch(
    const std::vector<std::pair<std::string, std::string>>& pairs, Padding padding, Truncation truncation,
    std::optional<int64_t> max_length) const {
  std::vector<Encoding> batch;
  batch.reserve(pairs.size());
  for (const auto& [a, b] : pairs) batch.push_back(encode_pair(a, b, truncation, max_length));
  return pad(std::move(batch), padding, max_length);
}

BatchEncoding BertTokenizer::to_tensors(const std::vector<Encoding>& batch) {
  const size_t length = batch.empty() ? 0 : batch[0].input_ids.size();
  std::vector<int64_t> ids, mask, types;
  for (const Encoding& e : batch) {
    BM_CHECK_VALUE(e.input_ids.size() == length, kOp,
                   "texts of different lengths cannot form a tensor (", e.input_ids.size(), " vs ", length,
                   " tokens); pad them");
    ids.insert(ids.end(), e.input_ids.begin(), e.input_ids.end());
    mask.insert(mask.end(), e.attention_mask.begin(), e.attention_mask.end());
    types.insert(types.end(), e.token_type_ids.begin(), e.token_type_ids.end());
  }
  const Shape shape{static_cast<int64_t>(batch.size()), static_cast<int64_t>(length)};
  return {from_vector(ids, shape), from_vector(mask, shape), from_vector(types, shape)};
}

BatchEncoding BertTokenizer::operator()(const std::vector<std::string>& texts, Padding padding, bool truncation,
                                        std::optional<int64_t> max_length) const {
  return to_tensors(encode_batch(texts, padding, truncation, max_length));
}

BatchEncoding BertTokenizer::pairs(const std::vector<std::pair<std::string, std::string>>& pairs,
                                   Padding padding, Truncation truncation, std::optional<int64_t> max_length) const {
  return to_tensors(encode_pair_batch(pairs, padding, truncation, max_length));
}

}  // namespace bigmodel::data
