// CudaBackend: construction, memory, transfers and the ops that are own kernels (kernels/*.cu).
// The cuDNN ops live in cudnn_conv.cc, cudnn_batch_norm.cc and cudnn_pool_activation.cc.
#include "cuda_backend.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "check.h"

namespace patho {

[[noreturn]] void throwCudaOom(int device, size_t bytes) {
  size_t freeBytes = 0, totalBytes = 0;
  if (cudaMemGetInfo(&freeBytes, &totalBytes) != cudaSuccess) cudaGetLastError();
  PATHO_THROW("ERR_PATHO_OOM", "cuda:" << device << ": out of memory allocating " << bytes << " bytes (" << freeBytes
                                       << " free of " << totalBytes << ")");
}

cudaStream_t cudaBackendStream(Backend& backend) { return static_cast<CudaBackend&>(backend).stream(); }

kernels::Act kernelAct(const Tensor& t) {
  PATHO_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::BF16, "ERR_PATHO_DTYPE",
              "Expected a float32 or bfloat16 activation but received " << t.describe());
  return kernels::Act{t.raw(), t.dtype() == DType::BF16 ? kernels::Elem::BF16 : kernels::Elem::F32,
                      t.ndim() == 4 && t.nhwc()};
}

namespace {

// Raw allocation for the caching allocator: plain device memory (never managed memory).
void* deviceAlloc(int device, size_t bytes) {
  CHECK_CUDA(cudaSetDevice(device));
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear it: running out of memory is not a broken context
    throwCudaOom(device, bytes);
  }
  CHECK_CUDA(e);
  return p;
}

// Runs in destructors and at release: a failure to free cannot be acted on, so it is dropped.
void deviceFree(int device, void* p) {
  if (!p) return;
  if (cudaSetDevice(device) != cudaSuccess || cudaFree(p) != cudaSuccess) cudaGetLastError();
}

}  // namespace

DeviceBuffer::~DeviceBuffer() { deviceFree(device_, ptr_); }

void* DeviceBuffer::ensure(size_t bytes, CachingAllocator& cache) {
  if (bytes <= size_ && ptr_) return ptr_;
  deviceFree(device_, ptr_);  // cudaFree waits for queued work that may still read the old block
  ptr_ = nullptr;
  size_ = 0;
  try {
    ptr_ = deviceAlloc(device_, bytes);
  } catch (const Error& e) {
    if (e.code() != "ERR_PATHO_OOM") throw;
    cache.releaseCached();  // the tensor cache may hold what the workspace needs
    ptr_ = deviceAlloc(device_, bytes);
  }
  size_ = bytes;
  return ptr_;
}

namespace {
bool envFlag(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "1") == 0;
}
}  // namespace

CudaBackend::CudaBackend(int index)
    : index_(index), workspace_(index), uploadParams_(index), biasPartials_(index), bnScratch_(index) {
  tf32_ = envFlag("PATHO_CUDA_TF32");
  deterministic_ = envFlag("PATHO_DETERMINISTIC");
  if (const char* v = std::getenv("PATHO_CUDA_SPLIT_ELEMENTS")) {
    const long long n = std::atoll(v);
    PATHO_CHECK(n >= 16 && n <= kCudnnMaxElements, "ERR_PATHO_ARG",
                "PATHO_CUDA_SPLIT_ELEMENTS: Expected an element count in [16, 2^31-1] but received '" << v << "'");
    maxElements_ = n;
  }
  try {
    use();
    cudaDeviceProp prop;
    CHECK_CUDA(cudaGetDeviceProperties(&prop, index));
    const size_t v = cudnnGetVersion();
    name_ = std::string(prop.name) + " (cuDNN " + std::to_string(v / 10000) + "." + std::to_string(v % 10000 / 100) +
            "." + std::to_string(v % 100) + (tf32_ ? ", TF32" : "") + (deterministic_ ? ", deterministic" : "") + ")";
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CHECK_CUDNN(cudnnCreate(&cudnn_));
    CHECK_CUDNN(cudnnSetStream(cudnn_, stream_));
    alloc_ = std::make_unique<CachingAllocator>([index](size_t bytes) { return deviceAlloc(index, bytes); },
                                                [index](void* p) { deviceFree(index, p); });
    scratch_ = static_cast<double*>(deviceAlloc(index, kernels::kScratchDoubles * sizeof(double)));
    clipFactor_ = static_cast<float*>(deviceAlloc(index, sizeof(float)));
    CHECK_CUDNN(cudnnSetActivationDescriptor(relu_, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0));
    CHECK_CUDNN(cudnnSetActivationDescriptor(sigmoid_, CUDNN_ACTIVATION_SIGMOID, CUDNN_PROPAGATE_NAN, 0.0));
  } catch (...) {
    release();
    throw;
  }
}

