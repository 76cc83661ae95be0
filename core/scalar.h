// Scalar: a Python-like number (bool, integer or floating) passed to ops such as add(t, 2).
#pragma once
#include <cstdint>
#include <type_traits>

#include "core/dtype.h"

namespace bigmodel {

class Scalar {
 public:
  enum class Kind : uint8_t { Bool, Int, Float };
  Scalar() : kind_(Kind::Int), i_(0), d_(0) {}
  Scalar(bool b) : kind_(Kind::Bool), i_(b), d_(b) {}  // NOLINT: numbers convert implicitly
  Scalar(int v) : kind_(Kind::Int), i_(v), d_(v) {}  // NOLINT
  Scalar(int64_t v) : kind_(Kind::Int), i_(v), d_(static_cast<double>(v)) {}  // NOLINT
  Scalar(double v) : kind_(Kind::Float), i_(static_cast<int64_t>(v)), d_(v) {}  // NOLINT
  Scalar(float v) : Scalar(static_cast<double>(v)) {}  // NOLINT

  Kind kind() const { return kind_; }
  bool is_floating() const { return kind_ == Kind::Float; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  double to_double() const { return d_; }
  int64_t to_int() const { return i_; }
  // The dtype a lone scalar of this kind becomes (bool, int64, float32).
  DType default_dtype() const {
    return kind_ == Kind::Bool ? DType::Bool : (kind_ == Kind::Int ? kDefaultInt : kDefaultFloat);
  }
  template <typename T> T to() const {
    if constexpr (std::is_same_v<T, bool>) return kind_ == Kind::Float ? d_ != 0.0 : i_ != 0;
    else if constexpr (std::is_integral_v<T>) return static_cast<T>(kind_ == Kind::Float ? static_cast<int64_t>(d_) : i_);
    else return static_cast<T>(kind_ == Kind::Float ? d_ : static_cast<double>(i_));
  }

 private:
  Kind kind_;
  int64_t i_;
  double d_;
};

}  // namespace bigmodel
