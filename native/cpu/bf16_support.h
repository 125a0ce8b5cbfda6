// bfloat16 on this CPU as oneDNN sees it: whether it has native bf16 instructions, and whether it
// has bf16 kernels at all. Where it has none (oneDNN 2.6 on AVX2-only CPUs), conv.cc and
// eltwise.cc stage bf16 calls through float32 (staging.h, keepLayout): same results, fp32 speed.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

namespace patho {

// AVX512_BF16 or AMX: bf16 convolutions run faster than float32 (--precision auto picks bf16).
bool cpuBf16Native();
// oneDNN has bf16 convolution and activation kernels here (native, or emulated with AVX-512 on
// CPUs without AVX512_BF16); false: every bf16 convolution and activation is staged through float32.
bool cpuBf16Kernels();

namespace cpu {
// The error oneDNN gives when it has no kernel for a configuration: the trigger of the fallback.
inline bool isUnimplemented(const dnnl::error& e) { return e.status == dnnl_unimplemented; }
}  // namespace cpu

}  // namespace patho
