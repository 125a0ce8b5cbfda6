// Batch normalisation through cuDNN (legacy API, SPATIAL mode: statistics over N,H,W per
// channel). cuDNN's conventions are exactly backend.h's: resultSaveInvVariance is
// 1/sqrt(biased var + eps), and the running variance is updated with the unbiased variance
// (Bessel's correction), as PyTorch's does, with factor = momentum.
#include <algorithm>

#include "check.h"
#include "cuda_backend.h"

namespace patho {
namespace {
const float kOne = 1.f, kZero = 0.f;
constexpr cudnnBatchNormMode_t kMode = CUDNN_BATCHNORM_SPATIAL;
}  // namespace

cudnnTensorDescriptor_t CudaBackend::bnParamDesc(const Tensor& x) {
  const Dims4 d = dims4(x, "batchNorm");
  auto it = bnDescs_.find(d);
  if (it != bnDescs_.end()) return *it->second;
  auto desc = std::make_unique<TensorDesc>();
  CHECK_CUDNN(cudnnDeriveBNTensorDescriptor(*desc, tensorDescs_.get(d), kMode));
  cudnnTensorDescriptor_t raw = *desc;
  bnDescs_.emplace(d, std::move(desc));
  return raw;
}

void CudaBackend::batchNormForwardTraining(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                           const Tensor& runningMean, const Tensor& runningVar, float momentum,
                                           float eps, const Tensor& y, const Tensor& saveMean,
                                           const Tensor& saveInvStd) {
  use();
  cudnnTensorDescriptor_t xd = tensorDescs_.get(dims4(x, "batchNormForwardTraining")), pd = bnParamDesc(x);
  CHECK_CUDNN(cudnnBatchNormalizationForwardTraining(cudnn_, kMode, &kOne, &kZero, xd, x.raw(), xd, y.raw(), pd,
                                                     gamma.raw(), beta.raw(), double(momentum), runningMean.raw(),
                                                     runningVar.raw(), double(eps), saveMean.raw(),
                                                     saveInvStd.raw()));
}

void CudaBackend::batchNormForwardInference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                            const Tensor& runningMean, const Tensor& runningVar, float eps,
                                            const Tensor& y) {
  use();
  cudnnTensorDescriptor_t xd = tensorDescs_.get(dims4(x, "batchNormForwardInference")), pd = bnParamDesc(x);
  CHECK_CUDNN(cudnnBatchNormalizationForwardInference(cudnn_, kMode, &kOne, &kZero, xd, x.raw(), xd, y.raw(), pd,
                                                      gamma.raw(), beta.raw(), runningMean.raw(), runningVar.raw(),
                                                      double(eps)));
}

// backend.h's backward takes no eps: with the saved mean and inverse std supplied, cuDNN reads
// the statistics from them and epsilon only has to be a valid value (the parity test uses an eps
// other than this one to prove it).
void CudaBackend::batchNormBackward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& saveMean,
                                    const Tensor& saveInvStd, float eps, const Tensor& dx, const Tensor& dgamma,
                                    const Tensor& dbeta) {
  use();
  // cuDNN documents that the backward must get the forward's epsilon even with saved statistics.
  const double bnEps = std::max(double(eps), CUDNN_BN_MIN_EPSILON);
  cudnnTensorDescriptor_t xd = tensorDescs_.get(dims4(x, "batchNormBackward")), pd = bnParamDesc(x);
  CHECK_CUDNN(cudnnBatchNormalizationBackward(cudnn_, kMode, &kOne, &kZero, &kOne, &kZero, xd, x.raw(), xd, dy.raw(),
                                              xd, dx.raw(), pd, gamma.raw(), dgamma.raw(), dbeta.raw(), bnEps,
                                              saveMean.raw(), saveInvStd.raw()));
}

}  // namespace patho
