// File reading and gzip decompression (see gzip.h); the only zlib user in libbigmodel.
#include "core/data/gzip.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <cstddef>

#include "core/error.h"

#ifdef BIGMODEL_WITH_ZLIB
#include <zlib.h>
#endif

namespace bigmodel::data {

std::vector<uint8_t> read_file(const std::string& path, const std::string& op) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  BM_CHECK_RUNTIME(f != nullptr, op, "cannot open ", path, ": ", std::strerror(errno));
  std::vector<uint8_t> out;
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) out.insert(out.end(), chunk, chunk + n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  BM_CHECK_RUNTIME(!failed, op, "error reading ", path);
  return out;
}

bool is_gzip(const uint8_t* data, size_t size) { return size >= 2 && data[0] == 0x1f && data[1] == 0x8b; }

#ifdef BIGMODEL_WITH_ZLIB

std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& source, uint64_t max_bytes) {
  const char* op = "gzip";
  BM_CHECK_VALUE(is_gzip(data, size), op, source, " is not gzip data (no 1f 8b magic)");
  z_stream zs{};
  BM_CHECK_RUNTIME(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, op, "inflateInit2 failed");
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(size_t{1} << 16);
  size_t fed = 0;  // bytes of `data` handed to zlib so far
  try {
    for (;;) {
      if (zs.avail_in == 0 && fed < size) {
        const size_t feed = std::min<size_t>(size - fed, size_t{1} << 30);  // zlib counts in uInt
        zs.next_in = const_cast<Bytef*>(data + fed);
        zs.avail_in = static_cast<uInt>(feed);
        fed += feed;
      }
      zs.next_out = chunk.data();
      zs.avail_out = static_cast<uInt>(chunk.size());
      const int rc = inflate(&zs, Z_NO_FLUSH);
      // Z_BUF_ERROR: no progress without more input; at the end of the data that means truncation.
      BM_CHECK_VALUE(!(rc == Z_BUF_ERROR && zs.avail_in == 0 && fed == size), op, source,
                     " is truncated (the gzip stream ends early)");
      BM_CHECK_VALUE(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR, op, "corrupt gzip data in ", source, ": ",
                     zs.msg ? zs.msg : "inflate failed");
      const size_t produced = chunk.size() - zs.avail_out;
      BM_CHECK_VALUE(out.size() + produced <= max_bytes, op, source, " decompresses to more than ", max_bytes, " bytes");
      out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(produced));
      if (rc != Z_STREAM_END) continue;
      // Another member may follow (cat a.gz b.gz); trailing zero padding is tolerated.
      const uint8_t* rest = zs.next_in;
      const size_t left = static_cast<size_t>(data + size - rest);
      bool padding = true;
      for (size_t i = 0; i < left && padding; ++i) padding = rest[i] == 0;
      if (padding) break;
      BM_CHECK_VALUE(is_gzip(rest, left), op, "corrupt gzip data in ", source, ": garbage after the end of the stream");
      inflateReset(&zs);
    }
  } catch (...) {
    inflateEnd(&zs);
    throw;
  }
  inflateEnd(&zs);
  return out;
}

#else

std::vector<uint8_t> gunzip(const uint8_t*, size_t, const std::string& source, uint64_t) {
  throw Error(str_cat("[gzip] cannot read ", source,
                      ": bigmodel was built without zlib (apt-get install zlib1g-dev, then rebuild)"));
}

#endif

std::vector<uint8_t> read_maybe_gzip(const std::string& path, const std::string& op) {
  std::vector<uint8_t> bytes = read_file(path, op);
  if (!is_gzip(bytes.data(), bytes.size())) return bytes;
  return gunzip(bytes.data(), bytes.size(), path);
}

}  // namespace bigmodel::data