CudaBackend::~CudaBackend() {
  if (stream_ && cudaStreamSynchronize(stream_) != cudaSuccess) cudaGetLastError();
  release();
}

void CudaBackend::release() {
  while (!bnReserveOrder_.empty()) dropBnReserve(bnReserveOrder_.front());
  alloc_.reset();  // gives every cached block back
  deviceFree(index_, scratch_);
  deviceFree(index_, clipFactor_);
  scratch_ = nullptr;
  clipFactor_ = nullptr;
  if (cudnn_) cudnnDestroy(cudnn_);
  cudnn_ = nullptr;
  if (stream_ && cudaStreamDestroy(stream_) != cudaSuccess) cudaGetLastError();
  stream_ = nullptr;
}

void CudaBackend::use() const { CHECK_CUDA(cudaSetDevice(index_)); }

// ---- transfers ----
void CudaBackend::copyFromHost(const Tensor& dst, const void* src, size_t bytes) {
  use();
  // Through pinned slots (pinned_staging.h): `src` is not read after this returns, so the caller
  // may free it, as backend.h promises.
  staging_.upload(dst.raw(), src, bytes, stream_);
}

void CudaBackend::copyToHost(void* dst, const Tensor& src, size_t bytes) {
  use();
  CHECK_CUDA(cudaMemcpyAsync(dst, src.raw(), bytes, cudaMemcpyDeviceToHost, stream_));
  CHECK_CUDA(cudaStreamSynchronize(stream_));
  checkBnOverflow();
}

void CudaBackend::synchronize() {
  use();
  CHECK_CUDA(cudaStreamSynchronize(stream_));
  checkBnOverflow();
}

// ---- elementwise (flat loops over the storage: all ACT tensors of a call share dtype and layout) ----
void CudaBackend::fill(const Tensor& y, float value) {
  use();
  kernels::fill(kernelAct(y), y.numel(), value, stream_);
}

