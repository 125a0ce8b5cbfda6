// CpuBackend: the Backend of one CPU device. It owns the memory allocator and the oneDNN state,
// and dispatches each op to its free function (one file per concept, declared in cpu_ops.h).
// Batch norm, pooling and upsampling loops take float32 NCHW and NHWC of either dtype; their
// bfloat16 NCHW calls go through Staging (float32 NCHW scratch in, outputs rounded once).
#include "cpu_backend.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <oneapi/dnnl/dnnl_debug.h>

#include <cstdlib>
#include <cstring>

#include "cpu_ops.h"
#include "multiclass_ops.h"
#include "staging.h"

namespace patho {
namespace cpu {

ScratchBuffer::~ScratchBuffer() { std::free(ptr_); }

void* ScratchBuffer::get(size_t bytes) {
  if (ptr_ && bytes <= bytes_) return ptr_;
  std::free(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
  size_t want = ((bytes + 4095) & ~size_t(4095)) + 4096 * (bytes == 0);
  if (posix_memalign(&ptr_, 64, want) != 0 || !ptr_) {
    ptr_ = nullptr;
    PATHO_THROW("ERR_PATHO_OOM", "cpu: could not allocate " << want << " bytes of scratch memory");
  }
  bytes_ = want;
  return ptr_;
}

void throwDnnl(const char* op, const dnnl::error& e) {
  PATHO_THROW("ERR_PATHO_DNNL", op << ": " << e.what() << " (" << dnnl_status2str(e.status) << ")");
}

}  // namespace cpu

namespace {

void* hostAlloc(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes) != 0 || !p)
    PATHO_THROW("ERR_PATHO_OOM", "cpu: could not allocate " << bytes << " bytes of host memory");
  return p;
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int index) : index_(index), alloc_(hostAlloc, [](void* p) { std::free(p); }) {}
  Device device() const override { return Device{Device::Kind::CPU, index_}; }
  std::string name() const override { return "oneDNN " + oneDnnVersion() + " (" + oneDnnIsa() + ")"; }
  CachingAllocator& allocator() override { return alloc_; }

  void copyFromHost(const Tensor& dst, const void* src, size_t bytes) override { std::memcpy(dst.raw(), src, bytes); }
  void copyToHost(void* dst, const Tensor& src, size_t bytes) override { std::memcpy(dst, src.raw(), bytes); }
  void synchronize() override {}

  void fill(const Tensor& y, float v) override { cpu::fill(y, v); }
  void copy(const Tensor& dst, const Tensor& src) override { cpu::copy(dst, src); }
  void scale(const Tensor& y, float a) override { cpu::scale(y, a); }
  void axpy(const Tensor& y, const Tensor& x, float a) override { cpu::axpy(y, x, a); }
  void sumSquares(const Tensor& x, const Tensor& out) override {
    out.f32()[0] = float(cpu::sumSquares(x.f32(), x.numel()));
  }
  void convert(const Tensor& src, const Tensor& dst) override { cpu::convert(ctx(), src, dst); }

