// The one backend interface (DESIGN.md decision 1). Every op is a plain method with explicit
// input and output tensors; CpuBackend (oneDNN + own loops) and CudaBackend (cuDNN + kernels,
// in libpatho_cuda.so) implement the same names, and TypeScript calls the same names.
//
// Contract for every method:
//  * Shapes, dtypes, layouts and devices were already checked by the binding (native/binding/ops.cc):
//    a backend may trust them. All tensors are dense, float32 NCHW unless stated, on this device.
//  * Activations (mixed precision, DESIGN.md decision 4): the tensors marked ACT below may be
//    float32 or bfloat16, NCHW or NHWC (tensor.h), all ACT tensors of one call alike. bfloat16 ops
//    load bf16, compute and accumulate in float32 and round once when storing (like cuDNN/PyTorch
//    autocast); everything not marked ACT (bias, BN parameters and statistics, losses, metrics,
//    optimizer arenas) stays float32. A backend must support every combination.
//  * Methods are called on the device's execution queue thread only (never concurrently for one
//    backend). CPU methods compute synchronously; CUDA methods enqueue on the device stream.
//  * Outputs are overwritten (never accumulated) unless the doc says otherwise; the autograd in
//    TypeScript sums gradients with `axpy`.
//  * Failures throw patho::Error with a code (ERR_PATHO_DNNL, ERR_PATHO_CUDA, ERR_PATHO_CUDNN,
//    ERR_PATHO_OOM, ...). Never abort or exit.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "allocator.h"
#include "tensor.h"

namespace patho {

// Optimizer hyper-parameters for one fused update over a whole arena.
struct SgdParams {
  float lr = 0.01f, momentum = 0.f, dampening = 0.f, weightDecay = 0.f;
  bool nesterov = false;
};
struct AdamParams {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weightDecay = 0.f;
  bool decoupled = false;  // AdamW: decay the weights directly instead of adding wd*p to the gradient
  int64_t step = 1;        // 1-based step count for bias correction
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;  // "oneDNN 2.6.3 (avx512_core)" / "NVIDIA H100 (cuDNN 9.x)"
  virtual CachingAllocator& allocator() = 0;

  // ---- memory transfer (host pointers stay valid until the call returns; CUDA must finish the
  // copy before returning from copyToHost, and may stage copyFromHost) ----
  virtual void copyFromHost(const Tensor& dst, const void* src, size_t bytes) = 0;
  virtual void copyToHost(void* dst, const Tensor& src, size_t bytes) = 0;
  // Wait until every op issued so far on this device has finished (no-op on CPU).
  virtual void synchronize() = 0;

  // ---- elementwise, any shapes with equal numel; y, dst, src, x are ACT (same dtype and layout,
  // so these are flat loops over the storage) ----
  virtual void fill(const Tensor& y, float value) = 0;
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;
  virtual void scale(const Tensor& y, float alpha) = 0;                  // y *= alpha
  virtual void axpy(const Tensor& y, const Tensor& x, float alpha) = 0;  // y += alpha * x
  // out[0] = sum(x*x) (out is float32[1]).
  virtual void sumSquares(const Tensor& x, const Tensor& out) = 0;
  // dst = src converted: same logical shape; dtype float32 <-> bfloat16 (round to nearest even)
  // and/or layout NCHW <-> NHWC (4-D only), any of the four combinations each side.
  virtual void convert(const Tensor& src, const Tensor& dst) = 0;

  // ---- convolution: x [N,C,H,W], w [K,C,R,R] (R = 1 or 3), stride 1, padding R/2 ('same'),
  // b [K] or undefined, y [N,K,H,W]. ACT: x, w, y, dy, dx, dw (w NHWC = KRSC); b, db float32 ----
  virtual void conv2dForward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) = 0;
  // dx [N,C,H,W] from dy and w.
  virtual void conv2dBackwardData(const Tensor& dy, const Tensor& w, const Tensor& dx) = 0;
  // dw [K,C,R,R] from x and dy; db [K] (sum of dy over N,H,W) when defined.
  virtual void conv2dBackwardFilter(const Tensor& x, const Tensor& dy, const Tensor& dw, const Tensor& db) = 0;
  // Inference only (no gradient follows): y = conv(x, w) + b, then max(y, 0) when relu, in one pass
  // where the library fuses it (oneDNN post-op), rounded once to y's dtype. With BatchNorm folded
  // into w and b (lib/nn/inference.ts) a Conv+BN+ReLU block is this one call. Tensors as conv2dForward.
  virtual void conv2dInference(const Tensor& x, const Tensor& w, const Tensor& b, bool relu, const Tensor& y) = 0;

