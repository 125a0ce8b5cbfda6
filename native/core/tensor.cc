// Tensor helpers: shape printing and element counts.
#include "tensor.h"

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

std::string Tensor::describe() const {
  return std::string(dtypeName(dtype_)) + shapeStr(shape_) + (nhwc() ? " nhwc" : "") + " on " + device_.str();
}

Layout parseLayout(const std::string& s) {
  if (s == "nchw") return Layout::NCHW;
  if (s == "nhwc") return Layout::NHWC;
  PATHO_THROW("ERR_PATHO_ARG", "Expected 'nchw' or 'nhwc' for layout but received '" << s << "'");
}

}  // namespace patho
