// 2x2 max pooling (stride 2) and ReLU / sigmoid through cuDNN, on float32 or bfloat16 activations
// in NCHW or NHWC (descriptors of the tensor's own type and format; cuDNN computes in float).
// ReLU's backward needs only the forward output: y > 0 exactly where x > 0, so y is passed as
// cuDNN's x too.
#include "check.h"
#include "cuda_backend.h"

namespace patho {
namespace {
const float kOne = 1.f, kZero = 0.f;
}  // namespace

void CudaBackend::reluForward(const Tensor& x, const Tensor& y) {
  use();
  if (x.numel() == 0) return;
  cudnnTensorDescriptor_t d = tensorDescs_.get(x, "reluForward");
  CHECK_CUDNN(cudnnActivationForward(cudnn_, relu_, &kOne, d, x.raw(), &kZero, d, y.raw()));
}

void CudaBackend::reluBackward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  use();
  if (y.numel() == 0) return;
  cudnnTensorDescriptor_t d = tensorDescs_.get(y, "reluBackward");
  CHECK_CUDNN(cudnnActivationBackward(cudnn_, relu_, &kOne, d, y.raw(), d, dy.raw(), d, y.raw(), &kZero, d,
                                      dx.raw()));
}

void CudaBackend::sigmoidForward(const Tensor& x, const Tensor& y) {
  use();
  if (x.numel() == 0) return;
  cudnnTensorDescriptor_t d = tensorDescs_.get(x, "sigmoidForward");
  CHECK_CUDNN(cudnnActivationForward(cudnn_, sigmoid_, &kOne, d, x.raw(), &kZero, d, y.raw()));
}

void CudaBackend::maxPool2dForward(const Tensor& x, const Tensor& y) {
  use();
  if (y.numel() == 0) return;
  cudnnTensorDescriptor_t xd = tensorDescs_.get(x, "maxPool2dForward"),
                          yd = tensorDescs_.get(y, "maxPool2dForward");
  CHECK_CUDNN(cudnnPoolingForward(cudnn_, pool_, &kOne, xd, x.raw(), &kZero, yd, y.raw()));
}

void CudaBackend::maxPool2dBackward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  use();
  if (y.numel() == 0) return;
  cudnnTensorDescriptor_t xd = tensorDescs_.get(x, "maxPool2dBackward"),
                          yd = tensorDescs_.get(y, "maxPool2dBackward");
  CHECK_CUDNN(cudnnPoolingBackward(cudnn_, pool_, &kOne, yd, y.raw(), yd, dy.raw(), xd, x.raw(), &kZero, xd,
                                   dx.raw()));
}

}  // namespace patho
