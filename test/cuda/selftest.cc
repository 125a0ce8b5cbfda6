// Host self-test of the per-element math the CUDA kernels run (native/cuda/kernels/*_math.h),
// against independent float64 references and finite differences, so it is checked on machines
// without a GPU. Prints one line per check; exit status 1 if any failed.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "cuda/kernels/loss_math.h"
#include "cuda/kernels/optim_math.h"
#include "cuda/kernels/upsample_math.h"

using namespace patho::kernels;

namespace {

int failures = 0, checks = 0;

void check(bool ok, const char* what, double got, double want) {
  checks++;
  if (!ok) failures++;
  std::printf("%s %d - %s (got %.9g, want %.9g)\n", ok ? "ok" : "not ok", checks, what, got, want);
}

bool close(double got, double want, double rtol, double atol) { return std::fabs(got - want) <= atol + rtol * std::fabs(want); }

// ---- bilinear x2: PyTorch's weights for a 3-pixel row are known by hand ----
void upsampleChecks() {
  // F.interpolate([a,b,c], scale_factor=2, mode='linear', align_corners=False):
  // [a, .75a+.25b, .25a+.75b, .75b+.25c, .25b+.75c, c]
  const double want[6][3] = {{1, 0, 0}, {.75, .25, 0}, {.25, .75, 0}, {0, .75, .25}, {0, .25, .75}, {0, 0, 1}};
  bool ok = true;
  double worst = 0;
  for (int o = 0; o < 6; o++)
    for (int i = 0; i < 3; i++) {
      double d = std::fabs(upsampleWeight(o, i, 3) - want[o][i]);
      if (d > 0) ok = false;
      worst = std::max(worst, d);
    }
  check(ok, "upsample weights of a 3-pixel row equal PyTorch's", worst, 0);

  // Every output that reads an input lies in the gather range the backward kernel scans.
  bool covered = true;
  for (int64_t H : {1, 2, 3, 7, 64}) {
    for (int64_t o = 0; o < 2 * H; o++) {
      Taps t = upsampleTaps(o, H);
      for (int64_t i : {t.i0, t.i1})
        if (i < 0 || i >= H || o < upsampleFirstReader(i) || o > upsampleLastReader(i, H)) covered = false;
      if (std::fabs(t.w0 + t.w1 - 1.0) > 1e-7) covered = false;
    }
  }
  check(covered, "upsample gather ranges cover every reader and weights sum to 1", covered, 1);

  // Adjointness of forward and gather backward (as the kernels loop) on a random 5x6 plane.
  const int64_t H = 5, W = 6;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> U(-1.f, 1.f);
  std::vector<float> x(H * W), g(4 * H * W), y(4 * H * W), dx(H * W);
  for (auto& v : x) v = U(rng);
  for (auto& v : g) v = U(rng);
  for (int64_t oy = 0; oy < 2 * H; oy++)
    for (int64_t ox = 0; ox < 2 * W; ox++) {
      Taps ty = upsampleTaps(oy, H), tx = upsampleTaps(ox, W);
      y[oy * 2 * W + ox] = ty.w0 * (tx.w0 * x[ty.i0 * W + tx.i0] + tx.w1 * x[ty.i0 * W + tx.i1]) +
                           ty.w1 * (tx.w0 * x[ty.i1 * W + tx.i0] + tx.w1 * x[ty.i1 * W + tx.i1]);
    }
  for (int64_t iy = 0; iy < H; iy++)
    for (int64_t ix = 0; ix < W; ix++) {
      float acc = 0;
      for (int64_t oy = upsampleFirstReader(iy); oy <= upsampleLastReader(iy, H); oy++)
        for (int64_t ox = upsampleFirstReader(ix); ox <= upsampleLastReader(ix, W); ox++)
          acc += upsampleWeight(oy, iy, H) * upsampleWeight(ox, ix, W) * g[oy * 2 * W + ox];
      dx[iy * W + ix] = acc;
    }
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < y.size(); i++) lhs += double(y[i]) * g[i];
  for (size_t i = 0; i < x.size(); i++) rhs += double(x[i]) * dx[i];
  check(close(rhs, lhs, 1e-5, 1e-6), "upsample backward is the adjoint of forward: <Ux,g> = <x,U'g>", rhs, lhs);
}

// ---- losses: float64 reference and central differences ----
struct Batch {
  std::vector<double> x, y;
};

double bceJaccardRef(const Batch& b, double w, double eps) {
  double bce = 0, I = 0, P = 0, Y = 0;
  for (size_t i = 0; i < b.x.size(); i++) {
    double p = 1 / (1 + std::exp(-b.x[i]));
    bce += -(b.y[i] * std::log(p) + (1 - b.y[i]) * std::log(1 - p));
    I += p * b.y[i];
    P += p;
    Y += b.y[i];
  }
  return bce / b.x.size() - w * std::log((I + eps) / (P + Y - I + eps));
}

double diceRef(const Batch& b, double eps) {
  double I = 0, P = 0, Y = 0;
  for (size_t i = 0; i < b.x.size(); i++) {
    double p = 1 / (1 + std::exp(-b.x[i]));
    I += p * b.y[i];
    P += p;
    Y += b.y[i];
  }
  return 1 - (2 * I + eps) / (P + Y + eps);
}

