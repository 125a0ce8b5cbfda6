// Entry points of the multi-class ops (backend.h "multi-class"): same names and argument order as the
// Backend methods (inputs, scalars, outputs). Each checks shapes, then queues the work and returns.
#include <napi.h>

#include <cmath>

#include "args.h"
#include "errors.h"

namespace patho {
namespace {

int integer(Args& a, size_t i, const char* name) {
  const double v = a.number(i, name);
  PATHO_CHECK(std::floor(v) == v && std::fabs(v) < 2147483648.0, "ERR_PATHO_ARG",
              a.op() << ": Expected an integer for " << name << " but received " << v);
  return int(v);
}

// logits/prob [N,K,H,W] with K >= 2, labels [N,H,W], weight [K] when defined.
void classShapes(Args& a, const Tensor& x, const char* xn, const Tensor& labels, const Tensor* weight) {
  a.rank(x, xn, 4);
  PATHO_CHECK(x.dim(1) >= 2, "ERR_PATHO_SHAPE",
              a.op() << ": Expected " << xn << " with at least 2 classes (channels) but received " << x.describe());
  a.shape(labels, "labels", {x.dim(0), x.dim(2), x.dim(3)});
  if (weight && weight->defined()) a.shape(*weight, "weight", {x.dim(1)});
}

int firstClassArg(Args& a, size_t i, const Tensor& x) {
  const int f = integer(a, i, "firstClass");
  PATHO_CHECK(f >= 0 && f < x.dim(1), "ERR_PATHO_ARG",
              a.op() << ": Expected firstClass in [0, " << x.dim(1) << ") but received " << f);
  return f;
}

PATHO_OP(softmaxForward, "x", "y") {
  Tensor x = a.tensor(0, "x"), y = a.tensor(1, "y");
  a.rank(x, "x", 4);
  a.shape(y, "y", x.shape());
  a.submit([=](Backend& b) { b.softmaxForward(x, y); });
}
PATHO_OP(crossEntropyForward, "logits", "labels", "weight", "ignoreIndex", "jaccardWeight", "eps", "prob", "loss",
         "stats") {
  Tensor lg = a.tensor(0, "logits"), lb = a.tensor(1, "labels"), w = a.optional(2, "weight");
  const int ig = integer(a, 3, "ignoreIndex");
  const float jw = float(a.number(4, "jaccardWeight")), eps = float(a.number(5, "eps"));
  Tensor prob = a.tensor(6, "prob"), loss = a.tensor(7, "loss"), stats = a.tensor(8, "stats");
  classShapes(a, lg, "logits", lb, &w);
  a.shape(prob, "prob", lg.shape());
  a.shape(loss, "loss", {1});
  a.shape(stats, "stats", {2 + 3 * lg.dim(1)});
  a.submit([=](Backend& b) { b.crossEntropyForward(lg, lb, w, ig, jw, eps, prob, loss, stats); });
}
PATHO_OP(crossEntropyBackward, "prob", "labels", "weight", "ignoreIndex", "stats", "dloss", "jaccardWeight", "eps",
         "dlogits") {
  Tensor prob = a.tensor(0, "prob"), lb = a.tensor(1, "labels"), w = a.optional(2, "weight");
  const int ig = integer(a, 3, "ignoreIndex");
  Tensor stats = a.tensor(4, "stats"), dloss = a.tensor(5, "dloss");
  const float jw = float(a.number(6, "jaccardWeight")), eps = float(a.number(7, "eps"));
  Tensor dlg = a.tensor(8, "dlogits");
  classShapes(a, prob, "prob", lb, &w);
  a.shape(stats, "stats", {2 + 3 * prob.dim(1)});
  a.shape(dloss, "dloss", {1});
  a.shape(dlg, "dlogits", prob.shape());
  a.submit([=](Backend& b) { b.crossEntropyBackward(prob, lb, w, ig, stats, dloss, jw, eps, dlg); });
}
PATHO_OP(multiclassDiceForward, "logits", "labels", "ignoreIndex", "firstClass", "eps", "prob", "loss", "stats") {
  Tensor lg = a.tensor(0, "logits"), lb = a.tensor(1, "labels");
  const int ig = integer(a, 2, "ignoreIndex");
  classShapes(a, lg, "logits", lb, nullptr);
  const int first = firstClassArg(a, 3, lg);
  const float eps = float(a.number(4, "eps"));
  Tensor prob = a.tensor(5, "prob"), loss = a.tensor(6, "loss"), stats = a.tensor(7, "stats");
  a.shape(prob, "prob", lg.shape());
  a.shape(loss, "loss", {1});
  a.shape(stats, "stats", {2 + 3 * lg.dim(1)});
  a.submit([=](Backend& b) { b.multiclassDiceForward(lg, lb, ig, first, eps, prob, loss, stats); });
}
PATHO_OP(multiclassDiceBackward, "prob", "labels", "ignoreIndex", "firstClass", "stats", "dloss", "eps", "dlogits") {
  Tensor prob = a.tensor(0, "prob"), lb = a.tensor(1, "labels");
  const int ig = integer(a, 2, "ignoreIndex");
  classShapes(a, prob, "prob", lb, nullptr);
  const int first = firstClassArg(a, 3, prob);
  Tensor stats = a.tensor(4, "stats"), dloss = a.tensor(5, "dloss");
  const float eps = float(a.number(6, "eps"));
  Tensor dlg = a.tensor(7, "dlogits");
  a.shape(stats, "stats", {2 + 3 * prob.dim(1)});
  a.shape(dloss, "dloss", {1});
  a.shape(dlg, "dlogits", prob.shape());
  a.submit([=](Backend& b) { b.multiclassDiceBackward(prob, lb, ig, first, stats, dloss, eps, dlg); });
}
PATHO_OP(classConfusion, "logits", "labels", "ignoreIndex", "counts") {
  Tensor lg = a.tensor(0, "logits"), lb = a.tensor(1, "labels");
  const int ig = integer(a, 2, "ignoreIndex");
  Tensor counts = a.tensor(3, "counts");
  classShapes(a, lg, "logits", lb, nullptr);
  a.shape(counts, "counts", {lg.dim(0), lg.dim(1), lg.dim(1)});
  a.submit([=](Backend& b) { b.classConfusion(lg, lb, ig, counts); });
}
PATHO_OP(labelsU8ToFloat, "masks", "y") {
  Tensor m = a.tensor(0, "masks", DType::U8), y = a.tensor(1, "y");
  a.rank(m, "masks", 3);
  a.shape(y, "y", m.shape());
  a.submit([=](Backend& b) { b.labelsU8ToFloat(m, y); });
}

}  // namespace

// After registerOps: adds these ops and their parameter names to the same exports and `opParams`.
void registerMulticlassOps(Napi::Env env, Napi::Object exports) {
  const OpEntry entries[] = {
      PATHO_ENTRY(softmaxForward),        PATHO_ENTRY(crossEntropyForward),    PATHO_ENTRY(crossEntropyBackward),
      PATHO_ENTRY(multiclassDiceForward), PATHO_ENTRY(multiclassDiceBackward), PATHO_ENTRY(classConfusion),
      PATHO_ENTRY(labelsU8ToFloat),
  };
  registerOpTable(env, exports, entries, sizeof(entries) / sizeof(entries[0]));
}

}  // namespace patho
