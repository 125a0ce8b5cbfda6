// Owning wrappers for cuDNN descriptors (destroyed with their owner, errors on destroy ignored
// since nothing can be done then) and a shape-keyed cache of NCHW float tensor descriptors, so an
// op on a shape seen before creates nothing.
#pragma once
#include <cudnn.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>

#include "check.h"
#include "core/tensor.h"

namespace patho {

template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class CudnnDesc {
 public:
  CudnnDesc() { CHECK_CUDNN(Create(&d_)); }
  ~CudnnDesc() { if (d_) Destroy(d_); }
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
  if (t.ndim() == 4) return {cudnnDim(t.dim(0), op), cudnnDim(t.dim(1), op), cudnnDim(t.dim(2), op), cudnnDim(t.dim(3), op)};
  return {1, 1, 1, cudnnDim(t.numel(), op)};
}

class TensorDescCache {
 public:
  cudnnTensorDescriptor_t get(const Dims4& d) {
    auto it = cache_.find(d);
    if (it != cache_.end()) return *it->second;
    auto desc = std::make_unique<TensorDesc>();
    CHECK_CUDNN(cudnnSetTensor4dDescriptor(*desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d[0], d[1], d[2], d[3]));
    cudnnTensorDescriptor_t raw = *desc;
    cache_.emplace(d, std::move(desc));
    return raw;
  }

 private:
  std::map<Dims4, std::unique_ptr<TensorDesc>> cache_;
};

}  // namespace patho
