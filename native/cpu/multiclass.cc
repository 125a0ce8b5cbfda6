// Multi-class ops on the CPU (backend.h): channel softmax, cross-entropy (+ generalised Jaccard),
// multi-class soft Dice, confusion counts, label upload. Pixels are processed in blocks of one image's
// plane so the per-class loops run over contiguous memory; the sums are per-block doubles added in block
// order, so results do not depend on the number of threads.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/multiclass_math.h"
#include "cpu_ops.h"
#include "multiclass_ops.h"

namespace patho {
namespace cpu {
namespace {

constexpr int64_t kBlock = 1024;  // pixels per block

struct Blocks {
  int64_t N, K, HW, perImage, count;
  Blocks(const Tensor& x) : N(x.dim(0)), K(x.dim(1)), HW(x.dim(2) * x.dim(3)) {
    perImage = (HW + kBlock - 1) / kBlock;
    count = N * perImage;
  }
  int64_t image(int64_t b) const { return b / perImage; }
  int64_t start(int64_t b) const { return (b % perImage) * kBlock; }
  int64_t end(int64_t b) const { return std::min(HW, start(b) + kBlock); }
};

// Softmax of one block: y[k][i] for i in [i0,i1) of image plane x (channel stride HW). lse[i - i0]
// receives log(sum exp) + max, the log-partition used for the NLL.
void softmaxBlock(const float* x, float* y, int64_t K, int64_t HW, int64_t i0, int64_t i1, double* lse) {
  const int64_t n = i1 - i0;
  float mx[kBlock], sum[kBlock];
  for (int64_t i = 0; i < n; i++) mx[i] = x[i0 + i];
  for (int64_t k = 1; k < K; k++)
    for (int64_t i = 0; i < n; i++) mx[i] = std::max(mx[i], x[k * HW + i0 + i]);
  for (int64_t i = 0; i < n; i++) sum[i] = 0.f;
  for (int64_t k = 0; k < K; k++)
    for (int64_t i = 0; i < n; i++) {
      const float e = std::exp(x[k * HW + i0 + i] - mx[i]);
      y[k * HW + i0 + i] = e;
      sum[i] += e;
    }
  for (int64_t k = 0; k < K; k++)
    for (int64_t i = 0; i < n; i++) y[k * HW + i0 + i] /= sum[i];
  if (lse)
    for (int64_t i = 0; i < n; i++) lse[i] = double(mx[i]) + std::log(double(sum[i]));
}

// Softmax into prob and the stats of backend.h (before the loss formula).
void classStats(const Tensor& logits, const Tensor& labels, const Tensor& weight, int ignoreIndex, const Tensor& prob,
                const Tensor& stats) {
  const Blocks bl(logits);
  const int64_t K = bl.K, HW = bl.HW, Q = 2 + 3 * K;
  const float *x = logits.f32(), *lab = labels.f32(), *w = weight.defined() ? weight.f32() : nullptr;
  float* p = prob.f32();
  std::vector<double> part(size_t(bl.count * Q), 0.0);
#pragma omp parallel for schedule(static) if (logits.numel() >= kParallelMin)
  for (int64_t b = 0; b < bl.count; b++) {
    const int64_t n = bl.image(b), i0 = bl.start(b), i1 = bl.end(b);
    const float* xn = x + n * K * HW;
    float* pn = p + n * K * HW;
    const float* ln = lab + n * HW;
    double lse[kBlock];
    softmaxBlock(xn, pn, K, HW, i0, i1, lse);
    double* s = part.data() + b * Q;
    for (int64_t i = i0; i < i1; i++) {
      const int c = mc::labelClass(ln[i], int(K), ignoreIndex);
      if (c < 0) continue;
      const double wc = w ? double(w[c]) : 1.0;
      s[0] += wc * (lse[i - i0] - double(xn[c * HW + i]));
      s[1] += wc;
      s[2 + 3 * c] += pn[c * HW + i];                                  // I_c
      s[4 + 3 * c] += 1.0;                                             // Y_c
      for (int64_t k = 0; k < K; k++) s[3 + 3 * k] += pn[k * HW + i];  // P_k
    }
  }
  float* st = stats.f32();
  for (int64_t q = 0; q < Q; q++) {
    double t = 0;
    for (int64_t b = 0; b < bl.count; b++) t += part[b * Q + q];
    st[q] = float(t);
  }
}

// dlogits from prob, the per-class coefficients (a_k, b_k of multiclass_math.h) and the CE scale
// (dloss/sum w, 0 for Dice): d/dx_c = p_c*(g_c - sum_k p_k g_k) + ceScale*w[y]*(p_c - [c==y]).
void classGrad(const Tensor& prob, const Tensor& labels, const Tensor& weight, int ignoreIndex,
               const std::vector<double>& a, const std::vector<double>& bcoef, double dloss, double ceScale,
               const Tensor& dlogits) {
  const Blocks bl(prob);
  const int64_t K = bl.K, HW = bl.HW;
  const float *p = prob.f32(), *lab = labels.f32(), *w = weight.defined() ? weight.f32() : nullptr;
  float* d = dlogits.f32();
#pragma omp parallel for schedule(static) if (prob.numel() >= kParallelMin)
  for (int64_t b = 0; b < bl.count; b++) {
    const int64_t n = bl.image(b), i0 = bl.start(b), i1 = bl.end(b);
    const float* pn = p + n * K * HW;
    float* dn = d + n * K * HW;
    const float* ln = lab + n * HW;
    for (int64_t i = i0; i < i1; i++) {
      const int c = mc::labelClass(ln[i], int(K), ignoreIndex);
      if (c < 0) {
        for (int64_t k = 0; k < K; k++) dn[k * HW + i] = 0.f;
        continue;
      }
      double dot = 0;
      for (int64_t k = 0; k < K; k++) dot += double(pn[k * HW + i]) * (a[k] + (k == c ? bcoef[k] : 0.0));
      const double ce = ceScale * (w ? double(w[c]) : 1.0);
      for (int64_t k = 0; k < K; k++) {
        const double pk = pn[k * HW + i], g = a[k] + (k == c ? bcoef[k] : 0.0);
        dn[k * HW + i] = float(dloss * pk * (g - dot) + ce * (pk - (k == c ? 1.0 : 0.0)));
      }
    }
  }
}

}  // namespace

void softmaxForward(const Tensor& x, const Tensor& y) {
  const Blocks bl(x);
  const float* xp = x.f32();
  float* yp = y.f32();
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelMin)
  for (int64_t b = 0; b < bl.count; b++) {
    const int64_t off = bl.image(b) * bl.K * bl.HW;
    softmaxBlock(xp + off, yp + off, bl.K, bl.HW, bl.start(b), bl.end(b), nullptr);
  }
}

void crossEntropyForward(const Tensor& logits, const Tensor& labels, const Tensor& weight, int ignoreIndex,
                         float jaccardWeight, float eps, const Tensor& prob, const Tensor& loss, const Tensor& stats) {
  classStats(logits, labels, weight, ignoreIndex, prob, stats);
  loss.f32()[0] = float(mc::crossEntropyJaccardLoss(stats.f32(), int(logits.dim(1)), jaccardWeight, eps));
}

void crossEntropyBackward(const Tensor& prob, const Tensor& labels, const Tensor& weight, int ignoreIndex,
                          const Tensor& stats, const Tensor& dloss, float jaccardWeight, float eps,
                          const Tensor& dlogits) {
  const int K = int(prob.dim(1));
  const float* st = stats.f32();
  const double g = dloss.f32()[0];
  std::vector<double> a(K), b(K);
  const double meanJ = jaccardWeight != 0.f ? mc::meanJaccard(st, K, eps) : 1.0;
  for (int k = 0; k < K; k++) mc::jaccardCoef(st, K, k, jaccardWeight, eps, meanJ, &a[k], &b[k]);
  const double ceScale = st[1] > 0 ? g / double(st[1]) : 0.0;
  classGrad(prob, labels, weight, ignoreIndex, a, b, g, ceScale, dlogits);
}

void multiclassDiceForward(const Tensor& logits, const Tensor& labels, int ignoreIndex, int firstClass, float eps,
                           const Tensor& prob, const Tensor& loss, const Tensor& stats) {
  classStats(logits, labels, Tensor(), ignoreIndex, prob, stats);
  loss.f32()[0] = float(mc::multiclassDiceLoss(stats.f32(), int(logits.dim(1)), firstClass, eps));
}

void multiclassDiceBackward(const Tensor& prob, const Tensor& labels, int ignoreIndex, int firstClass,
                            const Tensor& stats, const Tensor& dloss, float eps, const Tensor& dlogits) {
  const int K = int(prob.dim(1));
  std::vector<double> a(K), b(K);
  for (int k = 0; k < K; k++) mc::diceCoef(stats.f32(), K, k, firstClass, eps, &a[k], &b[k]);
  classGrad(prob, labels, Tensor(), ignoreIndex, a, b, dloss.f32()[0], 0.0, dlogits);
}

void classConfusion(const Tensor& logits, const Tensor& labels, int ignoreIndex, const Tensor& counts) {
  const int64_t N = logits.dim(0), K = logits.dim(1), HW = logits.dim(2) * logits.dim(3);
  const float *x = logits.f32(), *lab = labels.f32();
  float* out = counts.f32();
#pragma omp parallel for schedule(static) if (N * K * HW >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    std::vector<double> c(size_t(K * K), 0.0);
    const float* xn = x + n * K * HW;
    const float* ln = lab + n * HW;
    for (int64_t i = 0; i < HW; i++) {
      const int t = mc::labelClass(ln[i], int(K), ignoreIndex);
      if (t < 0) continue;
      int64_t best = 0;
      float bv = xn[i];
      for (int64_t k = 1; k < K; k++)
        if (xn[k * HW + i] > bv) {  // strictly greater: the first maximum wins ties
          bv = xn[k * HW + i];
          best = k;
        }
      c[t * K + best] += 1.0;
    }
    for (int64_t q = 0; q < K * K; q++) out[n * K * K + q] = float(c[q]);
  }
}

void labelsU8ToFloat(const Tensor& masks, const Tensor& y) {
  const uint8_t* m = masks.data<uint8_t>();
  float* out = y.f32();
  const int64_t n = masks.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) out[i] = float(m[i]);
}

}  // namespace cpu
}  // namespace patho
