// Activations on oneDNN eltwise primitives (JIT-vectorised for the machine's ISA, which our
// x86-64-v2 build of own loops is not). Tensors are viewed as flat 1-D arrays; oneDNN's own
// primitive cache makes re-creating a primitive for a seen size cheap. The ACT tensors of one call
// share dtype and layout, so the flat view holds for NHWC too, and oneDNN's bfloat16 eltwise
// computes in float32 and rounds once on store. Where oneDNN has no bfloat16 eltwise kernel (AVX2
// CPUs), bf16 calls are staged through float32 (bf16_support.h): the same float32 result, rounded once.
#include "bf16_support.h"
#include "cpu_ops.h"
#include "staging.h"

namespace patho {
namespace cpu {

using dnnl::memory;

namespace {

memory::desc flat(const Tensor& t) { return memory::desc({t.numel()}, dnnlType(t.dtype()), memory::format_tag::a); }

void forward(DnnlContext& ctx, dnnl::algorithm alg, const Tensor& x, const Tensor& y) {
  if (x.numel() == 0) return;
  auto md = flat(x);
  dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, alg, md, 0.f, 0.f);
  dnnl::eltwise_forward prim(dnnl::eltwise_forward::primitive_desc(desc, ctx.engine));
  prim.execute(ctx.stream,
               {{DNNL_ARG_SRC, memory(md, ctx.engine, x.raw())}, {DNNL_ARG_DST, memory(md, ctx.engine, y.raw())}});
  ctx.stream.wait();
}

// Whether a call on tensors of dtype dt must be staged through float32. The first bf16 call asks
// oneDNN for a bf16 ReLU primitive; its answer holds for the other algorithms too.
bool stagedBf16(DnnlContext& ctx, DType dt) {
  if (dt != DType::BF16) return false;
  if (ctx.eltwiseBf16 < 0) {
    try {
      memory::desc md({1}, memory::data_type::bf16, memory::format_tag::a);
      dnnl::eltwise_forward::primitive_desc(
          dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_relu, md, 0.f, 0.f),
          ctx.engine);
      ctx.eltwiseBf16 = 1;
    } catch (const dnnl::error& e) {
      if (!isUnimplemented(e)) throw;
      ctx.eltwiseBf16 = 0;
    }
  }
  return ctx.eltwiseBf16 == 0;
}

// float32 copies in the tensors' own layout (the flat view stays the same), from the backend's allocator.
Staging f32Staging(DnnlContext& ctx) {
  return Staging(
      ctx.alloc, [&ctx]() -> DnnlContext& { return ctx; }, true);
}

void forwardOrStaged(DnnlContext& ctx, dnnl::algorithm alg, const Tensor& x, const Tensor& y) {
  if (!stagedBf16(ctx, x.dtype())) return forward(ctx, alg, x, y);
  Staging s = f32Staging(ctx);
  forward(ctx, alg, s.in(x), s.out(y));
  s.finish();
}

}  // namespace

void reluForward(DnnlContext& ctx, const Tensor& x, const Tensor& y) {
  withDnnl("reluForward", [&] { forwardOrStaged(ctx, dnnl::algorithm::eltwise_relu, x, y); });
}

void sigmoidForward(DnnlContext& ctx, const Tensor& x, const Tensor& y) {
  withDnnl("sigmoidForward", [&] { forwardOrStaged(ctx, dnnl::algorithm::eltwise_logistic, x, y); });
}

// The _use_dst_for_bwd variant computes dx = y > 0 ? dy : 0 from the forward output, which is
// what the contract passes; oneDNN allows dx to alias dy.
void reluBackward(DnnlContext& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  withDnnl("reluBackward", [&] {
    if (y.numel() == 0) return;
    if (stagedBf16(ctx, y.dtype())) {
      // dx may alias dy: dy is read into its float32 copy before dx's copy is written back
      Staging s = f32Staging(ctx);
      reluBackward(ctx, s.in(y), s.in(dy), s.out(dx));
      s.finish();
      return;
    }
    auto md = flat(y);
    auto alg = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
    dnnl::eltwise_forward::primitive_desc hint(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, alg, md, 0.f, 0.f), ctx.engine);
    dnnl::eltwise_backward::desc desc(alg, md, md, 0.f, 0.f);
    dnnl::eltwise_backward prim(dnnl::eltwise_backward::primitive_desc(desc, ctx.engine, hint));
    prim.execute(ctx.stream, {{DNNL_ARG_DST, memory(md, ctx.engine, y.raw())},
                              {DNNL_ARG_DIFF_DST, memory(md, ctx.engine, dy.raw())},
                              {DNNL_ARG_DIFF_SRC, memory(md, ctx.engine, dx.raw())}});
    ctx.stream.wait();
  });
}

}  // namespace cpu
}  // namespace patho
