// Staging: runs batch norm, pooling and upsampling, whose loops handle float32 NCHW and NHWC in
// either dtype, on bfloat16 NCHW tensors. Those inputs are converted into float32 NCHW scratch
// tensors (exact), the op writes float32 NCHW scratch outputs, and finish() converts them into
// the real outputs (rounded once to bf16): by construction the float32 op on the decoded inputs,
// rounded once. Every other tensor passes straight through at no cost.
#pragma once
#include <functional>
#include <utility>
#include <vector>

#include "cpu_ops.h"

namespace patho {
namespace cpu {

class Staging {
 public:
  // ctx is asked for only when something needs converting (oneDNN starts lazily).
  Staging(CachingAllocator& alloc, std::function<DnnlContext&()> ctx, bool keepLayout = false)
      : alloc_(alloc), ctx_(std::move(ctx)), keepLayout_(keepLayout) {}
  bool plain(const Tensor& t) const { return t.dtype() == DType::F32 || (!keepLayout_ && t.nhwc()); }
  // t itself, or a float32 copy of it (NCHW, or t's layout with keepLayout).
  Tensor in(const Tensor& t);
  // t itself, or a float32 NCHW scratch tensor that finish() converts into t.
  Tensor out(const Tensor& t);
  // Converts every staged output into its tensor. Call once the op has run.
  void finish();

 private:
  Tensor scratch(const Tensor& like);
  CachingAllocator& alloc_;
  std::function<DnnlContext&()> ctx_;
  bool keepLayout_;
  std::vector<std::pair<Tensor, Tensor>> outs_;  // (scratch, destination)
};

}  // namespace cpu
}  // namespace patho
