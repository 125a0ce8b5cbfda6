// Staging (staging.h): float32 NCHW scratch copies of bfloat16/NHWC tensors, from the backend's
// caching allocator (so a training step's scratch is reused, not reallocated).
#include "staging.h"

#include <memory>

namespace patho {
namespace cpu {

Tensor Staging::scratch(const Tensor& like) {
  auto storage = std::make_shared<Storage>(&alloc_, size_t(like.numel()) * sizeof(float));
  return Tensor(like.shape(), DType::F32, like.device(), std::move(storage), 0,
                keepLayout_ ? like.layout() : Layout::NCHW);
}

// An empty tensor passes as it is: there is nothing to read or write.
Tensor Staging::in(const Tensor& t) {
  if (plain(t) || t.numel() == 0) return t;
  Tensor s = scratch(t);
  convert(ctx_(), t, s);
  return s;
}

Tensor Staging::out(const Tensor& t) {
  if (plain(t) || t.numel() == 0) return t;
  Tensor s = scratch(t);
  outs_.emplace_back(s, t);
  return s;
}

void Staging::finish() {
  for (auto& [s, t] : outs_) convert(ctx_(), s, t);
  outs_.clear();
}

}  // namespace cpu
}  // namespace patho
