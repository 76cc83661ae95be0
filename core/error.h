// The exception hierarchy every part of bigmodel throws, and the check macros that build
// messages. Python maps: ValueError <- ShapeError/ValueError, TypeError <- DTypeError,
// IndexError <- IndexError, RuntimeError <- Error/DeviceError, bigmodel.OutOfMemoryError.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace bigmodel {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};
class ValueError : public Error { using Error::Error; };   // bad argument values
class ShapeError : public ValueError { using ValueError::ValueError; };  // incompatible shapes
class DTypeError : public Error { using Error::Error; };   // unsupported or mismatched dtypes
class IndexError : public Error { using Error::Error; };   // index out of range
class DeviceError : public Error { using Error::Error; };  // device mismatch or unavailable
class OutOfMemoryError : public Error { using Error::Error; };
class NotImplementedError : public Error { using Error::Error; };

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

}  // namespace bigmodel

// BM_CHECK(cond, ErrorType, "op", message parts...) throws ErrorType("[op] message").
#define BM_CHECK(cond, ErrType, op, ...)                                  \
  do {                                                                    \
    if (!(cond)) throw ErrType(::bigmodel::str_cat("[", op, "] ", __VA_ARGS__)); \
  } while (0)

#define BM_CHECK_VALUE(cond, op, ...) BM_CHECK(cond, ::bigmodel::ValueError, op, __VA_ARGS__)
#define BM_CHECK_SHAPE(cond, op, ...) BM_CHECK(cond, ::bigmodel::ShapeError, op, __VA_ARGS__)
#define BM_CHECK_DTYPE(cond, op, ...) BM_CHECK(cond, ::bigmodel::DTypeError, op, __VA_ARGS__)
#define BM_CHECK_INDEX(cond, op, ...) BM_CHECK(cond, ::bigmodel::IndexError, op, __VA_ARGS__)
#define BM_CHECK_DEVICE(cond, op, ...) BM_CHECK(cond, ::bigmodel::DeviceError, op, __VA_ARGS__)
#define BM_CHECK_RUNTIME(cond, op, ...) BM_CHECK(cond, ::bigmodel::Error, op, __VA_ARGS__)