  // ---- batch normalisation over N,H,W per channel; x,y [N,C,H,W]; gamma, beta, running*, save* [C]
  // ACT: x, y, dy, dx; the [C] vectors float32 ----
  // Training: batch statistics; saveMean = mean, saveInvStd = 1/sqrt(biased var + eps);
  // runningMean = (1-m)*runningMean + m*mean; runningVar = (1-m)*runningVar + m*unbiasedVar (PyTorch).
  virtual void batchNormForwardTraining(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                        const Tensor& runningMean, const Tensor& runningVar, float momentum, float eps,
                                        const Tensor& y, const Tensor& saveMean, const Tensor& saveInvStd) = 0;
  virtual void batchNormForwardInference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                         const Tensor& runningMean, const Tensor& runningVar, float eps,
                                         const Tensor& y) = 0;
  // dx, dgamma, dbeta from the saved statistics of the training forward. eps must be the forward's:
  // the CPU derives everything from saveInvStd, but cuDNN asks for the same epsilon as the forward.
  virtual void batchNormBackward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& saveMean,
                                 const Tensor& saveInvStd, float eps, const Tensor& dx, const Tensor& dgamma,
                                 const Tensor& dbeta) = 0;

  // ---- activations (any shape; x, y, dy, dx ACT) ----
  virtual void reluForward(const Tensor& x, const Tensor& y) = 0;
  // dx = dy where y > 0 else 0 (y is the forward output). dx may alias dy.
  virtual void reluBackward(const Tensor& y, const Tensor& dy, const Tensor& dx) = 0;
  virtual void sigmoidForward(const Tensor& x, const Tensor& y) = 0;

  // ---- 2x2 max pooling, stride 2: x [N,C,H,W] (H, W even), y [N,C,H/2,W/2]; all ACT ----
  virtual void maxPool2dForward(const Tensor& x, const Tensor& y) = 0;
  // Gradient goes to the first maximum of each window in row-major order (PyTorch's choice).
  virtual void maxPool2dBackward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx) = 0;

  // ---- bilinear x2 upsampling, align_corners=false: x [N,C,H,W], y [N,C,2H,2W]; all ACT ----
  virtual void upsampleBilinear2xForward(const Tensor& x, const Tensor& y) = 0;
  virtual void upsampleBilinear2xBackward(const Tensor& dy, const Tensor& dx) = 0;

  // ---- channel concat: a [N,Ca,H,W], b [N,Cb,H,W], y [N,Ca+Cb,H,W]; split is its adjoint; all ACT ----
  virtual void concatChannels(const Tensor& a, const Tensor& b, const Tensor& y) = 0;
  virtual void splitChannels(const Tensor& dy, const Tensor& da, const Tensor& db) = 0;

  // ---- losses: logits, target same shape [N,1,H,W] (target 0/1). stats float32[4] receives
  // {sum bce, sum p*y, sum p, sum y} with p = sigmoid(logits); loss float32[1] receives
  // mean(bce) - w*log((I+eps)/(U+eps)), I = sum p*y, U = sum p + sum y - I (w = 0: plain BCE). ----
  virtual void bceJaccardForward(const Tensor& logits, const Tensor& target, float jaccardWeight, float eps,
                                 const Tensor& loss, const Tensor& stats) = 0;
  // dlogits = dloss[0] * d(loss)/d(logits), using stats from the forward.
  virtual void bceJaccardBackward(const Tensor& logits, const Tensor& target, const Tensor& stats, const Tensor& dloss,
                                  float jaccardWeight, float eps, const Tensor& dlogits) = 0;
  // Soft Dice loss: loss = 1 - (2*sum(p*y) + eps) / (sum p + sum y + eps); stats as above.
  virtual void diceLossForward(const Tensor& logits, const Tensor& target, float eps, const Tensor& loss,
                               const Tensor& stats) = 0;
  virtual void diceLossBackward(const Tensor& logits, const Tensor& target, const Tensor& stats, const Tensor& dloss,
                                float eps, const Tensor& dlogits) = 0;

  // ---- metrics: prob, target [N,1,H,W]; thresholds float32[T]; counts float32[N,T,3] receives per
  // image and threshold {sum(pred*y), sum(pred), sum(y)} with pred = prob > threshold. ----
  virtual void segmentationCounts(const Tensor& prob, const Tensor& target, const Tensor& thresholds,
                                  const Tensor& counts) = 0;

  // ---- multi-class (K >= 2 classes; native/cpu/multiclass.cc, native/cuda/multiclass.cc). logits, prob
  // [N,K,H,W] float32; labels float32 [N,H,W] holding class indices. A pixel counts when its label is an
  // integer in [0,K) other than ignoreIndex; other labels (ignoreIndex, or values the data layer should
  // have refused) are skipped by the loss, its gradient and the confusion counts. weight [K] or undefined.
  // stats float32 [2+3K] = {sum w[y]*nll, sum w[y], then per class k: I_k = sum p_k*[y==k], P_k = sum p_k,
  // Y_k = sum [y==k]} over counted pixels, p = softmax over channels; prob receives p. ----
  virtual void softmaxForward(const Tensor& x, const Tensor& y) = 0;
  // loss = CE - w*log(mean over k=1..K-1 of (I_k+eps)/(P_k+Y_k-I_k+eps)), CE = stats[0]/stats[1] (PyTorch's
  // weighted mean; 0 when no pixel counts, where PyTorch gives NaN); jaccardWeight 0: plain CE.
  virtual void crossEntropyForward(const Tensor& logits, const Tensor& labels, const Tensor& weight, int ignoreIndex,
                                   float jaccardWeight, float eps, const Tensor& prob, const Tensor& loss,
                                   const Tensor& stats) = 0;
  // dlogits = dloss[0] * d(loss)/d(logits) from the forward's prob and stats.
  virtual void crossEntropyBackward(const Tensor& prob, const Tensor& labels, const Tensor& weight, int ignoreIndex,
                                    const Tensor& stats, const Tensor& dloss, float jaccardWeight, float eps,
                                    const Tensor& dlogits) = 0;
  // loss = 1 - mean over k=firstClass..K-1 of (2 I_k + eps)/(P_k + Y_k + eps); stats as above (CE part too).
  virtual void multiclassDiceForward(const Tensor& logits, const Tensor& labels, int ignoreIndex, int firstClass,
                                     float eps, const Tensor& prob, const Tensor& loss, const Tensor& stats) = 0;
  virtual void multiclassDiceBackward(const Tensor& prob, const Tensor& labels, int ignoreIndex, int firstClass,
                                      const Tensor& stats, const Tensor& dloss, float eps, const Tensor& dlogits) = 0;
  // counts float32 [N,K,K]: counts[n][t][p] = pixels of image n with label t and argmax_c logits = p (the
  // first maximum on ties, as torch.argmax); logits may be probabilities (same argmax).
  virtual void classConfusion(const Tensor& logits, const Tensor& labels, int ignoreIndex, const Tensor& counts) = 0;
  // masks uint8 [N,H,W] -> y float32 [N,H,W], the values unchanged (class indices).
  virtual void labelsU8ToFloat(const Tensor& masks, const Tensor& y) = 0;

  // ---- optimizers: one fused update over a contiguous arena (params, grads, state same numel) ----
  virtual void sgdUpdate(const Tensor& params, const Tensor& grads, const Tensor& momentumBuf, const SgdParams& p) = 0;
  virtual void adamUpdate(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
                          const AdamParams& p) = 0;
  // grads *= min(1, maxNorm / (sqrt(sum grads^2) + 1e-6)); normOut float32[1] receives the norm
  // before clipping. Runs on the device: no host round trip.
  virtual void clipGradNorm(const Tensor& grads, float maxNorm, const Tensor& normOut) = 0;

  // ---- batch upload: pixels uint8 [N,H,W,C] (already on this device, e.g. via copyFromHost)
  // -> y float32 [N,C,H,W] with y = (pixel/255 - mean[c]) / std[c]; mean/std are host values. ----
  virtual void normalizeImagesU8(const Tensor& pixels, const std::vector<float>& mean, const std::vector<float>& std,
                                 const Tensor& y) = 0;
  // masks uint8 [N,H,W] -> y float32 [N,1,H,W], 1 where mask > 0 else 0.
  virtual void masksU8ToFloat(const Tensor& masks, const Tensor& y) = 0;
};

}  // namespace patho
