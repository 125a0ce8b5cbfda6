// Module entry: tensor creation, device/memory queries, synchronize, and the op table (ops.cc).
#include <napi.h>

#include "cpu/bf16_support.h"
#include "core/cuda_plugin.h"
#include "cpu/cpu_backend.h"
#include "devices.h"
#include "errors.h"
#include "shape_args.h"
#include "tensor_wrap.h"

namespace patho {

void registerOps(Napi::Env env, Napi::Object exports);
void registerComm(Napi::Env env, Napi::Object exports);           // comm.cc
void registerMulticlassOps(Napi::Env env, Napi::Object exports);  // multiclass_ops.cc
void registerObjects(Napi::Env env, Napi::Object exports);        // objects.cc
Napi::Value InferenceRun(const Napi::CallbackInfo& info);         // inference.cc
void registerOpenSlide(Napi::Env env, Napi::Object exports);      // openslide.cc

namespace {

Device deviceArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  PATHO_CHECK(i < info.Length() && info[i].IsString(), "ERR_PATHO_ARG",
              fn << ": Expected a device string like 'cpu' or 'cuda:0'");
  return Device::parse(info[i].As<Napi::String>().Utf8Value());
}

// empty(shape: number[], dtype: string, device: string, layout = 'nchw'): NativeTensor (contents
// undefined; layout 'nhwc' only for 4-D shapes, which stay the logical [N,C,H,W])
Napi::Value Empty(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Shape shape = shapeArg(info.Length() >= 1 ? info[0] : info.Env().Undefined(), "empty", "shape");
    DType dt =
        info.Length() > 1 && info[1].IsString() ? parseDType(info[1].As<Napi::String>().Utf8Value()) : DType::F32;
    Device dev = info.Length() > 2 ? deviceArg(info, 2, "empty") : Device{};
    Layout layout = Layout::NCHW;
    if (info.Length() > 3 && !info[3].IsUndefined()) {
      PATHO_CHECK(info[3].IsString(), "ERR_PATHO_ARG", "empty: Expected 'nchw' or 'nhwc' for layout");
      layout = parseLayout(info[3].As<Napi::String>().Utf8Value());
    }
    return TensorHandle::Wrap(info.Env(), allocateTensor(shape, dt, dev, layout), true);
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto o = Napi::Object::New(info.Env());
    o.Set("napiVersion", Napi::Number::New(info.Env(), NAPI_VERSION));
    o.Set("oneDnn", Napi::String::New(info.Env(), oneDnnVersion()));
    o.Set("cpuIsa", Napi::String::New(info.Env(), oneDnnIsa()));
    o.Set("cpuBf16", Napi::Boolean::New(info.Env(), cpuBf16Native()));
    o.Set("cpuBf16Kernels", Napi::Boolean::New(info.Env(), cpuBf16Kernels()));
    o.Set("cudaPluginAbi", Napi::Number::New(info.Env(), PATHO_CUDA_ABI));
    return o;
  });
}

Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), cudaInfoJson()); });
}

Napi::Value CudaLoaderReport(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), cudaLoaderReport()); });
}

Napi::Value MemoryStatsFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto s = deviceContext(deviceArg(info, 0, "memoryStats")).backend->allocator().stats();
    auto o = Napi::Object::New(info.Env());
    o.Set("current", Napi::Number::New(info.Env(), double(s.current)));
    o.Set("peak", Napi::Number::New(info.Env(), double(s.peak)));
    o.Set("cached", Napi::Number::New(info.Env(), double(s.cached)));
    o.Set("reserved", Napi::Number::New(info.Env(), double(s.reserved)));
    o.Set("allocations", Napi::Number::New(info.Env(), double(s.allocations)));
    return o;
  });
}

Napi::Value ResetPeakMemory(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    deviceContext(deviceArg(info, 0, "resetPeakMemory")).backend->allocator().resetPeak();
    return info.Env().Undefined();
  });
}

Napi::Value ReleaseCachedMemory(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    deviceContext(deviceArg(info, 0, "releaseCachedMemory")).backend->allocator().releaseCached();
    return info.Env().Undefined();
  });
}

Napi::Value LiveTensors(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("count", Napi::Number::New(info.Env(), double(TensorHandle::liveCount.load())));
  o.Set("bytes", Napi::Number::New(info.Env(), double(TensorHandle::liveBytes.load())));
  return o;
}

Napi::Value BackendName(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), deviceContext(deviceArg(info, 0, "backendName")).backend->name());
  });
}

// synchronize(device): Promise<void>, resolved when every op queued so far has finished;
// rejected with the first asynchronous error since the last fence.
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    DeviceContext& ctx = deviceContext(deviceArg(info, 0, "synchronize"));
    auto deferred = Napi::Promise::Deferred::New(env);
    auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                              "patho.synchronize", 0, 1);
    Backend* be = ctx.backend.get();
    ctx.queue->submitFence([be, tsfn, deferred](const QueueError& e) mutable {
      QueueError err = e;
      if (!err.set) {
        try {
          be->synchronize();
        } catch (const Error& ex) {
          err = QueueError{true, ex.code(), ex.what()};
        }
      }
      tsfn.BlockingCall([err, deferred](Napi::Env env, Napi::Function) {
        if (err.set)
          deferred.Reject(makeJsError(env, err.code, err.message).Value());
        else
          deferred.Resolve(env.Undefined());
      });
      tsfn.Release();
    });
    return deferred.Promise();
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // The first environment to load the addon (the main thread) stops the device queues when it is
  // torn down, which Node does before exit() runs the libraries' static destructors.
  static bool cleanupHooked = false;
  if (!cleanupHooked) {
    cleanupHooked = true;
    napi_add_env_cleanup_hook(
        env, [](void*) { shutdownAllQueues(); }, nullptr);
  }
  TensorHandle::Init(env, exports);
  // The same table pattern as ops.cc and comm.cc: one row per export, its name once.
  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
  const Entry entries[] = {
      {"empty", Empty},
      {"info", Info},
      {"cudaInfo", CudaInfo},
      {"cudaLoaderReport", CudaLoaderReport},
      {"memoryStats", MemoryStatsFn},
      {"resetPeakMemory", ResetPeakMemory},
      {"releaseCachedMemory", ReleaseCachedMemory},
      {"liveTensors", LiveTensors},
      {"backendName", BackendName},
      {"synchronize", Synchronize},
      {"inferenceRun", InferenceRun},
  };
  for (auto& e : entries) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  registerOps(env, exports);
  registerComm(env, exports);
  registerMulticlassOps(env, exports);
  registerObjects(env, exports);
  registerOpenSlide(env, exports);
  return exports;
}

}  // namespace
}  // namespace patho

static Napi::Object InitPatho(Napi::Env env, Napi::Object exports) { return patho::Init(env, exports); }
NODE_API_MODULE(patho, InitPatho)
