// 3x3 / 1x1 'same' convolutions (stride 1) on oneDNN: forward, backward data, backward filter, and
// the inference forward (conv2dInference: forward_inference with the ReLU as a post-op, so a
// BN-folded Conv+BN+ReLU block is one primitive and one pass over its output).
// Tensors are plain at the interface: float32 or bfloat16 (x, w, y and their gradients alike),
// NCHW / OIHW or NHWC / OHWI (bias and its gradient always float32). Primitives are created with
// format_tag::any so oneDNN picks its blocked layouts (nChw16c, OIhw16i16o on avx512), and each op
// reorders into and out of them. With 16 or more channels on both sides that is 1.3-8x faster than oneDNN on plain
// NCHW, reorders included; with few channels (the 1-channel head, the RGB input's data gradient)
// the padding to 16 and the reorders cost more than they win, so those use plain layouts (see
// layoutFor and bench/RESULTS.md). NHWC tensors mostly run on oneDNN's channels-last kernels with
// only the weights reordered. PATHO_CPU_CONV_LAYOUT=plain|blocked|nxc forces one, for comparison.
// Primitives and reorders are cached per shape; weights are reordered on every call since they
// change every step. Where oneDNN has no bfloat16 kernel for a shape (CPUs without AVX-512), the
// call is staged through float32 (bf16_support.h): the float32 convolution, its output rounded once.
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include "bf16_support.h"
#include "cpu_ops.h"
#include "staging.h"

