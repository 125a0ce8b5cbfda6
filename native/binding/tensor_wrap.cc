// TensorHandle implementation: accessors, dispose/finalize accounting, async read, write, views.
#include "tensor_wrap.h"

#include <cstring>
#include <vector>

#include "core/bf16.h"
#include "devices.h"
#include "errors.h"
#include "shape_args.h"

namespace patho {

Napi::FunctionReference* TensorHandle::ctor_ = nullptr;
std::atomic<int64_t> TensorHandle::liveCount{0};
std::atomic<int64_t> TensorHandle::liveBytes{0};

void TensorHandle::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function f = DefineClass(
      env, "NativeTensor",
      {InstanceAccessor<&TensorHandle::Shape>("shape"), InstanceAccessor<&TensorHandle::DType>("dtype"),
       InstanceAccessor<&TensorHandle::Layout>("layout"), InstanceAccessor<&TensorHandle::Device>("device"),
       InstanceAccessor<&TensorHandle::Numel>("numel"), InstanceAccessor<&TensorHandle::Bytes>("bytes"),
       InstanceAccessor<&TensorHandle::Disposed>("disposed"), InstanceAccessor<&TensorHandle::IsView>("isView"),
       InstanceMethod<&TensorHandle::Dispose>("dispose"), InstanceMethod<&TensorHandle::Read>("read"),
       InstanceMethod<&TensorHandle::Write>("write"), InstanceMethod<&TensorHandle::View>("view")});
  ctor_ = new Napi::FunctionReference(Napi::Persistent(f));
  exports.Set("NativeTensor", f);
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {}

Napi::Object TensorHandle::Wrap(Napi::Env env, Tensor t, bool ownsStorage) {
  Napi::Object obj = ctor_->New({});
  TensorHandle* h = Napi::ObjectWrap<TensorHandle>::Unwrap(obj);
  h->tensor_ = std::move(t);
  h->owns_ = ownsStorage;
  h->disposed_ = false;
  h->bytes_ = ownsStorage ? int64_t(h->tensor_.storage()->bytes()) : 0;
  // V8 is told about host memory only: it schedules full GCs by external memory growth, and a GPU
  // training step allocates gigabytes of device activations (freed by scopes, not by the GC), which
  // made it run several mark-compacts per step on the host thread that feeds the GPU.
  h->external_ = h->tensor_.device().kind == patho::Device::Kind::CPU ? h->bytes_ : 0;
  liveCount++;
  liveBytes += h->bytes_;
  if (h->external_) Napi::MemoryManagement::AdjustExternalMemory(env, h->external_);
  return obj;
}

bool TensorHandle::IsHandle(const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(ctor_->Value());
}

Tensor TensorHandle::FromValue(const Napi::Value& v, const char* op, const char* arg) {
  if (!IsHandle(v))
    PATHO_THROW("ERR_PATHO_ARG", op << ": Expected a NativeTensor for " << arg << " but received "
                                    << (v.IsNull()        ? "null"
                                        : v.IsUndefined() ? "undefined"
                                                          : "another value"));
  TensorHandle* h = Napi::ObjectWrap<TensorHandle>::Unwrap(v.As<Napi::Object>());
  PATHO_CHECK(!h->disposed_, "ERR_PATHO_DISPOSED", op << ": " << arg << " was disposed");
  return h->tensor_;
}

void TensorHandle::release(Napi::Env env) {
  if (disposed_) return;
  disposed_ = true;
  liveCount--;
  liveBytes -= bytes_;
  if (external_) Napi::MemoryManagement::AdjustExternalMemory(env, -external_);
  external_ = 0;
  bytes_ = 0;
  tensor_ = Tensor();  // queued work keeps its own reference; storage returns to the cache after it
}

void TensorHandle::Finalize(Napi::Env env) { release(env); }

Napi::Value TensorHandle::Shape(const Napi::CallbackInfo& info) {
  auto arr = Napi::Array::New(info.Env());
  if (disposed_) return arr;
  for (size_t i = 0; i < tensor_.shape().size(); i++)
    arr.Set(uint32_t(i), Napi::Number::New(info.Env(), double(tensor_.shape()[i])));
  return arr;
}
Napi::Value TensorHandle::DType(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtypeName(tensor_.dtype()));
}
Napi::Value TensorHandle::Layout(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), layoutName(tensor_.layout()));
}
Napi::Value TensorHandle::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), tensor_.device().str());
}
Napi::Value TensorHandle::Numel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), disposed_ ? 0 : double(tensor_.numel()));
}
Napi::Value TensorHandle::Bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), disposed_ ? 0 : double(tensor_.bytes()));
}
Napi::Value TensorHandle::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed_); }
Napi::Value TensorHandle::IsView(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !owns_); }

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  release(info.Env());
  return info.Env().Undefined();
}