void stats(const Batch& b, float& I, float& P, float& Y) {
  double i = 0, p = 0, y = 0;
  for (size_t k = 0; k < b.x.size(); k++) {
    double s = 1 / (1 + std::exp(-b.x[k]));
    i += s * b.y[k];
    p += s;
    y += b.y[k];
  }
  I = float(i), P = float(p), Y = float(y);
}

void lossChecks() {
  std::mt19937 rng(2);
  std::normal_distribution<double> N(0, 2);
  Batch b;
  for (int i = 0; i < 40; i++) {
    b.x.push_back(N(rng));
    b.y.push_back(i % 3 == 0 ? 1.0 : 0.0);
  }
  double worstBce = 0;
  for (double x : {-30.0, -3.0, -0.2, 0.0, 0.7, 5.0, 40.0})
    for (double y : {0.0, 1.0}) {
      double ref = std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::fabs(x)));
      worstBce = std::max(worstBce, std::fabs(bceWithLogits(float(x), float(y)) - ref) / (1e-6 + std::fabs(ref)));
    }
  check(worstBce < 1e-5, "bceWithLogits matches float64 over [-30, 40]", worstBce, 0);

  const double eps = 1e-7, h = 1e-5;
  float I, P, Y;
  stats(b, I, P, Y);
  for (double w : {0.0, 1.0, 0.3}) {
    double worst = 0;
    for (size_t k = 0; k < b.x.size(); k++) {
      Batch up = b, dn = b;
      up.x[k] += h;
      dn.x[k] -= h;
      double fd = (bceJaccardRef(up, w, eps) - bceJaccardRef(dn, w, eps)) / (2 * h);
      double g = bceJaccardGrad(float(b.x[k]), float(b.y[k]), float(1.0 / b.x.size()), I, P, Y, float(w), float(eps), 1.5f);
      worst = std::max(worst, std::fabs(g - 1.5 * fd) / (1e-4 + std::fabs(1.5 * fd)));
    }
    char what[96];
    std::snprintf(what, sizeof what, "bceJaccardGrad (w=%.1f, dloss=1.5) matches central differences, rel 2e-3", w);
    check(worst < 2e-3, what, worst, 0);
  }
  double worst = 0;
  for (size_t k = 0; k < b.x.size(); k++) {
    Batch up = b, dn = b;
    up.x[k] += h;
    dn.x[k] -= h;
    double fd = (diceRef(up, eps) - diceRef(dn, eps)) / (2 * h);
    double g = diceGrad(float(b.x[k]), float(b.y[k]), I, P, Y, float(eps), 0.5f);
    worst = std::max(worst, std::fabs(g - 0.5 * fd) / (1e-4 + std::fabs(0.5 * fd)));
  }
  check(worst < 2e-3, "diceGrad (dloss=0.5) matches central differences, rel 2e-3", worst, 0);
}

// ---- optimizers: float64 textbook forms (PyTorch docs' pseudo-code) over several steps ----
void optimChecks() {
  const double lr = 0.05, mom = 0.9, damp = 0.1, wd = 0.01;
  for (bool nesterov : {false, true}) {
    float p = 0.8f, buf = 0.f;
    double pr = 0.8, br = 0.0;
    double worst = 0;
    for (int t = 1; t <= 5; t++) {
      double g = std::sin(t * 1.3);
      sgdStep(p, float(g), buf, SgdStep{float(lr), float(mom), nesterov ? 0.f : float(damp), float(wd), nesterov});
      double gg = g + wd * pr;
      br = mom * br + (1 - (nesterov ? 0.0 : damp)) * gg;
      pr -= lr * (nesterov ? gg + mom * br : br);
      worst = std::max(worst, std::fabs(p - pr));
    }
    check(worst < 1e-6, nesterov ? "sgdStep with Nesterov momentum, 5 steps, abs 1e-6" : "sgdStep with momentum and dampening, 5 steps, abs 1e-6", worst, 0);
  }
  for (bool decoupled : {false, true}) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8, alr = 1e-2, awd = 0.1;
    float p = -0.3f, m = 0.f, v = 0.f;
    double pr = -0.3, mr = 0, vr = 0, worst = 0;
    for (int t = 1; t <= 6; t++) {
      double g = std::cos(t * 0.7) * 0.1;
      AdamStep h{float(alr), float(b1), float(b2), float(eps), float(awd), decoupled, float(1 - std::pow(b1, t)),
                 float(std::sqrt(1 - std::pow(b2, t)))};
      adamStep(p, float(g), m, v, h);
      double gg = g;
      if (decoupled) pr *= 1 - alr * awd;
      else gg += awd * pr;
      mr = b1 * mr + (1 - b1) * gg;
      vr = b2 * vr + (1 - b2) * gg * gg;
      double mhat = mr / (1 - std::pow(b1, t)), vhat = vr / (1 - std::pow(b2, t));
      pr -= alr * mhat / (std::sqrt(vhat) + eps);
      worst = std::max(worst, std::fabs(p - pr));
    }
    check(worst < 1e-6, decoupled ? "adamStep AdamW, 6 steps, abs 1e-6" : "adamStep Adam with L2, 6 steps, abs 1e-6", worst, 0);
  }
}

}  // namespace

int main() {
  upsampleChecks();
  lossChecks();
  optimChecks();
  std::printf("# %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