  void conv2dForward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) override {
    cpu::conv2dForward(ctx(), x, w, b, y);
  }
  void conv2dBackwardData(const Tensor& dy, const Tensor& w, const Tensor& dx) override {
    cpu::conv2dBackwardData(ctx(), dy, w, dx);
  }
  void conv2dBackwardFilter(const Tensor& x, const Tensor& dy, const Tensor& dw, const Tensor& db) override {
    cpu::conv2dBackwardFilter(ctx(), x, dy, dw, db);
  }
  void conv2dInference(const Tensor& x, const Tensor& w, const Tensor& b, bool relu, const Tensor& y) override {
    cpu::conv2dInference(ctx(), x, w, b, relu, y);
  }
  void batchNormForwardTraining(const Tensor& x, const Tensor& g, const Tensor& b, const Tensor& rm, const Tensor& rv,
                                float momentum, float eps, const Tensor& y, const Tensor& sm,
                                const Tensor& si) override {
    cpu::Staging s = staging();
    cpu::batchNormForwardTraining(s.in(x), g, b, rm, rv, momentum, eps, s.out(y), sm, si);
    s.finish();
  }
  void batchNormForwardInference(const Tensor& x, const Tensor& g, const Tensor& b, const Tensor& rm, const Tensor& rv,
                                 float eps, const Tensor& y) override {
    cpu::Staging s = staging();
    cpu::batchNormForwardInference(s.in(x), g, b, rm, rv, eps, s.out(y));
    s.finish();
  }
  // eps is not needed here: saveInvStd already holds 1/sqrt(var + eps)
  void batchNormBackward(const Tensor& x, const Tensor& dy, const Tensor& g, const Tensor& sm, const Tensor& si,
                         float /*eps*/, const Tensor& dx, const Tensor& dg, const Tensor& db) override {
    cpu::Staging s = staging();
    cpu::batchNormBackward(s.in(x), s.in(dy), g, sm, si, s.out(dx), dg, db);
    s.finish();
  }
  void reluForward(const Tensor& x, const Tensor& y) override { cpu::reluForward(ctx(), x, y); }
  void reluBackward(const Tensor& y, const Tensor& dy, const Tensor& dx) override {
    cpu::reluBackward(ctx(), y, dy, dx);
  }
  void sigmoidForward(const Tensor& x, const Tensor& y) override { cpu::sigmoidForward(ctx(), x, y); }
  void maxPool2dForward(const Tensor& x, const Tensor& y) override {
    cpu::Staging s = staging();
    cpu::maxPool2dForward(s.in(x), s.out(y));
    s.finish();
  }
  // y is not read on the CPU (the argmax is recomputed from x), so it is not staged.
  void maxPool2dBackward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx) override {
    cpu::Staging s = staging();
    cpu::maxPool2dBackward(s.in(x), y, s.in(dy), s.out(dx));
    s.finish();
  }
  void upsampleBilinear2xForward(const Tensor& x, const Tensor& y) override {
    cpu::Staging s = staging();
    cpu::upsampleBilinear2xForward(s.in(x), s.out(y));
    s.finish();
  }
  void upsampleBilinear2xBackward(const Tensor& dy, const Tensor& dx) override {
    cpu::Staging s = staging();
    cpu::upsampleBilinear2xBackward(s.in(dy), s.out(dx));
    s.finish();
  }
  void concatChannels(const Tensor& a, const Tensor& b, const Tensor& y) override { cpu::concatChannels(a, b, y); }
  void splitChannels(const Tensor& dy, const Tensor& da, const Tensor& db) override { cpu::splitChannels(dy, da, db); }
  void bceJaccardForward(const Tensor& lg, const Tensor& tg, float w, float eps, const Tensor& loss,
                         const Tensor& stats) override {
    cpu::bceJaccardForward(lg, tg, w, eps, loss, stats);
  }
  void bceJaccardBackward(const Tensor& lg, const Tensor& tg, const Tensor& stats, const Tensor& dloss, float w,
                          float eps, const Tensor& dlg) override {
    cpu::bceJaccardBackward(lg, tg, stats, dloss, w, eps, dlg);
  }
  void diceLossForward(const Tensor& lg, const Tensor& tg, float eps, const Tensor& loss,
                       const Tensor& stats) override {
    cpu::diceLossForward(lg, tg, eps, loss, stats);
  }
  void diceLossBackward(const Tensor& lg, const Tensor& tg, const Tensor& stats, const Tensor& dloss, float eps,
                        const Tensor& dlg) override {
    cpu::diceLossBackward(lg, tg, stats, dloss, eps, dlg);
  }
  void segmentationCounts(const Tensor& prob, const Tensor& tg, const Tensor& th, const Tensor& counts) override {
    cpu::segmentationCounts(prob, tg, th, counts);
  }
  void sgdUpdate(const Tensor& p, const Tensor& g, const Tensor& m, const SgdParams& sp) override {
    cpu::sgdUpdate(p, g, m, sp);
  }
  void adamUpdate(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const AdamParams& ap) override {
    cpu::adamUpdate(p, g, m, v, ap);
  }
  void clipGradNorm(const Tensor& g, float maxNorm, const Tensor& out) override { cpu::clipGradNorm(g, maxNorm, out); }
  void normalizeImagesU8(const Tensor& px, const std::vector<float>& mean, const std::vector<float>& std,
                         const Tensor& y) override {
    cpu::normalizeImagesU8(px, mean, std, y);
  }
  void masksU8ToFloat(const Tensor& m, const Tensor& y) override { cpu::masksU8ToFloat(m, y); }
  void softmaxForward(const Tensor& x, const Tensor& y) override { cpu::softmaxForward(x, y); }
  void crossEntropyForward(const Tensor& lg, const Tensor& lb, const Tensor& w, int ig, float jw, float eps,
                           const Tensor& prob, const Tensor& loss, const Tensor& stats) override {
    cpu::crossEntropyForward(lg, lb, w, ig, jw, eps, prob, loss, stats);
  }
  void crossEntropyBackward(const Tensor& prob, const Tensor& lb, const Tensor& w, int ig, const Tensor& stats,
                            const Tensor& dloss, float jw, float eps, const Tensor& dlg) override {
    cpu::crossEntropyBackward(prob, lb, w, ig, stats, dloss, jw, eps, dlg);
  }
  void multiclassDiceForward(const Tensor& lg, const Tensor& lb, int ig, int first, float eps, const Tensor& prob,
                             const Tensor& loss, const Tensor& stats) override {
    cpu::multiclassDiceForward(lg, lb, ig, first, eps, prob, loss, stats);
  }
  void multiclassDiceBackward(const Tensor& prob, const Tensor& lb, int ig, int first, const Tensor& stats,
                              const Tensor& dloss, float eps, const Tensor& dlg) override {
    cpu::multiclassDiceBackward(prob, lb, ig, first, stats, dloss, eps, dlg);
  }
  void classConfusion(const Tensor& lg, const Tensor& lb, int ig, const Tensor& counts) override {
    cpu::classConfusion(lg, lb, ig, counts);
  }
  void labelsU8ToFloat(const Tensor& m, const Tensor& y) override { cpu::labelsU8ToFloat(m, y); }

 private:
  // Built on first use, on the queue thread: a backend that only moves memory never starts oneDNN.
  cpu::DnnlContext& ctx() {
    if (!ctx_) ctx_ = std::make_unique<cpu::DnnlContext>(alloc_);
    return *ctx_;
  }
  cpu::Staging staging() {
    return cpu::Staging(alloc_, [this]() -> cpu::DnnlContext& { return ctx(); });
  }

  int index_;
  CachingAllocator alloc_;
  std::unique_ptr<cpu::DnnlContext> ctx_;
};

}  // namespace

std::unique_ptr<Backend> createCpuBackend(int index) { return std::make_unique<CpuBackend>(index); }

std::string oneDnnVersion() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

std::string oneDnnIsa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    default:
      return "other";
  }
}

}  // namespace patho
