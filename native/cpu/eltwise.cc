// Activations on oneDNN eltwise primitives (JIT-vectorised for the machine's ISA, which our
// x86-64-v2 build of own loops is not). Tensors are viewed as flat 1-D arrays; oneDNN's own
// primitive cache makes re-creating a primitive for a seen size cheap. The ACT tensors of one call
// share dtype and layout, so the flat view holds for NHWC too, and oneDNN's bfloat16 eltwise
// computes in float32 and rounds once on store.
#include "cpu_ops.h"

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
  prim.execute(ctx.stream, {{DNNL_ARG_SRC, memory(md, ctx.engine, x.raw())}, {DNNL_ARG_DST, memory(md, ctx.engine, y.raw())}});
  ctx.stream.wait();
}

}  // namespace

void reluForward(DnnlContext& ctx, const Tensor& x, const Tensor& y) {
  withDnnl("reluForward", [&] { forward(ctx, dnnl::algorithm::eltwise_relu, x, y); });
}

void sigmoidForward(DnnlContext& ctx, const Tensor& x, const Tensor& y) {
  withDnnl("sigmoidForward", [&] { forward(ctx, dnnl::algorithm::eltwise_logistic, x, y); });
}

// The _use_dst_for_bwd variant computes dx = y > 0 ? dy : 0 from the forward output, which is
// what the contract passes; oneDNN allows dx to alias dy.
void reluBackward(DnnlContext& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  withDnnl("reluBackward", [&] {
    if (y.numel() == 0) return;
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