namespace patho {
namespace cpu {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

enum class Kind { Forward, BackwardData, BackwardFilter, Inference, InferenceRelu };
bool isForward(Kind k) { return k == Kind::Forward || k == Kind::Inference || k == Kind::InferenceRelu; }

// One tensor argument of a primitive: the layout at the interface, the layout the primitive
// wants, and the reorder between them (user -> primitive for inputs, the other way for outputs).
struct Port {
  memory::desc user, prim;
  bool needsReorder = false;
  dnnl::reorder reorder;
};

struct Plan {
  dnnl::primitive prim;
  Port a, b, c;  // forward: src, weights, dst; data: diff_dst, weights, diff_src; filter: src, diff_dst, diff_weights
  memory::desc scratchpad;
};

// kind, n, c, h, w, k, r, bias, dtype, layout
using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, int, int>;

Port makePort(const dnnl::engine& e, const memory::desc& user, const memory::desc& prim, bool input) {
  Port p;
  p.user = user;
  p.prim = prim;
  p.needsReorder = user != prim;
  if (p.needsReorder)
    p.reorder = input ? dnnl::reorder(dnnl::reorder::primitive_desc(e, user, e, prim))
                      : dnnl::reorder(dnnl::reorder::primitive_desc(e, prim, e, user));
  return p;
}

}  // namespace

struct ConvCache {
  // Plain: every tensor as the user holds it; Blocked: format_tag::any everywhere; Nxc: activations
  // as the user holds them (NHWC), weights format_tag::any (oneDNN's channels-last kernels want
  // blocked weights: with OHWI weights a 3x3 conv falls back to its reference code).
  enum class Layout { Auto, Plain, Blocked, Nxc } layout = Layout::Auto;
  std::map<Key, Plan> plans;
  std::set<Key> noBf16;  // bfloat16 keys oneDNN has no kernel for: staged through float32
};

namespace {

struct Dims {
  int64_t n, c, h, w, k, r;
  dt type;    // of every tensor but the bias
  bool nhwc;  // activations NHWC and weights OHWI
  memory::dims src() const { return {n, c, h, w}; }
  memory::dims dst() const { return {n, k, h, w}; }
  memory::dims wei() const { return {k, c, r, r}; }
  memory::dims pad() const { return {r / 2, r / 2}; }
};

memory::desc userAct(const Dims& d, const memory::dims& m) {
  return memory::desc(m, d.type, d.nhwc ? tag::nhwc : tag::nchw);
}
memory::desc userWei(const Dims& d) { return memory::desc(d.wei(), d.type, d.nhwc ? tag::ohwi : tag::oihw); }
memory::desc anyDesc(const Dims& d, const memory::dims& m) { return memory::desc(m, d.type, tag::any); }

// NCHW float32: plain layouts where channel blocking by 16 mostly pads, as measured per op
// (bench/RESULTS.md): a 1-channel output (the head) is 4-8x faster plain in every direction; with
// a 3-channel input the data gradient is faster plain, while forward and filter gradient still
// gain from blocking.
// NHWC, measured per layer of the UNet (bench/RESULTS.md, "bf16"): bfloat16 runs fastest on the
// channels-last kernels everywhere (no activation reorders; 1-3.4x over blocked); float32 gains
// from them in the forward only. The 1x1 head stays plain in float32 (gemm), and bfloat16 NCHW
// uses blocked layouts but for the head, like float32.
ConvCache::Layout layoutFor(const ConvCache& cache, Kind kind, const Dims& d) {
  using L = ConvCache::Layout;
  if (cache.layout != L::Auto) return cache.layout;
  const bool head = d.k < 16;
  if (d.nhwc) {
    if (d.type == dt::bf16) return L::Nxc;
    if (head && d.r == 1) return L::Plain;
    return isForward(kind) ? L::Nxc : L::Blocked;
  }
  if (d.type == dt::bf16) return head ? L::Plain : L::Blocked;
  return head || (kind == Kind::BackwardData && d.c < 16) ? L::Plain : L::Blocked;
}

struct Descs {
  memory::desc src, wei, dst;
};
Descs descsFor(const Dims& d, ConvCache::Layout layout) {
  using L = ConvCache::Layout;
  const bool asUser = layout == L::Plain || layout == L::Nxc;
  return {asUser ? userAct(d, d.src()) : anyDesc(d, d.src()), layout == L::Plain ? userWei(d) : anyDesc(d, d.wei()),
          asUser ? userAct(d, d.dst()) : anyDesc(d, d.dst())};
}

dnnl::convolution_forward::primitive_desc forwardPd(DnnlContext& ctx, const Dims& d, bool bias,
                                                    ConvCache::Layout layout, const dnnl::primitive_attr& attr,
                                                    dnnl::prop_kind prop = dnnl::prop_kind::forward_training) {
  auto [src, wei, dst] = descsFor(d, layout);
  auto bia = bias ? memory::desc({d.k}, dt::f32, tag::x) : memory::desc();
  dnnl::convolution_forward::desc desc(prop, dnnl::algorithm::convolution_direct, src, wei, bia, dst, {1, 1}, d.pad(),
                                       d.pad());
  return dnnl::convolution_forward::primitive_desc(desc, attr, ctx.engine);
}

Plan& getPlan(DnnlContext& ctx, Kind kind, const Dims& d, bool bias) {
  Key key{int(kind), d.n, d.c, d.h, d.w, d.k, d.r, bias, int(d.type), int(d.nhwc)};
  auto it = ctx.conv->plans.find(key);
  if (it != ctx.conv->plans.end()) return it->second;

  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // scratch comes from ctx.scratch[3]
  const auto& e = ctx.engine;
  const ConvCache::Layout layout = layoutFor(*ctx.conv, kind, d);
  Plan p;
  if (isForward(kind)) {
    // the inference kinds: no workspace for a backward, and the ReLU applied to the float32
    // accumulator before the one rounding to bf16
    const bool inference = kind != Kind::Forward;
    if (kind == Kind::InferenceRelu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(ops);
    }
    auto pd = forwardPd(ctx, d, bias, layout, attr,
                        inference ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training);
    p.a = makePort(e, userAct(d, d.src()), pd.src_desc(), true);
    p.b = makePort(e, userWei(d), pd.weights_desc(), true);
    p.c = makePort(e, userAct(d, d.dst()), pd.dst_desc(), false);
    p.scratchpad = pd.scratchpad_desc();
    p.prim = dnnl::convolution_forward(pd);
  } else {
    auto hint = forwardPd(ctx, d, bias, layout, dnnl::primitive_attr());
    auto [src, wei, dst] = descsFor(d, layout);
    if (kind == Kind::BackwardData) {
      dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, src, wei, dst, {1, 1}, d.pad(),
                                                 d.pad());
      dnnl::convolution_backward_data::primitive_desc pd(desc, attr, e, hint);
      p.a = makePort(e, userAct(d, d.dst()), pd.diff_dst_desc(), true);
      p.b = makePort(e, userWei(d), pd.weights_desc(), true);
      p.c = makePort(e, userAct(d, d.src()), pd.diff_src_desc(), false);
      p.scratchpad = pd.scratchpad_desc();
      p.prim = dnnl::convolution_backward_data(pd);
    } else {
      auto bia = bias ? memory::desc({d.k}, dt::f32, tag::x) : memory::desc();
      dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, src, wei, bia, dst, {1, 1},
                                                    d.pad(), d.pad());
      dnnl::convolution_backward_weights::primitive_desc pd(desc, attr, e, hint);
      p.a = makePort(e, userAct(d, d.src()), pd.src_desc(), true);
      p.b = makePort(e, userAct(d, d.dst()), pd.diff_dst_desc(), true);
      p.c = makePort(e, userWei(d), pd.diff_weights_desc(), false);
      p.scratchpad = pd.scratchpad_desc();
      p.prim = dnnl::convolution_backward_weights(pd);
    }
  }
  return ctx.conv->plans.emplace(key, std::move(p)).first->second;
}

