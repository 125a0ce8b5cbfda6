// BCE - w*log(soft Jaccard) and soft Dice losses. Forward: block partial sums of
// {bce, p*y, p, y} (double), then one block writes stats and the loss. Backward: elementwise,
// reading stats and dloss on the device, so a training step never waits for the host.
#include "../check.h"
#include "kernels.h"
#include "launch.cuh"
#include "loss_math.h"

namespace patho {
namespace kernels {
namespace {

__global__ void lossStatsPartial(const float* logits, const float* target, int64_t n, double* partials) {
  double v[4] = {0.0, 0.0, 0.0, 0.0};
  PATHO_GRID_LOOP(i, n) {
    const float x = logits[i], y = target[i], p = sigmoidOf(x);
    v[0] += bceWithLogits(x, y);
    v[1] += double(p) * y;
    v[2] += p;
    v[3] += y;
  }
  blockSum<4>(v);
  if (threadIdx.x == 0)
    for (int k = 0; k < 4; k++) partials[k * gridDim.x + blockIdx.x] = v[k];
}

// dice = false: loss = mean(bce) - w*log((I+eps)/(U+eps)); dice = true: 1 - (2I+eps)/(P+Y+eps).
__global__ void lossFinish(const double* partials, int blocks, int64_t n, bool dice, float w, float eps, float* loss,
                           float* stats) {
  double t[4];
  sumPartials<4>(partials, blocks, t);
  if (threadIdx.x != 0) return;
  for (int k = 0; k < 4; k++) stats[k] = float(t[k]);
  const double inter = t[1], sumP = t[2], sumY = t[3];
  if (dice) {
    loss[0] = float(1.0 - (2.0 * inter + eps) / (sumP + sumY + eps));
  } else {
    double l = t[0] / double(n);
    if (w != 0.f) l -= double(w) * log((inter + eps) / (sumP + sumY - inter + eps));
    loss[0] = float(l);
  }
}

__global__ void bceJaccardBackwardKernel(const float* logits, const float* target, int64_t n, const float* stats,
                                         const float* dloss, float w, float eps, float invN, float* dlogits) {
  const float inter = stats[1], sumP = stats[2], sumY = stats[3], d = dloss[0];
  PATHO_GRID_LOOP(i, n) dlogits[i] = bceJaccardGrad(logits[i], target[i], invN, inter, sumP, sumY, w, eps, d);
}

__global__ void diceBackwardKernel(const float* logits, const float* target, int64_t n, const float* stats,
                                   const float* dloss, float eps, float* dlogits) {
  const float inter = stats[1], sumP = stats[2], sumY = stats[3], d = dloss[0];
  PATHO_GRID_LOOP(i, n) dlogits[i] = diceGrad(logits[i], target[i], inter, sumP, sumY, eps, d);
}

void lossForward(const float* logits, const float* target, int64_t n, bool dice, float w, float eps, float* loss,
                 float* stats, double* scratch, cudaStream_t s) {
  const int blocks = reduceBlocksFor(n);
  lossStatsPartial<<<blocks, kThreads, 0, s>>>(logits, target, n, scratch);
  CHECK_LAUNCH("lossStatsPartial");
  lossFinish<<<1, kThreads, 0, s>>>(scratch, blocks, n, dice, w, eps, loss, stats);
  CHECK_LAUNCH("lossFinish");
}

}  // namespace

void bceJaccardForward(const float* logits, const float* target, int64_t n, float jaccardWeight, float eps, float* loss,
                       float* stats, double* scratch, cudaStream_t s) {
  lossForward(logits, target, n, false, jaccardWeight, eps, loss, stats, scratch, s);
}

void diceLossForward(const float* logits, const float* target, int64_t n, float eps, float* loss, float* stats,
                     double* scratch, cudaStream_t s) {
  lossForward(logits, target, n, true, 0.f, eps, loss, stats, scratch, s);
}

void bceJaccardBackward(const float* logits, const float* target, int64_t n, const float* stats, const float* dloss,
                        float jaccardWeight, float eps, float* dlogits, cudaStream_t s) {
  if (n == 0) return;
  const float invN = float(1.0 / double(n));
  bceJaccardBackwardKernel<<<gridFor(n), kThreads, 0, s>>>(logits, target, n, stats, dloss, jaccardWeight, eps, invN,
                                                           dlogits);
  CHECK_LAUNCH("bceJaccardBackwardKernel");
}

void diceLossBackward(const float* logits, const float* target, int64_t n, const float* stats, const float* dloss,
                      float eps, float* dlogits, cudaStream_t s) {
  if (n == 0) return;
  diceBackwardKernel<<<gridFor(n), kThreads, 0, s>>>(logits, target, n, stats, dloss, eps, dlogits);
  CHECK_LAUNCH("diceBackwardKernel");
}

}  // namespace kernels
}  // namespace patho
