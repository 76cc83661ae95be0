// libFuzzer target for the IDX parser (core/data/idx.cpp; scripts/fuzz.sh builds and runs it).
// Contract under test: any byte string either parses or throws bigmodel::ValueError; any other
// exception, sanitizer report, crash or hang is a bug. A parse must be self-consistent
// (numel * element size == data bytes) and serialize back to exactly the input bytes.
// Seeds: tests/fuzz/corpus_idx (each element type, a zero dim, 255 dims, and the known
// malformed cases: truncated magic/header, wrong magic, unknown type, 0 dims, dims product
// overflow, payload too short / too long).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

#include "core/data/idx.h"
#include "core/error.h"

namespace idx = bigmodel::data;

namespace {

[[noreturn]] void die(const char* what, const char* detail) {
  std::fprintf(stderr, "fuzz_idx: %s: %s\n", what, detail);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  idx::IdxArray a;
  try {
    a = idx::parse_idx(data, size);
  } catch (const bigmodel::ValueError&) {
    return 0;  // a rejected input: the expected outcome for most inputs
  } catch (const std::exception& e) {
    die("parse_idx threw something other than ValueError", e.what());
  }
  if (a.dims.empty()) die("parsed array", "has no dims");
  if (static_cast<uint64_t>(a.numel()) * idx::idx_type_size(a.type) != a.data.size()) die("parsed array", "numel * element size != data bytes");
  for (int64_t i = 0; i < a.numel() && i < 64; ++i) (void)a.value(i);  // reads stay in bounds (ASan)
  std::vector<uint8_t> again;
  try {
    again = idx::serialize_idx(a);
  } catch (const std::exception& e) {
    die("serialize_idx of a parsed array threw", e.what());
  }
  if (again.size() != size || !std::equal(again.begin(), again.end(), data)) die("round trip", "bytes differ");
  return 0;
}
