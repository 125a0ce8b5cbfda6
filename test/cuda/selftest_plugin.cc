// Host checks of the CUDA plugin's logic that needs no GPU: the driver verdict (which words a user
// gets for a missing, too old or GPU-less driver), cuDNN's 2^31-element batch split, the max-pool
// tie rule, batch-norm statistics from shifted sums and its backward (against finite differences),
// and the NCCL communicator's abort guard (no call after abort, abort waits for a call in flight).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cuda/batch_split.h"
#include "cuda/comm_guard.h"
#include "cuda/driver_check.h"
#include "cuda/kernels/bn_math.h"
#include "cuda/kernels/pool_math.h"
#include "selftest.h"

using namespace patho;
using namespace patho::kernels;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void driverChecks() {
  const std::string insufficient = "CUDA driver version is insufficient for CUDA runtime version";
  DriverVerdict v = classifyDriver(13000, 0, "", 35, "cudaErrorInsufficientDriver", insufficient, 0);
  check(v.problem == DriverProblem::Missing && has(v.message, "no NVIDIA driver found") &&
            has(v.message, "cudaErrorInsufficientDriver"),
        ("no libcuda: 'missing' and says so: " + v.message).c_str(), int(v.problem), int(DriverProblem::Missing));

  v = classifyDriver(13000, 12040, "550.54.15", 35, "cudaErrorInsufficientDriver", insufficient, 0);
  check(v.problem == DriverProblem::TooOld &&
            v.message ==
                "the NVIDIA driver 550.54.15 (CUDA 12.4) supports CUDA up to 12.4; this plugin is built with "
                "CUDA 13.0 and needs driver 580 or newer; cudaErrorInsufficientDriver: " +
                    insufficient,
        ("driver 550 with a CUDA 13 plugin: 'too-old', names both versions and 580: " + v.message).c_str(),
        int(v.problem), int(DriverProblem::TooOld));

  v = classifyDriver(13000, 12080, "", 35, "cudaErrorInsufficientDriver", insufficient, 0);
  check(v.problem == DriverProblem::TooOld && has(v.message, "the NVIDIA driver (CUDA 12.8) supports CUDA up to 12.8"),
        ("driver version unknown (no NVML, no /proc): still 'too-old' from its CUDA version: " + v.message).c_str(),
        int(v.problem), int(DriverProblem::TooOld));

  v = classifyDriver(13000, 13000, "580.82.07", 100, "cudaErrorNoDevice", "no CUDA-capable device is detected", 0);
  check(v.problem == DriverProblem::NoDevice && has(v.message, "580.82.07") && has(v.message, "sees no GPU"),
        ("driver fine, no GPU: 'no-device' with the driver's version: " + v.message).c_str(), int(v.problem),
        int(DriverProblem::NoDevice));

  v = classifyDriver(13000, 13020, "590.10", 0, "", "", 2);
  check(v.problem == DriverProblem::None && v.message.empty(), "a newer driver with GPUs: no problem", int(v.problem),
        0);

  v = classifyDriver(13000, 13000, "580.82.07", 999, "cudaErrorUnknown", "unknown error", 0);
  check(v.problem == DriverProblem::Error && has(v.message, "cudaErrorUnknown") && has(v.message, "580.82.07"),
        ("another failure keeps CUDA's name for it: " + v.message).c_str(), int(v.problem), int(DriverProblem::Error));

  check(minDriverBranch(13000) == 580 && minDriverBranch(12080) == 525, "first driver branch of CUDA 13 / 12",
        minDriverBranch(13000), 580);
  check(cudaVersionString(12040) == "12.4" && cudaVersionString(13000) == "13.0", "CUDA version 12040 reads 12.4", 0,
        0);

  const std::string proprietary =
      "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\nGCC version:  gcc 12\n";
  const std::string open =
      "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.82.07  Release Build  (dvs-builder@U16)  Wed Aug "
      "27\n";
  check(parseProcDriverVersion(proprietary) == "550.54.15", "driver version from the proprietary module's /proc line",
        0, 0);
  check(parseProcDriverVersion(open) == "580.82.07", "driver version from the open module's /proc line", 0, 0);
  check(parseProcDriverVersion("no driver here\n").empty() && parseProcDriverVersion("Kernel Module\n").empty(),
        "no version in a /proc text without one", 0, 0);
}