// The memory the primitive reads: the user's buffer, or a reordered copy in `buf`.
memory input(DnnlContext& ctx, Port& p, void* ptr, ScratchBuffer& buf) {
  memory user(p.user, ctx.engine, ptr);
  if (!p.needsReorder) return user;
  memory prim(p.prim, ctx.engine, buf.get(p.prim.get_size()));
  p.reorder.execute(ctx.stream, user, prim);
  return prim;
}
// The memory the primitive writes: the user's buffer, or `buf` to be reordered by `finish`.
memory output(DnnlContext& ctx, Port& p, void* ptr, ScratchBuffer& buf) {
  if (!p.needsReorder) return memory(p.user, ctx.engine, ptr);
  return memory(p.prim, ctx.engine, buf.get(p.prim.get_size()));
}
void finish(DnnlContext& ctx, Port& p, memory prim, void* ptr) {
  if (!p.needsReorder) return;
  memory user(p.user, ctx.engine, ptr);
  p.reorder.execute(ctx.stream, prim, user);
}
memory scratchpad(DnnlContext& ctx, const Plan& p) {
  return memory(p.scratchpad, ctx.engine, ctx.scratch[3].get(p.scratchpad.get_size()));
}

Dims dimsOf(const Tensor& x, const Tensor& w) {
  return {x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), dnnlType(x.dtype()), x.nhwc()};
}

// Whether this bfloat16 call must be staged through float32: oneDNN answers "unimplemented" when
// asked for the bf16 plan (once per shape; the answer is cached either way).
bool stagedBf16(DnnlContext& ctx, Kind kind, const Dims& d, bool bias) {
  if (d.type != dt::bf16) return false;
  Key key{int(kind), d.n, d.c, d.h, d.w, d.k, d.r, bias, int(d.type), int(d.nhwc)};
  if (ctx.conv->noBf16.count(key)) return true;
  try {
    getPlan(ctx, kind, d, bias);
    return false;
  } catch (const dnnl::error& e) {
    if (!isUnimplemented(e)) throw;
  }
  ctx.conv->noBf16.insert(key);
  return true;
}

// float32 copies of bf16 tensors in their own layout, from the backend's allocator.
Staging f32Staging(DnnlContext& ctx) {
  return Staging(
      ctx.alloc, [&ctx]() -> DnnlContext& { return ctx; }, true);
}

// conv2dForward and conv2dInference: the same primitive but for its kind.
void forward(DnnlContext& ctx, Kind kind, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  if (stagedBf16(ctx, kind, dimsOf(x, w), b.defined())) {
    Staging s = f32Staging(ctx);
    forward(ctx, kind, s.in(x), s.in(w), b, s.out(y));
    s.finish();
    return;
  }
  Plan& p = getPlan(ctx, kind, dimsOf(x, w), b.defined());
  memory src = input(ctx, p.a, x.raw(), ctx.scratch[0]);
  memory wei = input(ctx, p.b, w.raw(), ctx.scratch[1]);
  memory dst = output(ctx, p.c, y.raw(), ctx.scratch[2]);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratchpad(ctx, p)}};
  if (b.defined()) args.emplace(DNNL_ARG_BIAS, memory({{b.dim(0)}, dt::f32, tag::x}, ctx.engine, b.raw()));
  p.prim.execute(ctx.stream, args);
  finish(ctx, p.c, dst, y.raw());
  ctx.stream.wait();
}

}  // namespace

