// DType names, sizes and promotion.
#include "core/dtype.h"

#include "core/error.h"

namespace bigmodel {

size_t itemsize(DType t) {
  switch (t) {
    case DType::Bool: return 1;
    case DType::Int32: return 4;
    case DType::Int64: return 8;
    case DType::Float16: return 2;
    case DType::BFloat16: return 2;
    case DType::Float32: return 4;
    case DType::Float64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Bool: return "bool";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
  }
  return "?";
}

DType dtype_from_name(const std::string& name) {
  for (int i = 0; i < kNumDTypes; ++i) {
    auto t = static_cast<DType>(i);
    if (name == dtype_name(t)) return t;
  }
  if (name == "float" || name == "float32") return DType::Float32;
  if (name == "double") return DType::Float64;
  if (name == "half") return DType::Float16;
  if (name == "int" ) return DType::Int32;
  if (name == "long") return DType::Int64;
  throw ValueError(str_cat("[dtype] unknown dtype '", name, "'"));
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  int ca = dtype_category(a), cb = dtype_category(b);
  if (ca != cb) return ca > cb ? a : b;
  if (ca == 1) return DType::Int64;  // int32 with int64
  // Both floating and different.
  auto rank = [](DType t) {
    switch (t) {
      case DType::Float16: return 1;
      case DType::BFloat16: return 1;
      case DType::Float32: return 2;
      default: return 3;
    }
  };
  int ra = rank(a), rb = rank(b);
  if (ra == 1 && rb == 1) return DType::Float32;  // float16 with bfloat16
  return ra > rb ? a : b;
}

}  // namespace bigmodel
