// Per-channel batch-norm statistics from shifted sums, shared by the large-tensor batch-norm
// kernels (batchnorm.cu) and the host self-test. Sums are taken of d = x - shift (shift: the
// channel's first element), which keeps the variance exact when the mean is large against the
// spread; the conventions are backend.h's and cuDNN's: saveInvStd = 1/sqrt(biased var + eps), the
// running variance moves towards the unbiased variance (Bessel), factor = momentum.
#pragma once
#include <math.h>
#include <stdint.h>

#include "hd.h"

namespace patho {
namespace kernels {

struct BnStats {
  double mean, var;  // var: biased (divided by M)
};

// s1 = sum(d), s2 = sum(d*d) over the M values of a channel.
PATHO_HD inline BnStats bnStatsFromSums(double s1, double s2, double shift, int64_t M) {
  const double md = s1 / double(M);
  double var = s2 / double(M) - md * md;
  if (var < 0) var = 0;  // rounding of a constant channel
  return BnStats{shift + md, var};
}

PATHO_HD inline float bnInvStd(double var, float eps) { return float(1.0 / sqrt(var + double(eps))); }

// running = (1 - momentum) * running + momentum * batch; the variance unbiased (M / (M - 1)).
PATHO_HD inline float bnRunningMean(float running, double mean, float momentum) {
  return float((1.0 - double(momentum)) * double(running) + double(momentum) * mean);
}
PATHO_HD inline float bnRunningVar(float running, double var, int64_t M, float momentum) {
  const double unbiased = M > 1 ? var * double(M) / double(M - 1) : var;
  return float((1.0 - double(momentum)) * double(running) + double(momentum) * unbiased);
}

// dx of batch norm with saved statistics: with xhat = (x - mean) * invStd,
// dx = gamma * invStd * (dy - sum(dy) / M - xhat * sum(dy * xhat) / M).
PATHO_HD inline float bnBackwardDx(float dy, float x, float mean, float invStd, float gamma, double sumDy,
                                   double sumDyXhat, int64_t M) {
  const float xhat = (x - mean) * invStd;
  return gamma * invStd * (dy - float(sumDy / double(M)) - xhat * float(sumDyXhat / double(M)));
}

}  // namespace kernels
}  // namespace patho