void conv2dForward(DnnlContext& ctx, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  withDnnl("conv2dForward", [&] { forward(ctx, Kind::Forward, x, w, b, y); });
}

void conv2dInference(DnnlContext& ctx, const Tensor& x, const Tensor& w, const Tensor& b, bool relu, const Tensor& y) {
  withDnnl("conv2dInference", [&] { forward(ctx, relu ? Kind::InferenceRelu : Kind::Inference, x, w, b, y); });
}

void conv2dBackwardData(DnnlContext& ctx, const Tensor& dy, const Tensor& w, const Tensor& dx) {
  withDnnl("conv2dBackwardData", [&] {
    if (stagedBf16(ctx, Kind::BackwardData, dimsOf(dx, w), false)) {
      Staging s = f32Staging(ctx);
      conv2dBackwardData(ctx, s.in(dy), s.in(w), s.out(dx));
      s.finish();
      return;
    }
    Plan& p = getPlan(ctx, Kind::BackwardData, dimsOf(dx, w), false);
    memory diffDst = input(ctx, p.a, dy.raw(), ctx.scratch[0]);
    memory wei = input(ctx, p.b, w.raw(), ctx.scratch[1]);
    memory diffSrc = output(ctx, p.c, dx.raw(), ctx.scratch[2]);
    p.prim.execute(ctx.stream, {{DNNL_ARG_DIFF_DST, diffDst},
                                {DNNL_ARG_WEIGHTS, wei},
                                {DNNL_ARG_DIFF_SRC, diffSrc},
                                {DNNL_ARG_SCRATCHPAD, scratchpad(ctx, p)}});
    finish(ctx, p.c, diffSrc, dx.raw());
    ctx.stream.wait();
  });
}

void conv2dBackwardFilter(DnnlContext& ctx, const Tensor& x, const Tensor& dy, const Tensor& dw, const Tensor& db) {
  withDnnl("conv2dBackwardFilter", [&] {
    if (stagedBf16(ctx, Kind::BackwardFilter, dimsOf(x, dw), db.defined())) {
      Staging s = f32Staging(ctx);
      conv2dBackwardFilter(ctx, s.in(x), s.in(dy), s.out(dw), db);
      s.finish();
      return;
    }
    Plan& p = getPlan(ctx, Kind::BackwardFilter, dimsOf(x, dw), db.defined());
    memory src = input(ctx, p.a, x.raw(), ctx.scratch[0]);
    memory diffDst = input(ctx, p.b, dy.raw(), ctx.scratch[1]);
    memory diffWei = output(ctx, p.c, dw.raw(), ctx.scratch[2]);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src},
                                         {DNNL_ARG_DIFF_DST, diffDst},
                                         {DNNL_ARG_DIFF_WEIGHTS, diffWei},
                                         {DNNL_ARG_SCRATCHPAD, scratchpad(ctx, p)}};
    if (db.defined()) args.emplace(DNNL_ARG_DIFF_BIAS, memory({{db.dim(0)}, dt::f32, tag::x}, ctx.engine, db.raw()));
    p.prim.execute(ctx.stream, args);
    finish(ctx, p.c, diffWei, dw.raw());
    ctx.stream.wait();
  });
}

// The context owns the conv cache, so it is built here where ConvCache is complete.
DnnlContext::DnnlContext(CachingAllocator& a) : conv(std::make_unique<ConvCache>()), alloc(a) {
  withDnnl("cpu backend", [&] {
    engine = dnnl::engine(dnnl::engine::kind::cpu, 0);
    stream = dnnl::stream(engine);
  });
  const char* layout = std::getenv("PATHO_CPU_CONV_LAYOUT");
  if (layout && std::strcmp(layout, "plain") == 0) conv->layout = ConvCache::Layout::Plain;
  if (layout && std::strcmp(layout, "blocked") == 0) conv->layout = ConvCache::Layout::Blocked;
  if (layout && std::strcmp(layout, "nxc") == 0) conv->layout = ConvCache::Layout::Nxc;
}
DnnlContext::~DnnlContext() = default;

}  // namespace cpu
}  // namespace patho
