// Per-class loss math of the multi-class ops (backend.h), shared by the CPU loops and the CUDA kernels so
// both backends compute the same formulas. stats = {sum w*nll, sum w, then I_k, P_k, Y_k per class}.
// Both losses are functions of p through the per-class sums only, so d(loss)/d(p_k) at a pixel with
// label y is a_k + b_k*[y==k], with per-class constants a_k, b_k computed once from the stats.
#pragma once
#include <math.h>

#ifdef __CUDACC__
#define PATHO_MC_HD __host__ __device__
#else
#define PATHO_MC_HD
#endif

namespace patho {
namespace mc {

// The class a label counts for, or -1 (ignored, not an integer, or outside [0,K)).
PATHO_MC_HD inline int labelClass(float label, int K, int ignoreIndex) {
  if (!(label >= 0.f && label < float(K))) return -1;
  const int c = int(label);
  return (float(c) == label && c != ignoreIndex) ? c : -1;
}

PATHO_MC_HD inline double inter(const float* st, int k) { return st[2 + 3 * k]; }
PATHO_MC_HD inline double predSum(const float* st, int k) { return st[3 + 3 * k]; }
PATHO_MC_HD inline double labelSum(const float* st, int k) { return st[4 + 3 * k]; }

// PyTorch's weighted mean, 0 when no pixel counts.
PATHO_MC_HD inline double crossEntropy(const float* st) { return st[1] > 0 ? double(st[0]) / double(st[1]) : 0.0; }

PATHO_MC_HD inline double jaccardOf(const float* st, int k, float eps) {
  const double I = inter(st, k);
  return (I + eps) / (predSum(st, k) + labelSum(st, k) - I + eps);
}

// Mean soft Jaccard over the foreground classes 1..K-1.
PATHO_MC_HD inline double meanJaccard(const float* st, int K, float eps) {
  double m = 0;
  for (int k = 1; k < K; k++) m += jaccardOf(st, k, eps);
  return m / double(K - 1);
}

PATHO_MC_HD inline double crossEntropyJaccardLoss(const float* st, int K, float jaccardWeight, float eps) {
  double l = crossEntropy(st);
  if (jaccardWeight != 0.f) l -= double(jaccardWeight) * log(meanJaccard(st, K, eps));
  return l;
}

// -w*log(M), M = mean_k J_k, J_k = A/B: dJ_k/dp_k = [y==k]/B - J_k*(1-[y==k])/B, so with
// c = -w/(M*(K-1)): a_k = -c*J_k/B, b_k = c*(1+J_k)/B (class 0 is not in the term: a_0 = b_0 = 0).
PATHO_MC_HD inline void jaccardCoef(const float* st, int K, int k, float jaccardWeight, float eps, double meanJ,
                                    double* a, double* b) {
  if (k == 0 || jaccardWeight == 0.f) {
    *a = 0;
    *b = 0;
    return;
  }
  const double I = inter(st, k), B = predSum(st, k) + labelSum(st, k) - I + eps, J = (I + eps) / B;
  const double c = -double(jaccardWeight) / (meanJ * double(K - 1));
  *a = -c * J / B;
  *b = c * (1.0 + J) / B;
}

PATHO_MC_HD inline double diceOf(const float* st, int k, float eps) {
  return (2.0 * inter(st, k) + eps) / (predSum(st, k) + labelSum(st, k) + eps);
}

PATHO_MC_HD inline double multiclassDiceLoss(const float* st, int K, int firstClass, float eps) {
  double m = 0;
  for (int k = firstClass; k < K; k++) m += diceOf(st, k, eps);
  return 1.0 - m / double(K - firstClass);
}

// 1 - mean_k D_k, D_k = (2I+eps)/S: dD_k/dp_k = (2[y==k]*S - (2I+eps))/S^2, times -1/F.
PATHO_MC_HD inline void diceCoef(const float* st, int K, int k, int firstClass, float eps, double* a, double* b) {
  if (k < firstClass) {
    *a = 0;
    *b = 0;
    return;
  }
  const double F = double(K - firstClass), S = predSum(st, k) + labelSum(st, k) + eps;
  *a = (2.0 * inter(st, k) + eps) / (S * S * F);
  *b = -2.0 / (S * F);
}

}  // namespace mc
}  // namespace patho
