// Multi-class ops of the CPU backend (multiclass.cc): softmax over channels, cross-entropy with
// class weights, ignore index and the generalised Jaccard term, multi-class soft Dice, confusion counts.
// Semantics are backend.h's; CpuBackend dispatches to these.
#pragma once
#include "core/tensor.h"

namespace patho {
namespace cpu {

void softmaxForward(const Tensor& x, const Tensor& y);
void crossEntropyForward(const Tensor& logits, const Tensor& labels, const Tensor& weight, int ignoreIndex,
                         float jaccardWeight, float eps, const Tensor& prob, const Tensor& loss, const Tensor& stats);
void crossEntropyBackward(const Tensor& prob, const Tensor& labels, const Tensor& weight, int ignoreIndex,
                          const Tensor& stats, const Tensor& dloss, float jaccardWeight, float eps,
                          const Tensor& dlogits);
void multiclassDiceForward(const Tensor& logits, const Tensor& labels, int ignoreIndex, int firstClass, float eps,
                           const Tensor& prob, const Tensor& loss, const Tensor& stats);
void multiclassDiceBackward(const Tensor& prob, const Tensor& labels, int ignoreIndex, int firstClass,
                            const Tensor& stats, const Tensor& dloss, float eps, const Tensor& dlogits);
void classConfusion(const Tensor& logits, const Tensor& labels, int ignoreIndex, const Tensor& counts);
void labelsU8ToFloat(const Tensor& masks, const Tensor& y);

}  // namespace cpu
}  // namespace patho
