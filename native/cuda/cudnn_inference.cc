// conv2dInference on the GPU (backend.h): the convolution with its bias (cudnn_conv.cc: the
// algorithm found for the shape, the bias added by cuDNN or kernels/bias.cu), then cuDNN's ReLU in
// place on y (cudnnActivationForward allows x == y). Composed from the tested ops rather than
// cudnnConvolutionBiasActivationForward, which takes only IMPLICIT_PRECOMP_GEMM with ReLU and
// cannot add a float32 bias to bf16 data. The result is the fused one: ReLU commutes with the one
// rounding of the convolution's output to bf16 (both are monotone and keep 0).
#include "cuda_backend.h"

namespace patho {

void CudaBackend::conv2dInference(const Tensor& x, const Tensor& w, const Tensor& b, bool relu, const Tensor& y) {
  conv2dForward(x, w, b, y);
  if (relu) reluForward(y, y);
}

}  // namespace patho
