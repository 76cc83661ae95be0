// bigmodel::data::BertTokenizer, BERT's WordPiece tokenizer in C++, mirroring
// python/bigmodel/models/tokenizer.py token for token: basic tokenization (clean, NFC, CJK
// split, lower case, accent stripping, punctuation split), greedy longest-match WordPiece
// with "##" continuations, [CLS]/[SEP] (and sentence pairs with token_type_ids),
// truncation and batch padding into int64 tensors. Errors are ValueError "[tokenizer] ...".
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace bigmodel::data {

struct TokenizerOptions {
  bool do_lower_case = true;
  bool tokenize_chinese_chars = true;
  std::optional<bool> strip_accents;  // unset: follows do_lower_case, as BERT's uncased models
  std::string unk_token = "[UNK]", sep_token = "[SEP]", pad_token = "[PAD]", cls_token = "[CLS]",
              mask_token = "[MASK]";
  int64_t model_max_length = 512;   // the max_length used when none is given
  int64_t max_input_chars_per_word = 100;  // longer words become [UNK]
};

// token -> id, in the order the tokens were read (a vocab.txt's line order).
class Vocab {
 public:
  Vocab() = default;
  // Adds `token` with `id` unless the token is already there (a repeated vocab.txt line
  // keeps its first id, as Python's setdefault).
  void add(const std::string& token, int64_t id);
  // The id of `token`, or -1.
  int64_t find(const std::string& token) const;
  size_t size() const { return entries_.size(); }
  const std::vector<std::pair<std::string, int64_t>>& entries() const { return entries_; }

  // vocab.txt: one token a line (\n, \r\n or \r end a line, as Python's text mode reads
  // it), id = line number. `source` names the file in errors (invalid UTF-8, with its line).
  static Vocab from_text(const std::string& bytes, const std::string& source = "vocab.txt");
  // tokenizer.json's model.vocab object (token -> integer id).
  static Vocab from_tokenizer_json(const std::string& bytes, const std::string& source = "tokenizer.json");
  // By file name: *.json is a tokenizer.json, anything else a vocab.txt.
  static Vocab from_file(const std::string& path);

 private:
  std::unordered_map<std::string, int64_t> ids_;
  std::vector<std::pair<std::string, int64_t>> entries_;
};

// One encoded text (or pair): equal-length lists.
struct Encoding {
  std::vector<int64_t> input_ids, token_type_ids, attention_mask;
};

// A padded batch: int64 tensors [batch, length].
struct BatchEncoding {
  Tensor input_ids, attention_mask, token_type_ids;
};

enum class Padding { None, Longest, MaxLength };
// How a sentence pair is cut to max_length (a single text always keeps its first pieces).
enum class Truncation { None, LongestFirst, OnlyFirst, OnlySecond };

class BertTokenizer {
 public:
  // Throws ValueError when the vocabulary lacks a special token.
  explicit BertTokenizer(Vocab vocab, TokenizerOptions options = {});
  // dir/vocab.txt (else dir/tokenizer.json); options from dir/tokenizer.json's normalizer and
  // then dir/tokenizer_config.json (do_lower_case, tokenize_chinese_chars, strip_accents,
  // model_max_length), each when present.
  static BertTokenizer from_pretrained(const std::string& directory);

  const Vocab& vocab() const { return vocab_; }
  const TokenizerOptions& options() const { return options_; }
  size_t size() const { return vocab_.size(); }
  int64_t pad_token_id() const { return vocab_.find(options_.pad_token); }
  int64_t cls_token_id() const { return vocab_.find(options_.cls_token); }
  int64_t sep_token_id() const { return vocab_.find(options_.sep_token); }
  int64_t unk_token_id() const { return vocab_.find(options_.unk_token); }

  // Words and punctuation of `text` (UTF-8; invalid bytes are dropped, as U+FFFD is).
  std::vector<std::string> basic_tokenize(const std::string& text) const;
  // The WordPiece split of one word ([unk] when it has no complete split).
  std::vector<std::string> wordpiece(const std::string& word) const;
  // Word pieces of `text`, without special tokens.
  std::vector<std::string> tokenize(const std::string& text) const;

  std::vector<int64_t> convert_tokens_to_ids(const std::vector<std::string>& tokens) const;
  std::vector<std::string> convert_ids_to_tokens(const std::vector<int64_t>& ids) const;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true) const;

  // [CLS] text [SEP]; truncation keeps the first max_length - 2 pieces (max_length unset:
  // model_max_length).
  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens = true, bool truncation = true,
                              std::optional<int64_t> max_length = std::nullopt) const;
  // [CLS] a [SEP] b [SEP], token_type_ids 0 for "[CLS] a [SEP]" and 1 for "b [SEP]" (without
  // special tokens: a b, types 0 / 1). Truncation fits max_length (unset: model_max_length):
  // LongestFirst is the rule of the Rust tokenizers library (the shorter text keeps all its
  // pieces when the longer can absorb the cut, else floor(room / 2) and the longer the
  // rest); OnlyFirst / OnlySecond cut one text and throw when that cannot fit.
  Encoding encode_pair(const std::string& a, const std::string& b, Truncation truncation = Truncation::LongestFirst,
                       std::optional<int64_t> max_length = std::nullopt, bool add_special_tokens = true) const;

  // Encodes and pads a batch (attention_mask 1 for tokens, 0 for padding). Padding::None
  // requires equal lengths (ValueError otherwise); MaxLength requires max_length.
  std::vector<Encoding> encode_batch(const std::vector<std::string>& texts, Padding padding = Padding::Longest,
                                     bool truncation = true, std::optional<int64_t> max_length = std::nullopt) const;
  std::vector<Encoding> encode_pair_batch(const std::vector<std::pair<std::string, std::string>>& pairs,
                                          Padding padding = Padding::Longest,
                                          Truncation truncation = Truncation::LongestFirst,
                                          std::optional<int64_t> max_length = std::nullopt) const;
  // The same as tensors [batch, length].
  BatchEncoding operator()(const std::vector<std::string>& texts, Padding padding = Padding::Longest,
                           bool truncation = true, std::optional<int64_t> max_length = std::nullopt) const;
  BatchEncoding pairs(const std::vector<std::pair<std::string, std::string>>& pairs,
                      Padding padding = Padding::Longest, Truncation truncation = Truncation::LongestFirst,
                      std::optional<int64_t> max_length = std::nullopt) const;

  // The batch as tensors (all rows must have one length).
  static BatchEncoding to_tensors(const std::vector<Encoding>& batch);

 private:
  std::vector<Encoding> pad(std::vector<Encoding> batch, Padding padding, std::optional<int64_t> max_length) const;
  std::vector<int64_t> ids_of(const std::string& text) const;
  Encoding with_specials(std::vector<int64_t> a, const std::vector<int64_t>* b, bool add_special_tokens) const;

  Vocab vocab_;
  TokenizerOptions options_;
  bool strip_accents_;
  std::vector<std::string> special_tokens_;
  std::unordered_map<int64_t, std::string> tokens_by_id_;
};

}  // namespace bigmodel::data
