// TensorHandle: the JS object for a native tensor (one ObjectWrap per native object kind).
// dispose() is idempotent; the finalizer frees what user code forgot; V8 is told how many
// external bytes a host (CPU) handle holds. Views (arena slices) share storage and report no bytes.
#pragma once
#include <napi.h>

#include <atomic>

#include "core/tensor.h"

namespace patho {

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, Tensor t, bool ownsStorage);
  // The tensor behind a JS value; throws ERR_PATHO_ARG / ERR_PATHO_DISPOSED naming op and argument.
  static Tensor FromValue(const Napi::Value& v, const char* op, const char* arg);
  static bool IsHandle(const Napi::Value& v);

  explicit TensorHandle(const Napi::CallbackInfo& info);
  void Finalize(Napi::Env env) override;

  static std::atomic<int64_t> liveCount;
  static std::atomic<int64_t> liveBytes;

 private:
  static Napi::FunctionReference* ctor_;
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value DType(const Napi::CallbackInfo& info);
  Napi::Value Layout(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Numel(const Napi::CallbackInfo& info);
  Napi::Value Bytes(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value IsView(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);
  void release(Napi::Env env);

  Tensor tensor_;
  bool owns_ = false;
  bool disposed_ = true;
  int64_t bytes_ = 0;     // storage bytes this handle owns (0 for views)
  int64_t external_ = 0;  // of which reported to V8 as external memory (host tensors only)
};

}  // namespace patho
