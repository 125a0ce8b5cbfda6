// Op entry points: one exported function per Backend method, same name and argument order
// (inputs, scalars, outputs). Each checks shapes/dtypes/devices, then queues the work and returns.
// Tensors with no elements (a 0 dimension) are legal: an op whose outputs are all empty queues
// nothing, and reductions over nothing write zeros, so no backend loop ever runs over the outer
// dimensions of an empty tensor (which may be up to 2^53 long: checkedBytes, tensor.h). The shapes
// derived here (2H, Ca + Cb, [N, T, 3]) cannot overflow for the same reason, and are only compared
// with tensors that exist: nothing is allocated from them.
#include <napi.h>

#include "args.h"
#include "errors.h"

namespace patho {
namespace {

// ---- elementwise ----
PATHO_OP(fill, "y", "value") {
  Tensor y = a.act(0, "y");
  float v = float(a.number(1, "value"));
  a.submit([=](Backend& b) { b.fill(y, v); });
}
PATHO_OP(copy, "dst", "src") {
  Tensor dst = a.act(0, "dst"), src = a.act(1, "src");
  a.sameNumel(dst, "dst", src, "src");
  a.submit([=](Backend& b) { b.copy(dst, src); });
}
PATHO_OP(scale, "y", "alpha") {
  Tensor y = a.act(0, "y");
  float s = float(a.number(1, "alpha"));
  a.submit([=](Backend& b) { b.scale(y, s); });
}
PATHO_OP(axpy, "y", "x", "alpha") {
  Tensor y = a.act(0, "y"), x = a.act(1, "x");
  float s = float(a.number(2, "alpha"));
  a.sameNumel(y, "y", x, "x");
  a.submit([=](Backend& b) { b.axpy(y, x, s); });
}
PATHO_OP(sumSquares, "x", "out") {
  Tensor x = a.tensor(0, "x"), out = a.tensor(1, "out");
  a.shape(out, "out", {1});
  a.submit([=](Backend& b) { b.sumSquares(x, out); });
}
PATHO_OP(convert, "src", "dst") {
  Tensor src = a.any(0, "src"), dst = a.any(1, "dst");
  for (auto* t : {&src, &dst})
    PATHO_CHECK(t->dtype() == DType::F32 || t->dtype() == DType::BF16, "ERR_PATHO_DTYPE",
                "convert: Expected float32 or bfloat16 tensors but received " << t->describe());
  a.shape(dst, "dst", src.shape());
  a.submit([=](Backend& b) { b.convert(src, dst); });
}

// ---- convolution ----
// Checks x [N,C,H,W], w [K,C,R,R] with R in {1,3}; returns {N,K,H,W}.
Shape convOutShape(Args& a, const Tensor& x, const char* xn, const Tensor& w) {
  a.rank(x, xn, 4);
  a.rank(w, "w", 4);
  PATHO_CHECK((w.dim(2) == 1 || w.dim(2) == 3) && w.dim(3) == w.dim(2), "ERR_PATHO_SHAPE",
              a.op() << ": Expected a 1x1 or 3x3 kernel for w but received " << w.describe());
  PATHO_CHECK(w.dim(0) > 0 && w.dim(1) > 0, "ERR_PATHO_SHAPE",
              a.op() << ": Expected at least one input and one output channel in w but received " << w.describe());
  PATHO_CHECK(w.dim(1) == x.dim(1), "ERR_PATHO_SHAPE",
              a.op() << ": Expected w with " << x.dim(1) << " input channels (from " << xn << " " << x.describe()
                     << ") but received " << w.describe());
  return {x.dim(0), w.dim(0), x.dim(2), x.dim(3)};
}
PATHO_OP(conv2dForward, "x", "w", "b", "y") {
  Tensor x = a.act(0, "x"), w = a.act(1, "w"), bias = a.optional(2, "b"), y = a.act(3, "y");
  Shape ys = convOutShape(a, x, "x", w);
  if (bias.defined()) a.shape(bias, "b", {w.dim(0)});
  a.shape(y, "y", ys);
  if (y.numel() == 0) return;  // N, H or W is 0
  a.submit([=](Backend& b) { b.conv2dForward(x, w, bias, y); });
}
PATHO_OP(conv2dBackwardData, "dy", "w", "dx") {
  Tensor dy = a.act(0, "dy"), w = a.act(1, "w"), dx = a.act(2, "dx");
  a.rank(dx, "dx", 4);
  Shape ys = convOutShape(a, dx, "dx", w);
  a.shape(dy, "dy", ys);
  if (dx.numel() == 0) return;
  a.submit([=](Backend& b) { b.conv2dBackwardData(dy, w, dx); });
}
PATHO_OP(conv2dBackwardFilter, "x", "dy", "dw", "db") {
  Tensor x = a.act(0, "x"), dy = a.act(1, "dy"), dw = a.act(2, "dw"), db = a.optional(3, "db");
  Shape ys = convOutShape(a, x, "x", dw);
  a.shape(dy, "dy", ys);
  if (db.defined()) a.shape(db, "db", {dw.dim(0)});
  if (x.numel() == 0) {  // sums over no pixels
    a.submit([=](Backend& b) {
      b.fill(dw, 0.f);
      if (db.defined()) b.fill(db, 0.f);
    });
    return;
  }
  a.submit([=](Backend& b) { b.conv2dBackwardFilter(x, dy, dw, db); });
}

PATHO_OP(conv2dInference, "x", "w", "b", "relu", "y") {
  Tensor x = a.act(0, "x"), w = a.act(1, "w"), bias = a.optional(2, "b");
  bool relu = a.boolean(3, "relu");
  Tensor y = a.act(4, "y");
  Shape ys = convOutShape(a, x, "x", w);
  if (bias.defined()) a.shape(bias, "b", {w.dim(0)});
  a.shape(y, "y", ys);
  if (y.numel() == 0) return;
  a.submit([=](Backend& b) { b.conv2dInference(x, w, bias, relu, y); });
}

// ---- batch norm ----
void bnChannels(Args& a, const Tensor& x, std::initializer_list<std::pair<const Tensor*, const char*>> vecs) {
  a.rank(x, "x", 4);
  for (auto& v : vecs) a.shape(*v.first, v.second, {x.dim(1)});
}
PATHO_OP(batchNormForwardTraining, "x", "gamma", "beta", "runningMean", "runningVar", "momentum", "eps", "y",
         "saveMean", "saveInvStd") {
  Tensor x = a.act(0, "x"), g = a.tensor(1, "gamma"), be = a.tensor(2, "beta"), rm = a.tensor(3, "runningMean"),
         rv = a.tensor(4, "runningVar");
  float momentum = float(a.number(5, "momentum")), eps = float(a.number(6, "eps"));
  Tensor y = a.act(7, "y"), sm = a.tensor(8, "saveMean"), si = a.tensor(9, "saveInvStd");
  bnChannels(a, x,
             {{&g, "gamma"},
              {&be, "beta"},
              {&rm, "runningMean"},
              {&rv, "runningVar"},
              {&sm, "saveMean"},
              {&si, "saveInvStd"}});
  a.shape(y, "y", x.shape());
  PATHO_CHECK(
      x.dim(0) * x.dim(2) * x.dim(3) > 1, "ERR_PATHO_SHAPE",
      "batchNormForwardTraining: Expected more than one value per channel in training but received " << x.describe());
  if (x.numel() == 0) return;  // no channels
  a.submit([=](Backend& b) { b.batchNormForwardTraining(x, g, be, rm, rv, momentum, eps, y, sm, si); });
}
PATHO_OP(batchNormForwardInference, "x", "gamma", "beta", "runningMean", "runningVar", "eps", "y") {
  Tensor x = a.act(0, "x"), g = a.tensor(1, "gamma"), be = a.tensor(2, "beta"), rm = a.tensor(3, "runningMean"),
         rv = a.tensor(4, "runningVar");
  float eps = float(a.number(5, "eps"));
  Tensor y = a.act(6, "y");
  bnChannels(a, x, {{&g, "gamma"}, {&be, "beta"}, {&rm, "runningMean"}, {&rv, "runningVar"}});
  a.shape(y, "y", x.shape());
  if (x.numel() == 0) return;
  a.submit([=](Backend& b) { b.batchNormForwardInference(x, g, be, rm, rv, eps, y); });
}
PATHO_OP(batchNormBackward, "x", "dy", "gamma", "saveMean", "saveInvStd", "eps", "dx", "dgamma", "dbeta") {
  Tensor x = a.act(0, "x"), dy = a.act(1, "dy"), g = a.tensor(2, "gamma"), sm = a.tensor(3, "saveMean"),
         si = a.tensor(4, "saveInvStd");
  float eps = float(a.number(5, "eps"));  // the forward's: cuDNN needs it
  Tensor dx = a.act(6, "dx"), dg = a.tensor(7, "dgamma"), db = a.tensor(8, "dbeta");
  bnChannels(a, x, {{&g, "gamma"}, {&sm, "saveMean"}, {&si, "saveInvStd"}, {&dg, "dgamma"}, {&db, "dbeta"}});
  a.shape(dy, "dy", x.shape());
  a.shape(dx, "dx", x.shape());
  if (x.numel() == 0) {  // sums over no values
    a.submit([=](Backend& b) {
      b.fill(dg, 0.f);
      b.fill(db, 0.f);
    });
    return;
  }
  a.submit([=](Backend& b) { b.batchNormBackward(x, dy, g, sm, si, eps, dx, dg, db); });
}

// ---- activations ----
PATHO_OP(reluForward, "x", "y") {
  Tensor x = a.act(0, "x"), y = a.act(1, "y");
  a.shape(y, "y", x.shape());
  a.submit([=](Backend& b) { b.reluForward(x, y); });
}
PATHO_OP(reluBackward, "y", "dy", "dx") {
  Tensor y = a.act(0, "y"), dy = a.act(1, "dy"), dx = a.act(2, "dx");
  a.shape(dy, "dy", y.shape());
  a.shape(dx, "dx", y.shape());
  a.submit([=](Backend& b) { b.reluBackward(y, dy, dx); });
}
PATHO_OP(sigmoidForward, "x", "y") {
  Tensor x = a.act(0, "x"), y = a.act(1, "y");
  a.shape(y, "y", x.shape());
  a.submit([=](Backend& b) { b.sigmoidForward(x, y); });
}

// ---- pooling / upsampling ----
Shape halfShape(Args& a, const Tensor& x, const char* xn) {
  a.rank(x, xn, 4);
  PATHO_CHECK(x.dim(2) % 2 == 0 && x.dim(3) % 2 == 0, "ERR_PATHO_SHAPE",
              a.op() << ": Expected even height and width for " << xn << " but received " << x.describe());
  return {x.dim(0), x.dim(1), x.dim(2) / 2, x.dim(3) / 2};
}
PATHO_OP(maxPool2dForward, "x", "y") {
  Tensor x = a.act(0, "x"), y = a.act(1, "y");
  a.shape(y, "y", halfShape(a, x, "x"));
  if (x.numel() == 0) return;
  a.submit([=](Backend& b) { b.maxPool2dForward(x, y); });
}
PATHO_OP(maxPool2dBackward, "x", "y", "dy", "dx") {
  Tensor x = a.act(0, "x"), y = a.act(1, "y"), dy = a.act(2, "dy"), dx = a.act(3, "dx");
  Shape hs = halfShape(a, x, "x");
  a.shape(y, "y", hs);
  a.shape(dy, "dy", hs);
  a.shape(dx, "dx", x.shape());
  if (x.numel() == 0) return;
  a.submit([=](Backend& b) { b.maxPool2dBackward(x, y, dy, dx); });
}
PATHO_OP(upsampleBilinear2xForward, "x", "y") {
  Tensor x = a.act(0, "x"), y = a.act(1, "y");
  a.rank(x, "x", 4);
  a.shape(y, "y", {x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3)});
  if (x.numel() == 0) return;
  a.submit([=](Backend& b) { b.upsampleBilinear2xForward(x, y); });
}
PATHO_OP(upsampleBilinear2xBackward, "dy", "dx") {
  Tensor dy = a.act(0, "dy"), dx = a.act(1, "dx");
  a.rank(dx, "dx", 4);
  a.shape(dy, "dy", {dx.dim(0), dx.dim(1), 2 * dx.dim(2), 2 * dx.dim(3)});
  if (dx.numel() == 0) return;
  a.submit([=](Backend& b) { b.upsampleBilinear2xBackward(dy, dx); });
}

// ---- concat / split ----
void concatShapes(Args& a, const Tensor& p, const char* pn, const Tensor& q, const char* qn, const Tensor& y,
                  const char* yn) {
  a.rank(p, pn, 4);
  a.rank(q, qn, 4);
  PATHO_CHECK(p.dim(0) == q.dim(0) && p.dim(2) == q.dim(2) && p.dim(3) == q.dim(3), "ERR_PATHO_SHAPE",
              a.op() << ": Expected " << pn << " and " << qn << " to agree in N, H, W but received " << p.describe()
                     << " and " << q.describe());
  a.shape(y, yn, {p.dim(0), p.dim(1) + q.dim(1), p.dim(2), p.dim(3)});
}
PATHO_OP(concatChannels, "a", "b", "y") {
  Tensor p = a.act(0, "a"), q = a.act(1, "b"), y = a.act(2, "y");
  concatShapes(a, p, "a", q, "b", y, "y");
  if (y.numel() == 0) return;
  a.submit([=](Backend& b) { b.concatChannels(p, q, y); });
}
PATHO_OP(splitChannels, "dy", "da", "db") {
  Tensor dy = a.act(0, "dy"), da = a.act(1, "da"), db = a.act(2, "db");
  concatShapes(a, da, "da", db, "db", dy, "dy");
  if (dy.numel() == 0) return;
  a.submit([=](Backend& b) { b.splitChannels(dy, da, db); });
}

// ---- losses ----
void lossShapes(Args& a, const Tensor& logits, const Tensor& target) { a.shape(target, "target", logits.shape()); }
PATHO_OP(bceJaccardForward, "logits", "target", "jaccardWeight", "eps", "loss", "stats") {
  Tensor lg = a.tensor(0, "logits"), tg = a.tensor(1, "target");
  float w = float(a.number(2, "jaccardWeight")), eps = float(a.number(3, "eps"));
  Tensor loss = a.tensor(4, "loss"), stats = a.tensor(5, "stats");
  lossShapes(a, lg, tg);
  a.shape(loss, "loss", {1});
  a.shape(stats, "stats", {4});
  a.submit([=](Backend& b) { b.bceJaccardForward(lg, tg, w, eps, loss, stats); });
}
PATHO_OP(bceJaccardBackward, "logits", "target", "stats", "dloss", "jaccardWeight", "eps", "dlogits") {
  Tensor lg = a.tensor(0, "logits"), tg = a.tensor(1, "target"), stats = a.tensor(2, "stats"),
         dloss = a.tensor(3, "dloss");
  float w = float(a.number(4, "jaccardWeight")), eps = float(a.number(5, "eps"));
  Tensor dlg = a.tensor(6, "dlogits");
  lossShapes(a, lg, tg);
  a.shape(stats, "stats", {4});
  a.shape(dloss, "dloss", {1});
  a.shape(dlg, "dlogits", lg.shape());
  a.submit([=](Backend& b) { b.bceJaccardBackward(lg, tg, stats, dloss, w, eps, dlg); });
}
PATHO_OP(diceLossForward, "logits", "target", "eps", "loss", "stats") {
  Tensor lg = a.tensor(0, "logits"), tg = a.tensor(1, "target");
  float eps = float(a.number(2, "eps"));
  Tensor loss = a.tensor(3, "loss"), stats = a.tensor(4, "stats");
  lossShapes(a, lg, tg);
  a.shape(loss, "loss", {1});
  a.shape(stats, "stats", {4});
  a.submit([=](Backend& b) { b.diceLossForward(lg, tg, eps, loss, stats); });
}
PATHO_OP(diceLossBackward, "logits", "target", "stats", "dloss", "eps", "dlogits") {
  Tensor lg = a.tensor(0, "logits"), tg = a.tensor(1, "target"), stats = a.tensor(2, "stats"),
         dloss = a.tensor(3, "dloss");
  float eps = float(a.number(4, "eps"));
  Tensor dlg = a.tensor(5, "dlogits");
  lossShapes(a, lg, tg);
  a.shape(stats, "stats", {4});
  a.shape(dloss, "dloss", {1});
  a.shape(dlg, "dlogits", lg.shape());
  a.submit([=](Backend& b) { b.diceLossBackward(lg, tg, stats, dloss, eps, dlg); });
}

// ---- metrics ----
PATHO_OP(segmentationCounts, "prob", "target", "thresholds", "counts") {
  Tensor prob = a.tensor(0, "prob"), tg = a.tensor(1, "target"), th = a.tensor(2, "thresholds"),
         counts = a.tensor(3, "counts");
  a.rank(prob, "prob", 4);
  a.shape(tg, "target", prob.shape());
  a.rank(th, "thresholds", 1);
  a.shape(counts, "counts", {prob.dim(0), th.dim(0), 3});
  if (counts.numel() == 0) return;
  if (prob.numel() == 0) {  // images without pixels: nothing predicted, nothing true
    a.submit([=](Backend& b) { b.fill(counts, 0.f); });
    return;
  }
  a.submit([=](Backend& b) { b.segmentationCounts(prob, tg, th, counts); });
}

// ---- optimizers ----
PATHO_OP(sgdUpdate, "params", "grads", "momentumBuf", "lr", "momentum", "dampening", "weightDecay", "nesterov") {
  Tensor p = a.tensor(0, "params"), g = a.tensor(1, "grads"), m = a.tensor(2, "momentumBuf");
  SgdParams sp;
  sp.lr = float(a.number(3, "lr"));
  sp.momentum = float(a.number(4, "momentum"));
  sp.dampening = float(a.number(5, "dampening"));
  sp.weightDecay = float(a.number(6, "weightDecay"));
  sp.nesterov = a.boolean(7, "nesterov");
  a.sameNumel(p, "params", g, "grads");
  a.sameNumel(p, "params", m, "momentumBuf");
  a.submit([=](Backend& b) { b.sgdUpdate(p, g, m, sp); });
}
PATHO_OP(adamUpdate, "params", "grads", "m", "v", "lr", "beta1", "beta2", "eps", "weightDecay", "decoupled", "step") {
  Tensor p = a.tensor(0, "params"), g = a.tensor(1, "grads"), m = a.tensor(2, "m"), v = a.tensor(3, "v");
  AdamParams ap;
  ap.lr = float(a.number(4, "lr"));
  ap.beta1 = float(a.number(5, "beta1"));
  ap.beta2 = float(a.number(6, "beta2"));
  ap.eps = float(a.number(7, "eps"));
  ap.weightDecay = float(a.number(8, "weightDecay"));
  ap.decoupled = a.boolean(9, "decoupled");
  ap.step = int64_t(a.number(10, "step"));
  PATHO_CHECK(ap.step >= 1, "ERR_PATHO_ARG", "adamUpdate: Expected step >= 1 but received " << ap.step);
  a.sameNumel(p, "params", g, "grads");
  a.sameNumel(p, "params", m, "m");
  a.sameNumel(p, "params", v, "v");
  a.submit([=](Backend& b) { b.adamUpdate(p, g, m, v, ap); });
}
PATHO_OP(clipGradNorm, "grads", "maxNorm", "normOut") {
  Tensor g = a.tensor(0, "grads");
  float maxNorm = float(a.number(1, "maxNorm"));
  Tensor out = a.tensor(2, "normOut");
  a.shape(out, "normOut", {1});
  PATHO_CHECK(maxNorm > 0, "ERR_PATHO_ARG", "clipGradNorm: Expected maxNorm > 0 but received " << maxNorm);
  a.submit([=](Backend& b) { b.clipGradNorm(g, maxNorm, out); });
}

// ---- batch upload ----
PATHO_OP(normalizeImagesU8, "pixels", "mean", "std", "y") {
  Tensor px = a.tensor(0, "pixels", DType::U8);
  auto mean = a.floats(1, "mean"), std = a.floats(2, "std");
  Tensor y = a.tensor(3, "y");
  a.rank(px, "pixels", 4);
  int64_t C = px.dim(3);
  PATHO_CHECK(int64_t(mean.size()) == C && int64_t(std.size()) == C, "ERR_PATHO_ARG",
              "normalizeImagesU8: Expected " << C << " values for mean and std (one per channel) but received "
                                             << mean.size() << " and " << std.size());
  for (float s : std) PATHO_CHECK(s > 0, "ERR_PATHO_ARG", "normalizeImagesU8: Expected std > 0 but received " << s);
  a.shape(y, "y", {px.dim(0), C, px.dim(1), px.dim(2)});
  if (y.numel() == 0) return;
  a.submit([=](Backend& b) { b.normalizeImagesU8(px, mean, std, y); });
}
PATHO_OP(masksU8ToFloat, "masks", "y") {
  Tensor m = a.tensor(0, "masks", DType::U8), y = a.tensor(1, "y");
  a.rank(m, "masks", 3);
  a.shape(y, "y", {m.dim(0), 1, m.dim(1), m.dim(2)});
  if (y.numel() == 0) return;
  a.submit([=](Backend& b) { b.masksU8ToFloat(m, y); });
}

}  // namespace

