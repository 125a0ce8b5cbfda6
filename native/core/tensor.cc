// Tensor helpers: shape printing, element counts and the overflow check of every shape.
#include "tensor.h"

#include "error.h"

#include <sstream>

namespace patho {

std::string shapeStr(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); i++) os << (i ? "," : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shapeNumel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

size_t checkedBytes(const Shape& s, size_t elemSize, const std::string& what) {
  int64_t product = 1;  // of the non-zero dims
  bool zero = false;
  for (size_t i = 0; i < s.size(); i++) {
    PATHO_CHECK(
        s[i] >= 0 && s[i] <= kMaxDim, "ERR_PATHO_SHAPE",
        what << ": Expected dimensions in [0, 2^53] but received " << shapeStr(s) << " (dimension " << i << ")");
    if (s[i] == 0) {
      zero = true;
      continue;
    }
    PATHO_CHECK(!__builtin_mul_overflow(product, s[i], &product), "ERR_PATHO_SHAPE",
                what << ": the shape " << shapeStr(s) << " has more elements than 64 bits can count");
  }
  int64_t bytes = 0;
  PATHO_CHECK(!__builtin_mul_overflow(product, int64_t(elemSize), &bytes), "ERR_PATHO_SHAPE",
              what << ": the shape " << shapeStr(s) << " needs more bytes than 64 bits can count (" << elemSize
                   << " per element)");
  return zero ? 0 : size_t(bytes);
}

std::string Tensor::describe() const {
  return std::string(dtypeName(dtype_)) + shapeStr(shape_) + (nhwc() ? " nhwc" : "") + " on " + device_.str();
}

Layout parseLayout(const std::string& s) {
  if (s == "nchw") return Layout::NCHW;
  if (s == "nhwc") return Layout::NHWC;
  PATHO_THROW("ERR_PATHO_ARG", "Expected 'nchw' or 'nhwc' for layout but received '" << s << "'");
}

}  // namespace patho