void splitChecks() {
  // The case: width 64 at 512x512, batch 64: [64,128,512,512] has exactly 2^31 elements.
  BatchSplit s = batchSplit(64, int64_t(128) * 512 * 512, kCudnnMaxElements);
  check(s.count == 2 && s.per == 32 && s.size(1, 64) == 32, "[64,128,512,512]: two chunks of 32 images",
        double(s.count), 2);
  s = batchSplit(16, int64_t(128) * 512 * 512, kCudnnMaxElements);
  check(s.count == 1 && s.size(0, 16) == 16, "batch 16 at width 64: one chunk (no split)", double(s.count), 1);
  s = batchSplit(3, int64_t(1) << 31, kCudnnMaxElements);
  check(s.count == 0, "one image of 2^31 elements cannot be split (a shape error)", double(s.count), 0);
  s = batchSplit(5, 10, 25);
  check(s.count == 3 && s.per == 2 && s.size(2, 5) == 1, "5 images of 10 with a limit of 25: 2 + 2 + 1",
        double(s.count), 3);
  // Every split covers the batch exactly, each chunk fits, no chunk count is larger than needed.
  std::mt19937 rng(3);
  bool ok = true;
  for (int k = 0; k < 20000 && ok; k++) {
    const int64_t N = 1 + rng() % 300, per = 1 + rng() % 5000, limit = per + rng() % 40000;
    s = batchSplit(N, per, limit);
    int64_t total = 0;
    for (int64_t i = 0; i < s.count; i++) {
      const int64_t n = s.size(i, N);
      ok = ok && n >= 1 && n * per <= limit && n <= s.per;
      total += n;
    }
    const int64_t maxPer = limit / per;
    ok = ok && total == N && s.count == (N + maxPer - 1) / maxPer;
  }
  check(ok, "20000 random batch splits: chunks cover N, each fits the limit, the fewest chunks", ok, 1);
  s = flatSplit(100, 50);
  check(s.count == 3 && s.per == 48 && s.size(2, 100) == 4, "flat pieces of 100 elements under 50: 48 + 48 + 4",
        double(s.count), 3);
  s = flatSplit(40, 50);
  check(s.count == 1 && s.size(0, 40) == 40, "a flat tensor under the limit is one piece", double(s.count), 1);
}

// The rule stated independently: any NaN -> the first NaN; otherwise the first index holding the
// maximum.
int refArgmax(const float v[4]) {
  for (int i = 0; i < 4; i++)
    if (std::isnan(v[i])) return i;
  int k = 0;
  for (int i = 1; i < 4; i++)
    if (v[i] > v[k]) k = i;
  return k;
}

void poolChecks() {
  check(poolArgmax4(0, 0, 0, 0) == 0, "all-zero window (after a ReLU): the gradient goes to the top-left", 0, 0);
  check(poolArgmax4(1, 2, 2, 1) == 1, "tie between top-right and bottom-left: top-right (row-major first)", 1, 1);
  check(poolArgmax4(-1, -3, 5, 5) == 2, "tie in the bottom row: bottom-left", 2, 2);
  const float nan = std::nanf("");
  check(poolArgmax4(1, nan, nan, 3) == 1, "NaN wins, the first NaN stays", 1, 1);
  std::mt19937 rng(5);
  const float values[] = {0.f, 1.f, 2.f, -1.f, nan};
  int bad = 0;
  for (int k = 0; k < 100000; k++) {
    float v[4];
    for (float& x : v) x = values[rng() % 5];
    if (poolArgmax4(v[0], v[1], v[2], v[3]) != refArgmax(v)) bad++;
  }
  check(bad == 0, "100000 random windows full of ties and NaNs: the kernels' winner equals the stated rule", bad, 0);
}