void registerOps(Napi::Env env, Napi::Object exports) {
  // opParams: every op's parameter names, as the binding reads them (for tests and tooling)
  const OpEntry entries[] = {
      PATHO_ENTRY(fill),
      PATHO_ENTRY(copy),
      PATHO_ENTRY(scale),
      PATHO_ENTRY(axpy),
      PATHO_ENTRY(sumSquares),
      PATHO_ENTRY(convert),
      PATHO_ENTRY(conv2dForward),
      PATHO_ENTRY(conv2dBackwardData),
      PATHO_ENTRY(conv2dBackwardFilter),
      PATHO_ENTRY(conv2dInference),
      PATHO_ENTRY(batchNormForwardTraining),
      PATHO_ENTRY(batchNormForwardInference),
      PATHO_ENTRY(batchNormBackward),
      PATHO_ENTRY(reluForward),
      PATHO_ENTRY(reluBackward),
      PATHO_ENTRY(sigmoidForward),
      PATHO_ENTRY(maxPool2dForward),
      PATHO_ENTRY(maxPool2dBackward),
      PATHO_ENTRY(upsampleBilinear2xForward),
      PATHO_ENTRY(upsampleBilinear2xBackward),
      PATHO_ENTRY(concatChannels),
      PATHO_ENTRY(splitChannels),
      PATHO_ENTRY(bceJaccardForward),
      PATHO_ENTRY(bceJaccardBackward),
      PATHO_ENTRY(diceLossForward),
      PATHO_ENTRY(diceLossBackward),
      PATHO_ENTRY(segmentationCounts),
      PATHO_ENTRY(sgdUpdate),
      PATHO_ENTRY(adamUpdate),
      PATHO_ENTRY(clipGradNorm),
      PATHO_ENTRY(normalizeImagesU8),
      PATHO_ENTRY(masksU8ToFloat),
  };
  registerOpTable(env, exports, entries, sizeof(entries) / sizeof(entries[0]));
}

}  // namespace patho
