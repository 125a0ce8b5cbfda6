// Shapes from JS: every dimension a JS number that is an integer in [0, 2^53] (so NaN, negatives,
// fractions, infinities and 2^62 are refused by name, e.g. "empty: Expected shape[1] to be ..."),
// and the whole shape then passes checkedBytes (tensor.h) where a tensor is made from it.
#pragma once
#include <napi.h>

#include <cmath>
#include <string>

#include "core/tensor.h"

namespace patho {

inline int64_t dimArg(const Napi::Value& v, const char* fn, const std::string& name) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : std::nan("");
  if (!(std::isfinite(d) && d >= 0 && d <= double(kMaxDim) && d == std::floor(d))) {
    std::string got = v.IsNumber()      ? Napi::Number(v.Env(), v).ToString().Utf8Value()
                      : v.IsUndefined() ? "undefined"
                      : v.IsNull()      ? "null"
                                        : "a " + std::string(v.IsString() ? "string" : "non-number");
    PATHO_THROW("ERR_PATHO_SHAPE",
                fn << ": Expected " << name << " to be an integer in [0, 2^53] but received " << got);
  }
  return int64_t(d);
}

// shape: number[] -> Shape, each entry checked by dimArg as `<name>[i]`.
inline Shape shapeArg(const Napi::Value& v, const char* fn, const char* name) {
  PATHO_CHECK(v.IsArray(), "ERR_PATHO_SHAPE", fn << ": Expected an array of dimensions for " << name);
  auto arr = v.As<Napi::Array>();
  PATHO_CHECK(arr.Length() <= 8, "ERR_PATHO_SHAPE",
              fn << ": Expected at most 8 dimensions for " << name << " but received " << arr.Length());
  Shape s;
  for (uint32_t i = 0; i < arr.Length(); i++)
    s.push_back(dimArg(arr.Get(i), fn, std::string(name) + "[" + std::to_string(i) + "]"));
  return s;
}

}  // namespace patho
