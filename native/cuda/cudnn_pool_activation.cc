// ReLU / sigmoid through cuDNN and 2x2 max pooling (stride 2) through own kernels
// (kernels/maxpool.cu: cuDNN does not document which tied maximum gets the gradient), on float32
// or bfloat16 activations in NCHW or NHWC. ReLU's backward needs only the forward output: y > 0
// exactly where x > 0, so y is passed as cuDNN's x too. Activations are element-wise, so a tensor
// too large for one descriptor is run in flat pieces of its storage, whatever its layout.
#include "check.h"
#include "cuda_backend.h"

namespace patho {
namespace {
const float kOne = 1.f, kZero = 0.f;

const char* at(const void* p, int64_t elements, const Tensor& t) {
  return static_cast<const char*>(p) + elements * int64_t(dtypeSize(t.dtype()));
}
}  // namespace

// out = act(x) (forward), or out = act'(y) * dy (backward; x is y for ReLU and ignored otherwise).
void CudaBackend::activation(cudnnActivationDescriptor_t act, bool backward, const Tensor& y, const Tensor& dy,
                             const Tensor& x, const Tensor& out, const char* op) {
  use();
  const Tensor& ref = backward ? y : x;
  const int64_t n = ref.numel();
  if (n == 0) return;
  if (n <= maxElements_) {
    cudnnTensorDescriptor_t d = tensorDescs_.get(ref, op);
    if (backward)
      CHECK_CUDNN(
          cudnnActivationBackward(cudnn_, act, &kOne, d, y.raw(), d, dy.raw(), d, x.raw(), &kZero, d, out.raw()));
    else
      CHECK_CUDNN(cudnnActivationForward(cudnn_, act, &kOne, d, x.raw(), &kZero, d, out.raw()));
    return;
  }
  const BatchSplit s = flatSplit(n, maxElements_);
  for (int64_t i = 0; i < s.count; i++) {
    const int64_t off = i * s.per, m = s.size(i, n);
    cudnnTensorDescriptor_t d = tensorDescs_.get(Dims4{1, 1, 1, int(m)}, ref, op);
    void* o = const_cast<char*>(at(out.raw(), off, out));
    if (backward)
      CHECK_CUDNN(cudnnActivationBackward(cudnn_, act, &kOne, d, at(y.raw(), off, y), d, at(dy.raw(), off, dy), d,
                                          at(x.raw(), off, x), &kZero, d, o));
    else
      CHECK_CUDNN(cudnnActivationForward(cudnn_, act, &kOne, d, at(x.raw(), off, x), &kZero, d, o));
  }
}

void CudaBackend::reluForward(const Tensor& x, const Tensor& y) { activation(relu_, false, x, x, x, y, "reluForward"); }

void CudaBackend::reluBackward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  activation(relu_, true, y, dy, y, dx, "reluBackward");
}

void CudaBackend::sigmoidForward(const Tensor& x, const Tensor& y) {
  activation(sigmoid_, false, x, x, x, y, "sigmoidForward");
}

void CudaBackend::maxPool2dForward(const Tensor& x, const Tensor& y) {
  use();
  kernels::maxPool2dForward(kernelAct(x), kernelAct(y), x.dim(0), x.dim(1), x.dim(2), x.dim(3), stream_);
}

void CudaBackend::maxPool2dBackward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  use();
  kernels::maxPool2dBackward(kernelAct(x), kernelAct(dy), kernelAct(dx), x.dim(0), x.dim(1), x.dim(2), x.dim(3),
                             stream_);
}

}  // namespace patho