void CudaBackend::copy(const Tensor& dst, const Tensor& src) {
  use();
  if (dst.raw() == src.raw() || src.bytes() == 0) return;
  CHECK_CUDA(cudaMemcpyAsync(dst.raw(), src.raw(), src.bytes(), cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::scale(const Tensor& y, float alpha) {
  use();
  kernels::scale(kernelAct(y), y.numel(), alpha, stream_);
}

void CudaBackend::axpy(const Tensor& y, const Tensor& x, float alpha) {
  use();
  kernels::axpy(kernelAct(y), kernelAct(x), y.numel(), alpha, stream_);
}

void CudaBackend::sumSquares(const Tensor& x, const Tensor& out) {
  use();
  kernels::sumSquares(x.f32(), x.numel(), out.f32(), scratch_, stream_);
}

// dst = src in dst's dtype and layout. Same dtype and layout: a byte copy; same layout (or not
// 4-D): a flat cast; otherwise a gather at the same logical (n,c,h,w).
void CudaBackend::convert(const Tensor& src, const Tensor& dst) {
  use();
  if (src.numel() == 0) return;
  const kernels::Act s = kernelAct(src), d = kernelAct(dst);
  if (s.elem == d.elem && s.nhwc == d.nhwc) {
    if (src.raw() != dst.raw())
      CHECK_CUDA(cudaMemcpyAsync(dst.raw(), src.raw(), src.bytes(), cudaMemcpyDeviceToDevice, stream_));
    return;
  }
  if (src.ndim() == 4)
    kernels::convert(s, d, src.dim(0), src.dim(1), src.dim(2), src.dim(3), stream_);
  else
    kernels::convert(s, d, 1, 1, 1, src.numel(), stream_);
}

// ---- upsampling, concat ----
void CudaBackend::upsampleBilinear2xForward(const Tensor& x, const Tensor& y) {
  use();
  kernels::upsampleBilinear2xForward(kernelAct(x), kernelAct(y), x.dim(0), x.dim(1), x.dim(2), x.dim(3), stream_);
}

void CudaBackend::upsampleBilinear2xBackward(const Tensor& dy, const Tensor& dx) {
  use();
  kernels::upsampleBilinear2xBackward(kernelAct(dy), kernelAct(dx), dx.dim(0), dx.dim(1), dx.dim(2), dx.dim(3),
                                      stream_);
}

void CudaBackend::concatChannels(const Tensor& a, const Tensor& b, const Tensor& y) {
  use();
  kernels::concatChannels(kernelAct(a), kernelAct(b), kernelAct(y), a.dim(0), a.dim(1), b.dim(1), a.dim(2) * a.dim(3),
                          stream_);
}

void CudaBackend::splitChannels(const Tensor& dy, const Tensor& da, const Tensor& db) {
  use();
  kernels::splitChannels(kernelAct(dy), kernelAct(da), kernelAct(db), da.dim(0), da.dim(1), db.dim(1),
                         da.dim(2) * da.dim(3), stream_);
}

// ---- losses, metrics ----
void CudaBackend::bceJaccardForward(const Tensor& logits, const Tensor& target, float jaccardWeight, float eps,
                                    const Tensor& loss, const Tensor& stats) {
  use();
  kernels::bceJaccardForward(logits.f32(), target.f32(), logits.numel(), jaccardWeight, eps, loss.f32(), stats.f32(),
                             scratch_, stream_);
}

void CudaBackend::bceJaccardBackward(const Tensor& logits, const Tensor& target, const Tensor& stats,
                                     const Tensor& dloss, float jaccardWeight, float eps, const Tensor& dlogits) {
  use();
  kernels::bceJaccardBackward(logits.f32(), target.f32(), logits.numel(), stats.f32(), dloss.f32(), jaccardWeight, eps,
                              dlogits.f32(), stream_);
}

void CudaBackend::diceLossForward(const Tensor& logits, const Tensor& target, float eps, const Tensor& loss,
                                  const Tensor& stats) {
  use();
  kernels::diceLossForward(logits.f32(), target.f32(), logits.numel(), eps, loss.f32(), stats.f32(), scratch_, stream_);
}

void CudaBackend::diceLossBackward(const Tensor& logits, const Tensor& target, const Tensor& stats, const Tensor& dloss,
                                   float eps, const Tensor& dlogits) {
  use();
  kernels::diceLossBackward(logits.f32(), target.f32(), logits.numel(), stats.f32(), dloss.f32(), eps, dlogits.f32(),
                            stream_);
}

void CudaBackend::segmentationCounts(const Tensor& prob, const Tensor& target, const Tensor& thresholds,
                                     const Tensor& counts) {
  use();
  const int64_t N = prob.dim(0);
  const int64_t HW = N == 0 ? 0 : prob.numel() / N;
  kernels::segmentationCounts(prob.f32(), target.f32(), thresholds.f32(), counts.f32(), N, HW, thresholds.numel(),
                              stream_);
}

// ---- optimizers ----
void CudaBackend::sgdUpdate(const Tensor& params, const Tensor& grads, const Tensor& momentumBuf, const SgdParams& p) {
  use();
  const kernels::SgdStep h{p.lr, p.momentum, p.dampening, p.weightDecay, p.nesterov};
  kernels::sgdUpdate(params.f32(), grads.f32(), momentumBuf.f32(), params.numel(), h, stream_);
}

void CudaBackend::adamUpdate(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
                             const AdamParams& p) {
  use();
  const double t = double(p.step);
  const kernels::AdamStep h{p.lr,
                            p.beta1,
                            p.beta2,
                            p.eps,
                            p.weightDecay,
                            p.decoupled,
                            float(1.0 - std::pow(double(p.beta1), t)),
                            float(std::sqrt(1.0 - std::pow(double(p.beta2), t)))};
  kernels::adamUpdate(params.f32(), grads.f32(), m.f32(), v.f32(), params.numel(), h, stream_);
}

void CudaBackend::clipGradNorm(const Tensor& grads, float maxNorm, const Tensor& normOut) {
  use();
  kernels::clipGradNorm(grads.f32(), grads.numel(), maxNorm, normOut.f32(), scratch_, clipFactor_, stream_);
}

// ---- batch upload ----
void CudaBackend::normalizeImagesU8(const Tensor& pixels, const std::vector<float>& mean, const std::vector<float>& std,
                                    const Tensor& y) {
  use();
  const int64_t C = pixels.dim(3);
  std::vector<float> meanStd(mean);
  meanStd.insert(meanStd.end(), std.begin(), std.end());
  void* dev = uploadParams_.ensure(meanStd.size() * sizeof(float), *alloc_);
  staging_.upload(dev, meanStd.data(), meanStd.size() * sizeof(float), stream_);  // the vector may go away now
  kernels::normalizeImagesU8(pixels.data<uint8_t>(), static_cast<const float*>(dev), y.f32(), pixels.dim(0),
                             pixels.dim(1), pixels.dim(2), C, stream_);
}

void CudaBackend::masksU8ToFloat(const Tensor& masks, const Tensor& y) {
  use();
  kernels::masksU8ToFloat(masks.data<uint8_t>(), y.f32(), masks.numel(), stream_);
}

}  // namespace patho