void batchNormChecks() {
  // A channel far from zero: shifted sums keep the variance; the naive E[x^2]-E[x]^2 in float would not.
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0.0, 0.01);
  const int64_t M = 4096;
  std::vector<float> x(M);
  for (auto& v : x) v = float(1000.0 + noise(rng));
  double mean = 0, var = 0;
  for (float v : x) mean += v;
  mean /= M;
  for (float v : x) var += (v - mean) * (v - mean);
  var /= M;
  double s1 = 0, s2 = 0;
  const double shift = x[0];
  for (float v : x) {
    s1 += v - shift;
    s2 += (v - shift) * (v - shift);
  }
  const BnStats st = bnStatsFromSums(s1, s2, shift, M);
  check(close(st.mean, mean, 1e-12, 0) && close(st.var, var, 1e-9, 0),
        "batch-norm statistics from shifted sums equal the two-pass reference (mean 1000, std 0.01)", st.var, var);
  check(close(bnInvStd(st.var, 1e-5f), 1 / std::sqrt(var + 1e-5), 1e-6, 0), "saveInvStd = 1/sqrt(var + eps)",
        bnInvStd(st.var, 1e-5f), 1 / std::sqrt(var + 1e-5));
  check(close(bnRunningVar(2.f, st.var, M, 0.1f), 0.9 * 2 + 0.1 * var * M / (M - 1), 1e-6, 0),
        "running variance moves towards the unbiased variance", bnRunningVar(2.f, st.var, M, 0.1f),
        0.9 * 2 + 0.1 * var * M / (M - 1));
  check(close(bnRunningMean(0.5f, st.mean, 0.1f), 0.45 + 0.1 * mean, 1e-6, 0), "running mean with momentum 0.1",
        bnRunningMean(0.5f, st.mean, 0.1f), 0.45 + 0.1 * mean);

  // dx from bnBackwardDx against central differences of L = sum(dy * BN(x)) on a small channel.
  const int n = 6;
  const double xs[n] = {0.3, -1.2, 0.8, 2.0, -0.5, 0.1}, dys[n] = {0.7, -0.2, 0.4, -1.1, 0.9, 0.25};
  const double gamma = 1.3, eps = 1e-3;
  auto loss = [&](const double* xv) {
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += xv[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (xv[i] - m) * (xv[i] - m);
    v /= n;
    double l = 0;
    for (int i = 0; i < n; i++) l += dys[i] * gamma * (xv[i] - m) / std::sqrt(v + eps);
    return l;
  };
  double m = 0, v = 0;
  for (double e : xs) m += e;
  m /= n;
  for (double e : xs) v += (e - m) * (e - m);
  v /= n;
  const float inv = float(1 / std::sqrt(v + eps));
  double sumDy = 0, sumDyXhat = 0;
  for (int i = 0; i < n; i++) {
    sumDy += dys[i];
    sumDyXhat += dys[i] * (xs[i] - m) * inv;
  }
  double worst = 0;
  for (int i = 0; i < n; i++) {
    double xp[n], xm[n];
    for (int j = 0; j < n; j++) xp[j] = xm[j] = xs[j];
    xp[i] += 1e-6;
    xm[i] -= 1e-6;
    const double fd = (loss(xp) - loss(xm)) / 2e-6;
    const double dx = bnBackwardDx(float(dys[i]), float(xs[i]), float(m), inv, float(gamma), sumDy, sumDyXhat, n);
    worst = std::max(worst, std::fabs(dx - fd) / (1e-3 + std::fabs(fd)));
  }
  check(worst < 1e-4, "batch-norm dx equals central differences of sum(dy * BN(x)) (rel 1e-4)", worst, 0);
}

void guardChecks() {
  CommGuard g;
  int calls = 0, releases = 0;
  bool ran = g.run([&] { calls++; });
  check(ran && calls == 1, "before abort, a call runs", calls, 1);
  bool aborted = g.abort("rank 1 failed", [&] { releases++; });
  check(aborted && releases == 1, "abort releases the communicator once", releases, 1);
  aborted = g.abort("again", [&] { releases++; });
  check(!aborted && releases == 1, "a second abort releases nothing", releases, 1);
  ran = g.run([&] { calls++; });
  check(!ran && calls == 1, "after abort (the queued waitAll), the freed handle is never touched", calls, 1);
  check(g.reason() == "rank 1 failed", "the first abort's reason is kept for the error", 0, 0);

  // Abort from another thread while a call is inside: the release waits for the call to return.
  CommGuard h;
  std::atomic<bool> inside{false}, started{false};
  bool insideAtRelease = true;
  std::thread t([&] {
    h.run([&] {
      inside = true;
      started = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      inside = false;
    });
  });
  while (!started) std::this_thread::yield();
  h.abort("from the JS thread", [&] { insideAtRelease = inside.load(); });
  t.join();
  check(!insideAtRelease, "an abort during a call frees the communicator only after the call returns", insideAtRelease,
        0);
}

}  // namespace

void pluginChecks() {
  driverChecks();
  splitChecks();
  poolChecks();
  batchNormChecks();
  guardChecks();
}
