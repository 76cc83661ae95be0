// libFuzzer target for the safetensors reader (scripts/fuzz.sh builds and runs it).
// Contract under test: any byte string either parses or throws bigmodel::Error; any other
// exception, sanitizer report, crash or hang is a bug. A file that parses must also survive a
// serialize/deserialize round trip with the same names, dtypes, shapes and bytes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "core/error.h"
#include "core/safetensors.h"

namespace st = bigmodel::safetensors;

namespace {

[[noreturn]] void die(const char* what, const char* detail) {
  std::fprintf(stderr, "fuzz_safetensors: %s: %s\n", what, detail);
  std::abort();
}

size_t nbytes(const bigmodel::Tensor& t) { return static_cast<size_t>(t.numel()) * bigmodel::itemsize(t.dtype()); }

void check_round_trip(const st::Contents& c) {
  const st::Contents again = st::deserialize(st::serialize(c.tensors, c.metadata));
  if (again.metadata != c.metadata) die("round trip", "metadata differs");
  if (again.tensors.size() != c.tensors.size()) die("round trip", "tensor count differs");
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const auto& [name, a] = c.tensors[i];
    const auto& [name2, b] = again.tensors[i];
    if (name != name2) die("round trip", name.c_str());
    if (a.dtype() != b.dtype() || a.sizes() != b.sizes()) die("round trip: dtype/shape differs", name.c_str());
    const size_t n = nbytes(a);
    if (n && std::memcmp(a.data_ptr(), b.data_ptr(), n) != 0) die("round trip: bytes differ", name.c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  st::Contents c;
  try {
    c = st::deserialize(reinterpret_cast<const char*>(data), size);
  } catch (const bigmodel::Error&) {
    return 0;  // a rejected file: the expected outcome for most inputs
  } catch (const std::exception& e) {
    die("deserialize threw a non-bigmodel exception", e.what());
  }
  try {
    check_round_trip(c);
  } catch (const std::exception& e) {
    die("round trip of a file that parsed threw", e.what());
  }
  return 0;
}
