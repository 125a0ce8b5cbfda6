// Host entry points of the multi-class kernels (multiclass.cu); semantics are backend.h's "multi-class"
// section. Each enqueues on `s` and checks its launch. logits/prob [N,K,HW], labels [N,HW], all float32.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace patho {
namespace kernels {

void softmaxChannels(const float* x, float* y, int64_t N, int64_t K, int64_t HW, cudaStream_t s);

// Device memory the class-statistics reduction needs for its partial sums, in doubles.
int64_t classStatsScratchDoubles(int64_t N, int64_t K, int64_t HW);

// mode 0: cross-entropy - jaccardWeight*log(mean Jaccard); mode 1: multi-class Dice from firstClass.
struct ClassLoss {
  int mode;
  int ignoreIndex;
  int firstClass;
  float jaccardWeight;
  float eps;
};

// prob = softmax(logits), stats [2+3K], loss [1]; scratch holds classStatsScratchDoubles doubles.
void classLossForward(const float* logits, const float* labels, const float* weight, float* prob, float* stats,
                      float* loss, int64_t N, int64_t K, int64_t HW, const ClassLoss& l, double* scratch,
                      cudaStream_t s);
void classLossBackward(const float* prob, const float* labels, const float* weight, const float* stats,
                       const float* dloss, float* dlogits, int64_t N, int64_t K, int64_t HW, const ClassLoss& l,
                       cudaStream_t s);

// counts [N,K,K] (float); scratch holds N*K*K uint64 counters.
void classConfusion(const float* logits, const float* labels, int ignoreIndex, float* counts,
                    unsigned long long* scratch, int64_t N, int64_t K, int64_t HW, cudaStream_t s);

void labelsU8ToFloat(const uint8_t* masks, float* y, int64_t n, cudaStream_t s);

}  // namespace kernels
}  // namespace patho
