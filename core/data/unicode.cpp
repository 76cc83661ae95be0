// UTF-8 coding, character classes, str.lower and NFC / NFD over the generated tables
// (unicode_tables.cpp). Each algorithm follows what CPython does, so the C++ tokenizer's
// output equals the Python tokenizer's for every input.
#include "core/data/unicode.h"

#include <algorithm>

#include "core/utf8.h"

namespace bigmodel::data::unicode {
namespace {

constexpr char32_t kReplacement = 0xFFFD;
// Hangul syllables decompose and compose by arithmetic (Unicode chapter 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

template <class Row>
const Row* find_range(const Row* rows, size_t n, char32_t cp) {
  // The last row whose first <= cp, if it also covers cp.
  const Row* end = rows + n;
  const Row* it = std::upper_bound(rows, end, cp, [](char32_t c, const Row& r) { return c < r.first; });
  if (it == rows) return nullptr;
  --it;
  return cp <= it->last ? it : nullptr;
}

const Decomposition* find_decomposition(char32_t cp) {
  const Decomposition* end = kDecompositions + kDecompositionsSize;
  const Decomposition* it =
      std::lower_bound(kDecompositions, end, cp, [](const Decomposition& d, char32_t c) { return d.cp < c; });
  return it != end && it->cp == cp ? it : nullptr;
}

char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const Composition* end = kCompositions + kCompositionsSize;
  const Composition* it = std::lower_bound(kCompositions, end, std::make_pair(a, b),
                                           [](const Composition& c, const std::pair<char32_t, char32_t>& key) {
                                             return c.first != key.first ? c.first < key.first : c.second < key.second;
                                           });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

void decompose_into(char32_t cp, std::u32string& out, int depth) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out += kLBase + s / kNCount;
    out += kVBase + (s % kNCount) / kTCount;
    if (s % kTCount) out += kTBase + s % kTCount;
    return;
  }
  const Decomposition* d = depth < 8 ? find_decomposition(cp) : nullptr;  // real chains are <= 4 deep
  if (!d) {
    out += cp;
    return;
  }
  decompose_into(d->first, out, depth + 1);
  if (d->second) decompose_into(d->second, out, depth + 1);
}

// One decoding step from bytes[i]: the code point (U+FFFD for an invalid maximal
// subsequence) and the index after what it consumed.
char32_t decode_one(const unsigned char* p, size_t n, size_t& i, bool& ok) {
  const unsigned c = p[i];
  ok = true;
  if (c < 0x80) {
    ++i;
    return c;
  }
  int need;
  unsigned lo = 0x80, hi = 0xBF;
  char32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2, cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;       // no overlongs
    else if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3, cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    ++i;
    ok = false;
    return kReplacement;
  }
  size_t j = i + 1;
  for (int k = 0; k < need; ++k, ++j) {
    const unsigned lo_k = k == 0 ? lo : 0x80, hi_k = k == 0 ? hi : 0xBF;
    if (j >= n || p[j] < lo_k || p[j] > hi_k) {
      i = j;  // the unexpected byte starts the next sequence
      ok = false;
      return kReplacement;
    }
    cp = (cp << 6) | (p[j] & 0x3F);
  }
  i = j;
  return cp;
}

}  // namespace

uint8_t properties(char32_t cp) {
  const PropertyRange* r = find_range(kProperties, kPropertiesSize, cp);
  return r ? r->value : 0;
}

int combining_class(char32_t cp) {
  if (cp < 0x300) return 0;  // fast path: nothing below U+0300 combines
  const PropertyRange* r = find_range(kCombiningClasses, kCombiningClassesSize, cp);
  return r ? r->value : 0;
}

std::u32string decode_utf8(const std::string& bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  bool ok;
  for (size_t i = 0; i < bytes.size();) out += decode_one(p, bytes.size(), i, ok);
  return out;
}

bool valid_utf8(const std::string& bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  bool ok = true;
  for (size_t i = 0; i < bytes.size() && ok;) decode_one(p, bytes.size(), i, ok);
  return ok;
}

void append_utf8(std::string& out, char32_t cp) { bigmodel::append_utf8(out, cp); }

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : text) append_utf8(out, cp);
  return out;
}

std::u32string to_lower(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  const size_t n = text.size();
  for (size_t i = 0; i < n; ++i) {
    const char32_t cp = text[i];
    if (cp < 0x80) {
      out += (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
      continue;
    }
    if (cp == 0x3A3) {
      // CPython's final-sigma rule: a cased letter (past case-ignorables) before, and no
      // cased letter (past case-ignorables) after, makes the final form.
      size_t j = i;
      char32_t c = 0;
      bool before = false;
      while (j > 0) {
        c = text[--j];
        if (!(properties(c) & kCaseIgnorable)) {
          before = (properties(c) & kCased) != 0;
          break;
        }
      }
      bool final_sigma = before;
      if (final_sigma) {
        size_t k = i + 1;
        while (k < n && (properties(text[k]) & kCaseIgnorable)) ++k;
        final_sigma = k == n || !(properties(text[k]) & kCased);
      }
      out += final_sigma ? 0x3C2 : 0x3C3;
      continue;
    }
    bool done = false;
    for (size_t m = 0; m < kLowerMultiSize && !done; ++m) {
      if (kLowerMulti[m].cp != cp) continue;
      for (char32_t l : kLowerMulti[m].lower)
        if (l) out += l;
      done = true;
    }
    if (done) continue;
    const LowerRun* r = find_range(kLowerRuns, kLowerRunsSize, cp);
    if (r && (r->step == 0 ? cp == r->first : (cp - r->first) % r->step == 0))
      out += static_cast<char32_t>(static_cast<int64_t>(cp) + r->delta);
    else
      out += cp;
  }
  return out;
}

std::u32string nfd(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t cp : text) decompose_into(cp, out, 0);
  // Canonical ordering: each run of combining marks sorted (stably) by combining class.
  size_t i = 0;
  while (i < out.size()) {
    if (combining_class(out[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && combining_class(out[j]) != 0) ++j;
    if (j - i > 1)
      std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(i), out.begin() + static_cast<std::ptrdiff_t>(j),
                       [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  return out;
}

std::u32string nfc(const std::u32string& text) {
  const std::u32string d = nfd(text);
  std::u32string out;
  out.reserve(d.size());
  size_t starter = std::u32string::npos;  // index in `out` of the last starter
  int last_ccc = 0;                        // class of the last character kept after it
  for (char32_t c : d) {
    const int ccc = combining_class(c);
    if (starter != std::u32string::npos) {
      const bool adjacent = starter + 1 == out.size();
      // Not blocked: adjacent to the starter, or everything between has a lower, nonzero class.
      if (adjacent || (last_ccc != 0 && last_ccc < ccc)) {
        if (const char32_t composite = compose_pair(out[starter], c)) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (ccc == 0) starter = out.size();
    last_ccc = ccc;
    out += c;
  }
  return out;
}

}  // namespace bigmodel::data::unicode
