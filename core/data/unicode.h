// The Unicode the BERT tokenizer needs, with no library beyond the C++ standard one: UTF-8
// decoding (invalid bytes become U+FFFD, as Python's errors="replace") and encoding, the
// character classes Python's unicodedata gives, str.lower, and NFC / NFD. The tables in
// unicode_tables.cpp are generated from Python's unicodedata (scripts/gen_unicode_tables.py).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace bigmodel::data::unicode {

// ---- generated tables (unicode_tables.cpp); sorted by code point ----
struct PropertyRange {
  uint32_t first, last;
  uint8_t value;
};
struct LowerRun {  // first..last stepping by `step` (1 or 2; 0 = a single code point) map to cp + delta
  uint32_t first, last;
  int32_t delta;
  uint8_t step;
};
struct LowerMulti {  // code points whose lower case is several code points (0-terminated)
  uint32_t cp;
  uint32_t lower[3];
};
struct Decomposition {  // canonical decomposition: first, second (0 for a singleton)
  uint32_t cp, first, second;
};
struct Composition {  // primary composites, sorted by (first, second)
  uint32_t first, second, composite;
};
extern const char* const kUnicodeVersion;
extern const PropertyRange kProperties[];
extern const size_t kPropertiesSize;
extern const PropertyRange kCombiningClasses[];
extern const size_t kCombiningClassesSize;
extern const LowerRun kLowerRuns[];
extern const size_t kLowerRunsSize;
extern const LowerMulti kLowerMulti[];
extern const size_t kLowerMultiSize;
extern const Decomposition kDecompositions[];
extern const size_t kDecompositionsSize;
extern const Composition kCompositions[];
extern const size_t kCompositionsSize;

// Property bits of kProperties.
enum : uint8_t {
  kZs = 1,              // category Zs (BERT's whitespace besides \t \n \r)
  kOther = 2,           // category C* (Cc, Cf, Cn, Co, Cs): BERT's "control"
  kPunctuation = 4,     // category P*
  kNonspacingMark = 8,  // category Mn (dropped by accent stripping)
  kCaseIgnorable = 16,  // str.lower's final-sigma rule skips these
  kCased = 32,          // cased and not case-ignorable
  kSpace = 64,          // Python's str.isspace (what str.split() splits on)
};

// ---- queries ----
uint8_t properties(char32_t cp);
int combining_class(char32_t cp);

// UTF-8 -> code points; each maximal invalid subsequence becomes one U+FFFD.
std::u32string decode_utf8(const std::string& bytes);
// True when `bytes` is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool valid_utf8(const std::string& bytes);
std::string encode_utf8(const std::u32string& text);
void append_utf8(std::string& out, char32_t cp);

// Python's str.lower (full mappings, and final sigma in context).
std::u32string to_lower(const std::u32string& text);
// Python's unicodedata.normalize("NFD" / "NFC", text).
std::u32string nfd(const std::u32string& text);
std::u32string nfc(const std::u32string& text);

}  // namespace bigmodel::data::unicode
