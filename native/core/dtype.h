// Element types. float32 everywhere by default; bfloat16 for the activations of mixed-precision
// training (--precision bf16: ops compute in float32 and round their outputs to bf16); uint8 is
// for uploaded pixels and masks.
#pragma once
#include <cstddef>
#include <string>

#include "error.h"

namespace patho {

// 2 was float16, declared and never built: the numbers stay, as the CUDA plugin's ABI shares them.
enum class DType { F32 = 0, BF16 = 1, U8 = 3 };

inline size_t dtypeSize(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::BF16:
      return 2;
    case DType::U8:
      return 1;
  }
  return 0;
}

inline const char* dtypeName(DType t) {
  switch (t) {
    case DType::F32:
      return "float32";
    case DType::BF16:
      return "bfloat16";
    case DType::U8:
      return "uint8";
  }
  return "?";
}

inline DType parseDType(const std::string& s) {
  if (s == "float32") return DType::F32;
  if (s == "bfloat16") return DType::BF16;
  if (s == "uint8") return DType::U8;
  PATHO_THROW("ERR_PATHO_DTYPE", "Expected one of float32, bfloat16, uint8 for dtype but received '" << s << "'");
}

}  // namespace patho
