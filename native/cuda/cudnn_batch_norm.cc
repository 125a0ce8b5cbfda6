// Batch normalisation through cuDNN (legacy API: statistics over N,H,W per channel). x, y, dy, dx
// are float32 or bfloat16, NCHW or NHWC; gamma, beta and the statistics stay float32 (cuDNN's
// derived [1,C,1,1] descriptor is FLOAT for bf16 data). cuDNN's conventions are exactly
// backend.h's: resultSaveInvVariance is 1/sqrt(biased var + eps), and the running variance is
// updated with the unbiased variance (Bessel's correction), as PyTorch's is, with factor = momentum.
// bf16 NHWC training uses SPATIAL_PERSISTENT (PyTorch's choice for channels_last: fused NHWC
// kernels); everything else, and inference, SPATIAL. Should this cuDNN refuse the persistent mode
// (CUDNN_STATUS_NOT_SUPPORTED), the backend falls back to SPATIAL for good: same math, slower.
#include <algorithm>

#include "check.h"
#include "cuda_backend.h"

namespace patho {
namespace {
const float kOne = 1.f, kZero = 0.f;
}  // namespace

// The forward training and the backward of one layer use the same mode.
cudnnBatchNormMode_t CudaBackend::bnTrainingMode(const Tensor& x) const {
  return bnPersistent_ && x.dtype() == DType::BF16 && x.nhwc() ? CUDNN_BATCHNORM_SPATIAL_PERSISTENT
                                                                 : CUDNN_BATCHNORM_SPATIAL;
}

// Runs call(mode, parameter descriptor) in the training mode of x; a persistent mode that cuDNN
// does not support is turned off and the call repeated in SPATIAL mode. Failures are thrown.
template <typename Call>
void CudaBackend::withBnTrainingMode(const Tensor& x, const char* op, Call call) {
  const cudnnBatchNormMode_t mode = bnTrainingMode(x);
  cudnnStatus_t s = call(mode, bnParamDesc(x, mode));
  if (s == CUDNN_STATUS_NOT_SUPPORTED && mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT) {
    bnPersistent_ = false;
    s = call(CUDNN_BATCHNORM_SPATIAL, bnParamDesc(x, CUDNN_BATCHNORM_SPATIAL));
  }
  if (s != CUDNN_STATUS_SUCCESS) cuda_check::throwCudnn(s, op, __FILE__, __LINE__);
}

cudnnTensorDescriptor_t CudaBackend::bnParamDesc(const Tensor& x, cudnnBatchNormMode_t mode) {
  const auto key = std::make_pair(tensorKey(x, "batchNorm"), int(mode));
  auto it = bnDescs_.find(key);
  if (it != bnDescs_.end()) return *it->second;
  auto desc = std::make_unique<TensorDesc>();
  CHECK_CUDNN(cudnnDeriveBNTensorDescriptor(*desc, tensorDescs_.get(x, "batchNorm"), mode));
  cudnnTensorDescriptor_t raw = *desc;
  bnDescs_.emplace(key, std::move(desc));
  return raw;
}

void CudaBackend::batchNormForwardTraining(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                           const Tensor& runningMean, const Tensor& runningVar, float momentum,
                                           float eps, const Tensor& y, const Tensor& saveMean,
                                           const Tensor& saveInvStd) {
  use();
  cudnnTensorDescriptor_t xd = tensorDescs_.get(x, "batchNormForwardTraining");
  withBnTrainingMode(x, "cudnnBatchNormalizationForwardTraining", [&](cudnnBatchNormMode_t mode,
                                                                      cudnnTensorDescriptor_t pd) {
    return cudnnBatchNormalizationForwardTraining(cudnn_, mode, &kOne, &kZero, xd, x.raw(), xd, y.raw(), pd,
                                                  gamma.raw(), beta.raw(), double(momentum), runningMean.raw(),
                                                  runningVar.raw(), double(eps), saveMean.raw(), saveInvStd.raw());
  });
}

void CudaBackend::batchNormForwardInference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                            const Tensor& runningMean, const Tensor& runningVar, float eps,
                                            const Tensor& y) {
  use();
  const cudnnBatchNormMode_t mode = CUDNN_BATCHNORM_SPATIAL;
  cudnnTensorDescriptor_t xd = tensorDescs_.get(x, "batchNormForwardInference"), pd = bnParamDesc(x, mode);
  CHECK_CUDNN(cudnnBatchNormalizationForwardInference(cudnn_, mode, &kOne, &kZero, xd, x.raw(), xd, y.raw(), pd,
                                                      gamma.raw(), beta.raw(), runningMean.raw(), runningVar.raw(),
                                                      double(eps)));
}

void CudaBackend::batchNormBackward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& saveMean,
                                    const Tensor& saveInvStd, float eps, const Tensor& dx, const Tensor& dgamma,
                                    const Tensor& dbeta) {
  use();
  // cuDNN documents that the backward must get the forward's epsilon even with saved statistics.
  const double bnEps = std::max(double(eps), CUDNN_BN_MIN_EPSILON);
  cudnnTensorDescriptor_t xd = tensorDescs_.get(x, "batchNormBackward");
  withBnTrainingMode(x, "cudnnBatchNormalizationBackward", [&](cudnnBatchNormMode_t mode, cudnnTensorDescriptor_t pd) {
    return cudnnBatchNormalizationBackward(cudnn_, mode, &kOne, &kZero, &kOne, &kZero, xd, x.raw(), xd, dy.raw(), xd,
                                           dx.raw(), pd, gamma.raw(), dgamma.raw(), dbeta.raw(), bnEps,
                                           saveMean.raw(), saveInvStd.raw());
  });
}

}  // namespace patho
