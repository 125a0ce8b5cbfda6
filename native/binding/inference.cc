// inferenceRun: a whole forward pass (lib/nn/inference.ts builds it once per compiled network) run
// as one task on the device queue. Each intermediate tensor is allocated from the device's caching
// allocator when its step runs and returned to it at its `free` step, so at any time only the live
// activations (the skips and the layer being computed) hold memory. Ops issued one by one from JS
// allocate every output at issue time, ahead of the queue, so a forward pass would hold all its
// activations at once. The steps call the Backend's own ops (conv2dInference, maxPool2dForward,
// upsampleBilinear2xForward, concatChannels, convert): the same code on the CPU and on CUDA.
//
// inferenceRun(x, y, dtype, layout, program: number[], params: NativeTensor[]): void (queued)
//   slot 0 is x, slot 1 is y (the output, written by the step that names it), others are made by
//   their step in `dtype`/`layout` (the compute precision and memory order) unless they write y.
//   Steps, flat: [1, in, w, b|-1, relu, out] conv2dInference (w, b index params)
//                [2, in, out] maxPool2dForward      [3, in, out] upsampleBilinear2xForward
//                [4, a, b, out] concatChannels      [5, slot] free
//                [6, in, out] convert (to the compute dtype/layout; to y's own when out is 1; a
//                             conversion to what the tensor already is makes no copy)
// Every shape, dtype and index is checked here, on the JS thread, before anything is queued.
#include <napi.h>

#include <string>
#include <vector>

#include "devices.h"
#include "errors.h"
#include "tensor_wrap.h"