namespace {

// Host-side layout/dtype conversion for read() and write(): JS always sees logical NCHW float32.
// Index of logical (n,c,h,w) in an NHWC buffer, walking the NCHW order.
template <typename F>
void forEachNchw(const Tensor& t, F&& f) {
  const int64_t N = t.dim(0), C = t.dim(1), H = t.dim(2), W = t.dim(3);
  int64_t i = 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t w = 0; w < W; w++) f(i++, ((n * H + h) * W + w) * C + c);
}

float loadAsF32(const uint8_t* raw, DType dt, int64_t j) {
  if (dt == DType::BF16) return bf16ToF32(reinterpret_cast<const bf16_t*>(raw)[j]);
  return reinterpret_cast<const float*>(raw)[j];
}

// Device bytes of `t` -> float32 values in logical NCHW order.
std::vector<uint8_t> toNchwF32(const Tensor& t, const std::vector<uint8_t>& raw) {
  std::vector<uint8_t> out(size_t(t.numel()) * 4);
  float* o = reinterpret_cast<float*>(out.data());
  if (t.nhwc())
    forEachNchw(t, [&](int64_t i, int64_t j) { o[i] = loadAsF32(raw.data(), t.dtype(), j); });
  else
    for (int64_t i = 0; i < t.numel(); i++) o[i] = loadAsF32(raw.data(), t.dtype(), i);
  return out;
}

// float32 values in logical NCHW order -> the bytes `t` holds on its device.
std::vector<uint8_t> fromNchwF32(const Tensor& t, const float* v) {
  std::vector<uint8_t> out(t.bytes());
  auto store = [&](int64_t j, float x) {
    if (t.dtype() == DType::BF16)
      reinterpret_cast<bf16_t*>(out.data())[j] = f32ToBf16(x);
    else
      reinterpret_cast<float*>(out.data())[j] = x;
  };
  if (t.nhwc())
    forEachNchw(t, [&](int64_t i, int64_t j) { store(j, v[i]); });
  else
    for (int64_t i = 0; i < t.numel(); i++) store(i, v[i]);
  return out;
}

}  // namespace

// read(): Promise<Float32Array | Uint8Array>; bfloat16 and NHWC tensors come back as float32 in
// logical NCHW order. The copy runs on the device queue after every op
// issued before it; a pending asynchronous error rejects the promise instead.
Napi::Value TensorHandle::Read(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (disposed_) {  // a Promise API rejects rather than throws
      auto d = Napi::Promise::Deferred::New(env);
      d.Reject(makeJsError(env, "ERR_PATHO_DISPOSED", "read: the tensor was disposed").Value());
      return d.Promise();
    }
    PATHO_CHECK(tensor_.dtype() == DType::F32 || tensor_.dtype() == DType::BF16 || tensor_.dtype() == DType::U8,
                "ERR_PATHO_DTYPE",
                "read: Expected a float32, bfloat16 or uint8 tensor but received " << tensor_.describe());
    auto deferred = Napi::Promise::Deferred::New(env);
    auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                              "patho.read", 0, 1);
    struct Result {
      std::vector<uint8_t> data;
      QueueError err;
    };
    auto res = std::make_shared<Result>();
    Tensor t = tensor_;
    DeviceContext& ctx = deviceContext(t.device());
    Backend* be = ctx.backend.get();
    ctx.queue->submitFence([res, t, be, tsfn, deferred](const QueueError& e) mutable {
      res->err = e;
      if (!e.set) {
        try {
          res->data.resize(t.bytes());
          if (t.bytes()) be->copyToHost(res->data.data(), t, t.bytes());
          if (t.dtype() == DType::BF16 || t.nhwc()) res->data = toNchwF32(t, res->data);
        } catch (const Error& ex) {
          res->err = QueueError{true, ex.code(), ex.what()};
        } catch (const std::bad_alloc&) {
          res->err = QueueError{true, "ERR_PATHO_OOM", "read: out of host memory for a copy of " + t.describe()};
        } catch (const std::exception& ex) {
          res->err = QueueError{true, "ERR_PATHO_INTERNAL", ex.what()};
        }
      }
      tsfn.BlockingCall([res, t, deferred](Napi::Env env, Napi::Function) {
        if (res->err.set) {
          deferred.Reject(makeJsError(env, res->err.code, res->err.message).Value());
          return;
        }
        // An exception must not leave this callback (it would end the process): V8 refuses
        // ArrayBuffers beyond its limit (4 GiB in Node 20) with a JS error, passed on here.
        try {
          auto buf = Napi::ArrayBuffer::New(env, res->data.size());
          if (!res->data.empty()) std::memcpy(buf.Data(), res->data.data(), res->data.size());
          if (t.dtype() != DType::U8)
            deferred.Resolve(Napi::Float32Array::New(env, size_t(t.numel()), buf, 0));
          else
            deferred.Resolve(Napi::Uint8Array::New(env, size_t(t.numel()), buf, 0));
        } catch (const Napi::Error& e) {
          deferred.Reject(makeJsError(env, "ERR_PATHO_OOM",
                                      "read: JavaScript cannot hold " + t.describe() + " in one array: " + e.Message())
                              .Value());
        }
      });
      tsfn.Release();
    });
    return deferred.Promise();
  });
}

