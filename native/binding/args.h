// Argument reading and checking for op entry points. JS validates options (STYLE.md: sharp);
// here we check what only native code can: tensor shapes, dtypes, devices, disposal. Messages
// name the op, the argument, what was expected and what was received.
#pragma once
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "devices.h"
#include "tensor_wrap.h"

namespace patho {

// The parameter names of an op, in order: the binding's signature, the same as backend.h's
// (test/native/binding.test.ts compares the two).
using OpParams = std::vector<const char*>;

class Args {
 public:
  // Refuses more arguments than the op has (fewer: the missing ones are reported by name when read).
  Args(const Napi::CallbackInfo& info, const char* op, const OpParams& params) : info_(info), op_(op), params_(params) {
    PATHO_CHECK(
        info.Length() <= params.size(), "ERR_PATHO_ARG",
        op << ": Expected " << params.size() << " arguments (" << joined() << ") but received " << info.Length());
  }
  const char* op() const { return op_; }

  // A tensor of exactly this dtype in the default (NCHW) layout.
  Tensor tensor(size_t i, const char* name, DType dt = DType::F32) {
    declared(i, name);
    Tensor t = TensorHandle::FromValue(i < info_.Length() ? info_[i] : info_.Env().Undefined(), op_, name);
    PATHO_CHECK(t.dtype() == dt && !t.nhwc(), "ERR_PATHO_DTYPE",
                op_ << ": Expected " << name << " to be " << dtypeName(dt) << " but received " << t.describe());
    note(t, name);
    return t;
  }
  // An activation (ACT in backend.h): float32 or bfloat16, NCHW or NHWC, and like the first
  // activation argument of this call in both.
  Tensor act(size_t i, const char* name) {
    declared(i, name);
    Tensor t = TensorHandle::FromValue(i < info_.Length() ? info_[i] : info_.Env().Undefined(), op_, name);
    PATHO_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::BF16, "ERR_PATHO_DTYPE",
                op_ << ": Expected " << name << " to be float32 or bfloat16 but received " << t.describe());
    if (!firstAct_.empty()) {
      PATHO_CHECK(t.dtype() == actDType_ && t.layout() == actLayout_, "ERR_PATHO_DTYPE",
                  op_ << ": Expected " << name << " to be " << dtypeName(actDType_) << " " << layoutName(actLayout_)
                      << " like " << firstAct_ << " but received " << t.describe());
    } else {
      firstAct_ = name;
      actDType_ = t.dtype();
      actLayout_ = t.layout();
    }
    note(t, name);
    return t;
  }
  // Any dtype and layout (convert's arguments).
  Tensor any(size_t i, const char* name) {
    declared(i, name);
    Tensor t = TensorHandle::FromValue(i < info_.Length() ? info_[i] : info_.Env().Undefined(), op_, name);
    note(t, name);
    return t;
  }
  // null/undefined -> an undefined Tensor (optional bias, optional bias gradient)
  Tensor optional(size_t i, const char* name) {
    declared(i, name);
    if (i >= info_.Length() || info_[i].IsNull() || info_[i].IsUndefined()) return Tensor();
    return tensor(i, name);
  }
  double number(size_t i, const char* name) {
    declared(i, name);
    PATHO_CHECK(i < info_.Length() && info_[i].IsNumber(), "ERR_PATHO_ARG", op_ << ": Expected a number for " << name);
    return info_[i].As<Napi::Number>().DoubleValue();
  }
  bool boolean(size_t i, const char* name) {
    declared(i, name);
    PATHO_CHECK(i < info_.Length() && info_[i].IsBoolean(), "ERR_PATHO_ARG",
                op_ << ": Expected a boolean for " << name);
    return info_[i].As<Napi::Boolean>().Value();
  }
  std::vector<float> floats(size_t i, const char* name) {
    declared(i, name);
    PATHO_CHECK(i < info_.Length() && info_[i].IsArray(), "ERR_PATHO_ARG",
                op_ << ": Expected an array of numbers for " << name);
    auto a = info_[i].As<Napi::Array>();
    std::vector<float> v;
    for (uint32_t k = 0; k < a.Length(); k++) {
      auto e = a.Get(k);
      PATHO_CHECK(e.IsNumber(), "ERR_PATHO_ARG", op_ << ": Expected an array of numbers for " << name);
      v.push_back(e.As<Napi::Number>().FloatValue());
    }
    return v;
  }

