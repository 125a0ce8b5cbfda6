// bf16_support.h: the ISA check and a one-time probe (primitive descriptors only, nothing runs).
#include "bf16_support.h"

namespace patho {

bool cpuBf16Native() {
  const auto isa = dnnl::get_effective_cpu_isa();  // honours DNNL_MAX_CPU_ISA
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

bool cpuBf16Kernels() {
  // The configurations conv.cc and eltwise.cc create most: a 3x3 channels-last convolution (whose
  // weights oneDNN may block) and a flat ReLU. Thread-safe: a function-local static.
  static const bool yes = [] {
    using dnnl::memory;
    using tag = memory::format_tag;
    const auto bf16 = memory::data_type::bf16;
    try {
      dnnl::engine engine(dnnl::engine::kind::cpu, 0);
      memory::desc src({1, 16, 8, 8}, bf16, tag::nhwc), wei({16, 16, 3, 3}, bf16, tag::any),
          bias({16}, memory::data_type::f32, tag::x);
      dnnl::convolution_forward::desc conv(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src,
                                           wei, bias, src, {1, 1}, {1, 1}, {1, 1});
      dnnl::convolution_forward::primitive_desc convPd(conv, engine);
      memory::desc flat({64}, bf16, tag::a);
      dnnl::eltwise_forward::desc relu(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_relu, flat, 0.f,
                                       0.f);
      dnnl::eltwise_forward::primitive_desc reluPd(relu, engine);
      return true;
    } catch (const dnnl::error&) {
      return false;  // unimplemented (or oneDNN could not start: then nothing runs anyway)
    }
  }();
  return yes;
}

}  // namespace patho