// write(typedArray): copies host data now (the caller may reuse its buffer), uploads in queue order.
// A bfloat16 or NHWC tensor takes a Float32Array in logical NCHW order (rounded to nearest even).
Napi::Value TensorHandle::Write(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    PATHO_CHECK(!disposed_, "ERR_PATHO_DISPOSED", "write: the tensor was disposed");
    PATHO_CHECK(info.Length() >= 1 && info[0].IsTypedArray(), "ERR_PATHO_ARG",
                "write: Expected a Float32Array or Uint8Array for data");
    auto ta = info[0].As<Napi::TypedArray>();
    bool okType = (tensor_.dtype() != DType::U8 && ta.TypedArrayType() == napi_float32_array) ||
                  (tensor_.dtype() == DType::U8 &&
                   (ta.TypedArrayType() == napi_uint8_array || ta.TypedArrayType() == napi_uint8_clamped_array));
    PATHO_CHECK(okType, "ERR_PATHO_DTYPE",
                "write: Expected a " << (tensor_.dtype() != DType::U8 ? "Float32Array" : "Uint8Array") << " for a "
                                     << tensor_.describe());
    PATHO_CHECK(ta.ElementLength() == size_t(tensor_.numel()), "ERR_PATHO_SHAPE",
                "write: Expected " << tensor_.numel() << " elements for " << tensor_.describe() << " but received "
                                   << ta.ElementLength());
    const uint8_t* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    std::shared_ptr<std::vector<uint8_t>> data;
    if (tensor_.dtype() == DType::BF16 || tensor_.nhwc()) {
      data = std::make_shared<std::vector<uint8_t>>(fromNchwF32(tensor_, reinterpret_cast<const float*>(src)));
    } else {
      data = std::make_shared<std::vector<uint8_t>>(ta.ByteLength());
      std::memcpy(data->data(), src, ta.ByteLength());
    }
    Tensor t = tensor_;
    DeviceContext& ctx = deviceContext(t.device());
    Backend* be = ctx.backend.get();
    ctx.queue->submit([t, be, data] { be->copyFromHost(t, data->data(), data->size()); });
    return info.Env().Undefined();
  });
}

// view(offsetElements, shape): a tensor sharing this one's storage (arena slices).
Napi::Value TensorHandle::View(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    PATHO_CHECK(!disposed_, "ERR_PATHO_DISPOSED", "view: the tensor was disposed");
    PATHO_CHECK(!tensor_.nhwc(), "ERR_PATHO_ARG",
                "view: Expected an NCHW tensor (views are flat slices) but received " << tensor_.describe());
    PATHO_CHECK(info.Length() >= 2, "ERR_PATHO_ARG", "view: Expected (offsetElements: number, shape: number[])");
    const int64_t off = dimArg(info[0], "view", "offsetElements");
    patho::Shape shape = shapeArg(info[1], "view", "shape");
    checkedBytes(shape, dtypeSize(tensor_.dtype()), "view");
    const int64_t n = shapeNumel(shape);  // both below 2^63 and off <= 2^53: the sum cannot overflow
    PATHO_CHECK(off + n <= tensor_.numel(), "ERR_PATHO_SHAPE",
                "view: elements [" << off << ", " << off + n << ") are outside " << tensor_.describe());
    Tensor v(shape, tensor_.dtype(), tensor_.device(), tensor_.storage(),
             tensor_.offset() + size_t(off) * dtypeSize(tensor_.dtype()));
    return Wrap(info.Env(), v, false);
  });
}

}  // namespace patho