  void shape(const Tensor& t, const char* name, const Shape& expected) {
    PATHO_CHECK(
        t.shape() == expected, "ERR_PATHO_SHAPE",
        op_ << ": Expected " << name << " to have shape " << shapeStr(expected) << " but received " << t.describe());
  }
  void rank(const Tensor& t, const char* name, int r) {
    PATHO_CHECK(t.ndim() == r, "ERR_PATHO_SHAPE",
                op_ << ": Expected " << name << " to have " << r << " dimensions but received " << t.describe());
  }
  void sameNumel(const Tensor& a, const char* an, const Tensor& b, const char* bn) {
    PATHO_CHECK(a.numel() == b.numel(), "ERR_PATHO_SHAPE",
                op_ << ": Expected " << an << " and " << bn << " to have the same number of elements but received "
                    << a.describe() << " and " << b.describe());
  }

  // Runs fn(backend) on the device queue of the tensors checked so far (all must share a device).
  void submit(std::function<void(Backend&)> fn) {
    PATHO_CHECK(haveDevice_, "ERR_PATHO_INTERNAL", op_ << ": no tensor argument");
    PATHO_CHECK(read_ == (uint64_t(1) << params_.size()) - 1, "ERR_PATHO_INTERNAL",
                op_ << ": the binding did not read every declared argument (" << joined() << ")");
    DeviceContext& ctx = deviceContext(device_);
    Backend* be = ctx.backend.get();
    ctx.queue->submit([be, fn = std::move(fn)] { fn(*be); });
  }

 private:
  // Argument i is the declared parameter `name`: the op bodies and the signature cannot drift.
  void declared(size_t i, const char* name) {
    PATHO_CHECK(i < params_.size() && std::strcmp(params_[i], name) == 0, "ERR_PATHO_INTERNAL",
                op_ << ": argument " << i << " read as " << name << " but declared as "
                    << (i < params_.size() ? params_[i] : "nothing"));
    read_ |= uint64_t(1) << i;
  }
  std::string joined() const {
    std::string s;
    for (size_t i = 0; i < params_.size(); i++) s += std::string(i ? ", " : "") + params_[i];
    return s;
  }
  void note(const Tensor& t, const char* name) {
    if (!haveDevice_) {
      device_ = t.device();
      first_ = name;
      haveDevice_ = true;
      return;
    }
    PATHO_CHECK(t.device() == device_, "ERR_PATHO_DEVICE",
                op_ << ": Expected " << name << " on " << device_.str() << " like " << first_ << " but received "
                    << t.describe());
  }

  const Napi::CallbackInfo& info_;
  const char* op_;
  const OpParams& params_;
  uint64_t read_ = 0;  // bit i: argument i was read
  bool haveDevice_ = false;
  Device device_;
  std::string first_;
  std::string firstAct_;
  DType actDType_ = DType::F32;
  Layout actLayout_ = Layout::NCHW;
};

// Declares an exported op and its parameter names (backend.h's, in order): the body gets `a`
// (Args, which reads argument i only under the i-th declared name) and must end with a.submit(...).
#define PATHO_OP(NAME, ...)                          \
  const OpParams NAME##Params{__VA_ARGS__};          \
  void NAME##Body(Args& a);                          \
  Napi::Value NAME(const Napi::CallbackInfo& info) { \
    return guarded(info, [&]() -> Napi::Value {      \
      Args a(info, #NAME, NAME##Params);             \
      NAME##Body(a);                                 \
      return info.Env().Undefined();                 \
    });                                              \
  }                                                  \
  void NAME##Body(Args& a)

// One row of an op table: the exported name, its entry point and its parameter names.
struct OpEntry {
  const char* name;
  Napi::Value (*fn)(const Napi::CallbackInfo&);
  const OpParams* params;
};
#define PATHO_ENTRY(NAME) \
  OpEntry { #NAME, NAME, &NAME##Params }

// Exports each op of the table and adds its parameter names to exports.opParams (created on first use).
inline void registerOpTable(Napi::Env env, Napi::Object exports, const OpEntry* entries, size_t count) {
  if (!exports.Has("opParams")) exports.Set("opParams", Napi::Object::New(env));
  auto params = exports.Get("opParams").As<Napi::Object>();
  for (size_t k = 0; k < count; k++) {
    const OpEntry& e = entries[k];
    exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
    auto names = Napi::Array::New(env, e.params->size());
    for (size_t i = 0; i < e.params->size(); i++) names.Set(uint32_t(i), Napi::String::New(env, (*e.params)[i]));
    params.Set(e.name, names);
  }
}

}  // namespace patho
