// CpuBackend skeleton: memory, transfers and elementwise ops. The NN ops are filled in by the
// CPU-ops work (one file per concept in native/cpu/).
#include "cpu_backend.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace patho {
namespace {

void* hostAlloc(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes) != 0 || !p)
    PATHO_THROW("ERR_PATHO_OOM", "cpu: could not allocate " << bytes << " bytes of host memory");
  return p;
}

#define PENDING(op) PATHO_THROW("ERR_PATHO_INTERNAL", "cpu: " #op " is not built yet")

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int index) : index_(index), alloc_(hostAlloc, [](void* p) { std::free(p); }) {}
  Device device() const override { return Device{Device::Kind::CPU, index_}; }
  std::string name() const override { return "oneDNN " + oneDnnVersion() + " (" + oneDnnIsa() + ")"; }
  CachingAllocator& allocator() override { return alloc_; }

  void copyFromHost(const Tensor& dst, const void* src, size_t bytes) override { std::memcpy(dst.raw(), src, bytes); }
  void copyToHost(void* dst, const Tensor& src, size_t bytes) override { std::memcpy(dst, src.raw(), bytes); }
  void synchronize() override {}

  void fill(const Tensor& y, float v) override {
    float* p = y.f32();
    int64_t n = y.numel();
    for (int64_t i = 0; i < n; i++) p[i] = v;
  }
  void copy(const Tensor& dst, const Tensor& src) override { std::memmove(dst.raw(), src.raw(), src.bytes()); }
  void scale(const Tensor& y, float a) override {
    float* p = y.f32();
    int64_t n = y.numel();
    for (int64_t i = 0; i < n; i++) p[i] *= a;
  }
  void axpy(const Tensor& y, const Tensor& x, float a) override {
    float* py = y.f32();
    const float* px = x.f32();
    int64_t n = y.numel();
    for (int64_t i = 0; i < n; i++) py[i] += a * px[i];
  }
  void sumSquares(const Tensor& x, const Tensor& out) override {
    const float* p = x.f32();
    double s = 0;
    for (int64_t i = 0; i < x.numel(); i++) s += double(p[i]) * p[i];
    out.f32()[0] = float(s);
  }

  void conv2dForward(const Tensor&, const Tensor&, const Tensor&, const Tensor&) override { PENDING(conv2dForward); }
  void conv2dBackwardData(const Tensor&, const Tensor&, const Tensor&) override { PENDING(conv2dBackwardData); }
  void conv2dBackwardFilter(const Tensor&, const Tensor&, const Tensor&, const Tensor&) override { PENDING(conv2dBackwardFilter); }
  void batchNormForwardTraining(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, float, float,
                                const Tensor&, const Tensor&, const Tensor&) override { PENDING(batchNormForwardTraining); }
  void batchNormForwardInference(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, float,
                                 const Tensor&) override { PENDING(batchNormForwardInference); }
  void batchNormBackward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&, const Tensor&) override { PENDING(batchNormBackward); }
  void reluForward(const Tensor&, const Tensor&) override { PENDING(reluForward); }
  void reluBackward(const Tensor&, const Tensor&, const Tensor&) override { PENDING(reluBackward); }
  void sigmoidForward(const Tensor&, const Tensor&) override { PENDING(sigmoidForward); }
  void maxPool2dForward(const Tensor&, const Tensor&) override { PENDING(maxPool2dForward); }
  void maxPool2dBackward(const Tensor&, const Tensor&, const Tensor&, const Tensor&) override { PENDING(maxPool2dBackward); }
  void upsampleBilinear2xForward(const Tensor&, const Tensor&) override { PENDING(upsampleBilinear2xForward); }
  void upsampleBilinear2xBackward(const Tensor&, const Tensor&) override { PENDING(upsampleBilinear2xBackward); }
  void concatChannels(const Tensor&, const Tensor&, const Tensor&) override { PENDING(concatChannels); }
  void splitChannels(const Tensor&, const Tensor&, const Tensor&) override { PENDING(splitChannels); }
  void bceJaccardForward(const Tensor&, const Tensor&, float, float, const Tensor&, const Tensor&) override { PENDING(bceJaccardForward); }
  void bceJaccardBackward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, float, float, const Tensor&) override { PENDING(bceJaccardBackward); }
  void diceLossForward(const Tensor&, const Tensor&, float, const Tensor&, const Tensor&) override { PENDING(diceLossForward); }
  void diceLossBackward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, float, const Tensor&) override { PENDING(diceLossBackward); }
  void segmentationCounts(const Tensor&, const Tensor&, const Tensor&, const Tensor&) override { PENDING(segmentationCounts); }
  void sgdUpdate(const Tensor&, const Tensor&, const Tensor&, const SgdParams&) override { PENDING(sgdUpdate); }
  void adamUpdate(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const AdamParams&) override { PENDING(adamUpdate); }
  void clipGradNorm(const Tensor&, float, const Tensor&) override { PENDING(clipGradNorm); }
  void normalizeImagesU8(const Tensor&, const std::vector<float>&, const std::vector<float>&, const Tensor&) override { PENDING(normalizeImagesU8); }
  void masksU8ToFloat(const Tensor&, const Tensor&) override { PENDING(masksU8ToFloat); }

 private:
  int index_;
  CachingAllocator alloc_;
};

}  // namespace

std::unique_ptr<Backend> createCpuBackend(int index) { return std::make_unique<CpuBackend>(index); }

std::string oneDnnVersion() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

std::string oneDnnIsa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    default: return "other";
  }
}

}  // namespace patho
