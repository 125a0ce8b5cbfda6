// Owning wrappers for cuDNN descriptors (destroyed with their owner, errors on destroy ignored
// since nothing can be done then) and a cache of activation tensor descriptors keyed by shape,
// dtype (float32 / bfloat16) and layout (NCHW / NHWC), so an op on a tensor kind seen before
// creates nothing.
#pragma once
#include <cudnn.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "check.h"
#include "core/tensor.h"

namespace patho {

template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class CudnnDesc {
 public:
  CudnnDesc() { CHECK_CUDNN(Create(&d_)); }
  ~CudnnDesc() {
    if (d_) Destroy(d_);
  }
  CudnnDesc(const CudnnDesc&) = delete;
  CudnnDesc& operator=(const CudnnDesc&) = delete;
  T get() const { return d_; }
  operator T() const { return d_; }

 private:
  T d_ = nullptr;
};

using TensorDesc = CudnnDesc<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc = CudnnDesc<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc =
    CudnnDesc<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;
using PoolDesc = CudnnDesc<cudnnPoolingDescriptor_t, cudnnCreatePoolingDescriptor, cudnnDestroyPoolingDescriptor>;
using ActDesc =
    CudnnDesc<cudnnActivationDescriptor_t, cudnnCreateActivationDescriptor, cudnnDestroyActivationDescriptor>;

using Dims4 = std::array<int, 4>;

// cuDNN takes int dimensions; anything larger is refused with a clear error.
inline int cudnnDim(int64_t v, const char* op) {
  PATHO_CHECK(v >= 0 && v <= 0x7fffffff, "ERR_PATHO_SHAPE", op << ": dimension " << v << " is too large for cuDNN");
  return int(v);
}

// NCHW dims of a 4-d tensor; any other rank is viewed as [1,1,1,numel] (elementwise ops only).
inline Dims4 dims4(const Tensor& t, const char* op) {
  if (t.ndim() == 4)
    return {cudnnDim(t.dim(0), op), cudnnDim(t.dim(1), op), cudnnDim(t.dim(2), op), cudnnDim(t.dim(3), op)};
  return {1, 1, 1, cudnnDim(t.numel(), op)};
}

// cuDNN's element type of an activation (backend.h: float32 or bfloat16 only).
inline cudnnDataType_t cudnnType(DType t, const char* op) {
  if (t == DType::F32) return CUDNN_DATA_FLOAT;
  if (t == DType::BF16) return CUDNN_DATA_BFLOAT16;
  PATHO_THROW("ERR_PATHO_DTYPE", op << ": Expected a float32 or bfloat16 tensor but received " << dtypeName(t));
}

// cuDNN's format of a tensor: NHWC only for 4-D NHWC tensors (others are flat [1,1,1,n] NCHW).
inline cudnnTensorFormat_t cudnnFormat(const Tensor& t) {
  return t.ndim() == 4 && t.nhwc() ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
}

// What a tensor descriptor depends on: logical dims, element type, format.
using TensorKey = std::tuple<Dims4, int, int>;
inline TensorKey tensorKey(const Tensor& t, const char* op) {
  return TensorKey{dims4(t, op), int(cudnnType(t.dtype(), op)), int(cudnnFormat(t))};
}

class TensorDescCache {
 public:
  cudnnTensorDescriptor_t get(const Tensor& t, const char* op) { return get(tensorKey(t, op)); }
  // A descriptor of dims d in t's element type and format (a batch chunk of t, or a flat piece).
  cudnnTensorDescriptor_t get(const Dims4& d, const Tensor& t, const char* op) {
    return get(TensorKey{d, int(cudnnType(t.dtype(), op)), int(cudnnFormat(t))});
  }
  cudnnTensorDescriptor_t get(const TensorKey& key) {
    auto it = cache_.find(key);
    if (it != cache_.end()) return *it->second;
    const Dims4& d = std::get<0>(key);
    auto desc = std::make_unique<TensorDesc>();
    // Dims are always logical N,C,H,W; the format makes cuDNN compute NHWC strides.
    CHECK_CUDNN(cudnnSetTensor4dDescriptor(*desc, cudnnTensorFormat_t(std::get<2>(key)),
                                           cudnnDataType_t(std::get<1>(key)), d[0], d[1], d[2], d[3]));
    cudnnTensorDescriptor_t raw = *desc;
    cache_.emplace(key, std::move(desc));
    return raw;
  }

 private:
  std::map<TensorKey, std::unique_ptr<TensorDesc>> cache_;
};

}  // namespace patho