namespace patho {
namespace {

enum Op { kConv = 1, kPool = 2, kUp = 3, kCat = 4, kFree = 5, kConvert = 6 };
constexpr int kMaxSlots = 4096;

struct Step {
  int op = 0, a = -1, b = -1, c = -1, d = -1, out = -1;  // conv: a in, b w, c bias, d relu
};

// What a slot will hold when the step runs: shape and kind, known before anything runs.
struct SlotInfo {
  bool live = false;
  Shape shape;
  DType dtype = DType::F32;
  Layout layout = Layout::NCHW;
};

const char* kFn = "inferenceRun";

int intAt(const Napi::Array& a, uint32_t i) {
  PATHO_CHECK(i < a.Length(), "ERR_PATHO_ARG", kFn << ": the program ends inside a step");
  Napi::Value v = a.Get(i);
  PATHO_CHECK(v.IsNumber(), "ERR_PATHO_ARG",
              kFn << ": Expected integers in program but received a non-number at " << i);
  double d = v.As<Napi::Number>().DoubleValue();
  PATHO_CHECK(d == double(int64_t(d)) && d >= -1 && d < kMaxSlots, "ERR_PATHO_ARG",
              kFn << ": Expected integers in [-1, " << kMaxSlots << ") in program but received " << d << " at " << i);
  return int(d);
}

std::vector<Step> parseProgram(const Napi::Value& v) {
  PATHO_CHECK(v.IsArray(), "ERR_PATHO_ARG", kFn << ": Expected an array of integers for program");
  auto arr = v.As<Napi::Array>();
  std::vector<Step> steps;
  for (uint32_t i = 0; i < arr.Length();) {
    Step s;
    s.op = intAt(arr, i++);
    switch (s.op) {
      case kConv:
        s.a = intAt(arr, i++);
        s.b = intAt(arr, i++);
        s.c = intAt(arr, i++);
        s.d = intAt(arr, i++);
        s.out = intAt(arr, i++);
        break;
      case kPool:
      case kUp:
      case kConvert:
        s.a = intAt(arr, i++);
        s.out = intAt(arr, i++);
        break;
      case kCat:
        s.a = intAt(arr, i++);
        s.b = intAt(arr, i++);
        s.out = intAt(arr, i++);
        break;
      case kFree:
        s.a = intAt(arr, i++);
        break;
      default:
        PATHO_THROW("ERR_PATHO_ARG", kFn << ": unknown step " << s.op << " at " << (i - 1) << " of program");
    }
    steps.push_back(s);
  }
  return steps;
}

// Checks the program against x, y and the parameters by running it on shapes only.
void checkProgram(const std::vector<Step>& steps, const Tensor& x, const Tensor& y, DType dt, Layout layout,
                  const std::vector<Tensor>& params) {
  std::vector<SlotInfo> slots(2);
  slots[0] = {true, x.shape(), x.dtype(), x.layout()};
  bool wroteY = false;
  auto in = [&](int s, size_t k, const char* what) -> SlotInfo& {
    PATHO_CHECK(s >= 0 && size_t(s) < slots.size() && slots[s].live, "ERR_PATHO_ARG",
                kFn << ": step " << k << " reads slot " << s << " (" << what << "), which holds nothing then");
    return slots[s];
  };
  auto out = [&](int s, size_t k, const Shape& shape, bool computeKind) {
    PATHO_CHECK(s >= 1, "ERR_PATHO_ARG", kFn << ": step " << k << " writes slot " << s << " (x is read-only)");
    if (size_t(s) >= slots.size()) slots.resize(size_t(s) + 1);
    PATHO_CHECK(!slots[s].live, "ERR_PATHO_ARG",
                kFn << ": step " << k << " writes slot " << s << ", which is still live");
    checkedBytes(shape, 4, kFn);
    if (s == 1) {
      PATHO_CHECK(shape == y.shape() && (!computeKind || (y.dtype() == dt && y.layout() == layout)), "ERR_PATHO_SHAPE",
                  kFn << ": step " << k << " makes " << shapeStr(shape) << " but y is " << y.describe());
      wroteY = true;
      slots[1] = {true, y.shape(), y.dtype(), y.layout()};
      return;
    }
    slots[s] = {true, shape, dt, shape.size() == 4 ? layout : Layout::NCHW};
  };
  auto param = [&](int i, size_t k) -> const Tensor& {
    PATHO_CHECK(i >= 0 && size_t(i) < params.size(), "ERR_PATHO_ARG",
                kFn << ": step " << k << " names parameter " << i << " of " << params.size());
    return params[size_t(i)];
  };
  for (size_t k = 0; k < steps.size(); k++) {
    const Step& s = steps[k];
    if (s.op == kFree) {
      PATHO_CHECK(s.a >= 0 && size_t(s.a) < slots.size() && slots[s.a].live, "ERR_PATHO_ARG",
                  kFn << ": step " << k << " frees slot " << s.a << ", which holds nothing");
      slots[s.a].live = false;
      continue;
    }
    if (s.op == kConvert) {
      Shape sh = in(s.a, k, "input").shape;
      out(s.out, k, sh, false);
      continue;
    }
    const SlotInfo a = in(s.a, k, "input");  // a copy: out() may grow slots
    PATHO_CHECK(a.shape.size() == 4 && a.dtype == dt && a.layout == layout, "ERR_PATHO_DTYPE",
                kFn << ": step " << k << " reads " << dtypeName(a.dtype) << shapeStr(a.shape) << " "
                    << layoutName(a.layout) << " where " << dtypeName(dt) << " " << layoutName(layout)
                    << " 4-D activations are computed");
    const Shape as = a.shape;
    if (s.op == kConv) {
      const Tensor& w = param(s.b, k);
      PATHO_CHECK(w.ndim() == 4 && w.dtype() == dt && w.layout() == layout && (w.dim(2) == 1 || w.dim(2) == 3) &&
                      w.dim(3) == w.dim(2) && w.dim(1) == as[1] && w.dim(0) > 0,
                  "ERR_PATHO_SHAPE",
                  kFn << ": step " << k << ": weights " << w.describe() << " do not fit input " << shapeStr(as));
      if (s.c >= 0) {
        const Tensor& b = param(s.c, k);
        PATHO_CHECK(
            b.dtype() == DType::F32 && b.shape() == Shape{w.dim(0)}, "ERR_PATHO_SHAPE",
            kFn << ": step " << k << ": Expected a float32 bias of [" << w.dim(0) << "] but received " << b.describe());
      }
      PATHO_CHECK(s.d == 0 || s.d == 1, "ERR_PATHO_ARG", kFn << ": step " << k << ": Expected 0 or 1 for relu");
      out(s.out, k, {as[0], w.dim(0), as[2], as[3]}, true);
    } else if (s.op == kPool) {
      PATHO_CHECK(as[2] % 2 == 0 && as[3] % 2 == 0, "ERR_PATHO_SHAPE",
                  kFn << ": step " << k << " pools odd " << shapeStr(as));
      out(s.out, k, {as[0], as[1], as[2] / 2, as[3] / 2}, true);
    } else if (s.op == kUp) {
      out(s.out, k, {as[0], as[1], 2 * as[2], 2 * as[3]}, true);
    } else {  // kCat
      const SlotInfo b = in(s.b, k, "second input");
      PATHO_CHECK(b.shape.size() == 4 && b.dtype == dt && b.layout == layout && b.shape[0] == as[0] &&
                      b.shape[2] == as[2] && b.shape[3] == as[3],
                  "ERR_PATHO_SHAPE",
                  kFn << ": step " << k << " concatenates " << shapeStr(as) << " and " << shapeStr(b.shape));
      out(s.out, k, {as[0], as[1] + b.shape[1], as[2], as[3]}, true);
    }
  }
  PATHO_CHECK(wroteY, "ERR_PATHO_ARG", kFn << ": no step writes y (slot 1)");
}

// Runs on the queue thread: the steps, allocating each slot from the backend's allocator as it is made.
void runProgram(Backend& be, const std::vector<Step>& steps, const Tensor& x, const Tensor& y, DType dt, Layout layout,
                const std::vector<Tensor>& params) {
  std::vector<Tensor> slots(2);
  slots[0] = x;
  auto make = [&](int s, const Shape& shape, DType t, Layout l) -> Tensor& {
    if (size_t(s) >= slots.size()) slots.resize(size_t(s) + 1);
    if (s == 1) return slots[1] = y;
    const size_t bytes = size_t(shapeNumel(shape)) * dtypeSize(t);
    slots[s] = Tensor(shape, t, x.device(), std::make_shared<Storage>(&be.allocator(), bytes), 0, l);
    return slots[s];
  };
  for (const Step& s : steps) {
    switch (s.op) {
      case kFree:
        slots[s.a] = Tensor();
        break;  // back to the cache (in stream order on CUDA)
      case kConvert: {
        const Tensor src = slots[s.a];
        const DType t = s.out == 1 ? y.dtype() : dt;
        const Layout l = s.out == 1 ? y.layout() : src.ndim() == 4 ? layout : Layout::NCHW;
        if (s.out != 1 && src.dtype() == t && src.layout() == l) {
          if (size_t(s.out) >= slots.size()) slots.resize(size_t(s.out) + 1);
          slots[s.out] = src;  // already what is asked for: the same tensor
        } else if (src.dtype() == t && src.layout() == l) {
          be.copy(make(s.out, src.shape(), t, l), src);
        } else {
          be.convert(src, make(s.out, src.shape(), t, l));
        }
        break;
      }
      case kConv: {
        const Tensor in = slots[s.a];  // copies: make() may grow slots
        const Tensor& w = params[size_t(s.b)];
        Tensor bias = s.c >= 0 ? params[size_t(s.c)] : Tensor();
        Tensor& o = make(s.out, {in.dim(0), w.dim(0), in.dim(2), in.dim(3)}, dt, layout);
        if (o.numel()) be.conv2dInference(in, w, bias, s.d == 1, o);
        break;
      }
      case kPool: {
        const Tensor in = slots[s.a];
        Tensor& o = make(s.out, {in.dim(0), in.dim(1), in.dim(2) / 2, in.dim(3) / 2}, dt, layout);
        if (in.numel()) be.maxPool2dForward(in, o);
        break;
      }
      case kUp: {
        const Tensor in = slots[s.a];
        Tensor& o = make(s.out, {in.dim(0), in.dim(1), 2 * in.dim(2), 2 * in.dim(3)}, dt, layout);
        if (in.numel()) be.upsampleBilinear2xForward(in, o);
        break;
      }
      case kCat: {
        const Tensor a = slots[s.a], b = slots[s.b];
        Tensor& o = make(s.out, {a.dim(0), a.dim(1) + b.dim(1), a.dim(2), a.dim(3)}, dt, layout);
        if (o.numel()) be.concatChannels(a, b, o);
        break;
      }
    }
  }
}

}  // namespace

Napi::Value InferenceRun(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    PATHO_CHECK(info.Length() == 6, "ERR_PATHO_ARG",
                kFn << ": Expected 6 arguments (x, y, dtype, layout, program, params) but received " << info.Length());
    Tensor x = TensorHandle::FromValue(info[0], kFn, "x"), y = TensorHandle::FromValue(info[1], kFn, "y");
    PATHO_CHECK(info[2].IsString() && info[3].IsString(), "ERR_PATHO_ARG",
                kFn << ": Expected strings for dtype and layout");
    const DType dt = parseDType(info[2].As<Napi::String>().Utf8Value());
    const Layout layout = parseLayout(info[3].As<Napi::String>().Utf8Value());
    PATHO_CHECK(dt == DType::F32 || dt == DType::BF16, "ERR_PATHO_DTYPE",
                kFn << ": Expected float32 or bfloat16 for dtype");
    for (const Tensor* t : {&x, &y})
      PATHO_CHECK(t->ndim() == 4 && (t->dtype() == DType::F32 || t->dtype() == DType::BF16), "ERR_PATHO_DTYPE",
                  kFn << ": Expected 4-D float32 or bfloat16 x and y but received " << t->describe());
    std::vector<Step> steps = parseProgram(info[4]);
    PATHO_CHECK(info[5].IsArray(), "ERR_PATHO_ARG", kFn << ": Expected an array of NativeTensors for params");
    auto arr = info[5].As<Napi::Array>();
    std::vector<Tensor> params;
    for (uint32_t i = 0; i < arr.Length(); i++) params.push_back(TensorHandle::FromValue(arr.Get(i), kFn, "params[i]"));
    for (const Tensor& t : params)
      PATHO_CHECK(t.device() == x.device(), "ERR_PATHO_DEVICE",
                  kFn << ": Expected params on " << x.device().str() << " but received " << t.describe());
    PATHO_CHECK(y.device() == x.device(), "ERR_PATHO_DEVICE",
                kFn << ": Expected y on " << x.device().str() << " but received " << y.describe());
    checkProgram(steps, x, y, dt, layout, params);
    DeviceContext& ctx = deviceContext(x.device());
    Backend* be = ctx.backend.get();
    ctx.queue->submit([be, steps = std::move(steps), x, y, dt, layout, params = std::move(params)] {
      runProgram(*be, steps, x, y, dt, layout, params);
    });
    return info.Env().Undefined();
  });
}

}  // namespace patho
