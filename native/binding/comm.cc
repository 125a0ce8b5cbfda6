// Communicators from JS (DESIGN.md decision 6): a NativeComm handle per rank whose methods are the
// collectives of communicator.h under the same names (allReduce, allReduceStart, wait, broadcast,
// barrier, abort); they are queued on the device queue of the tensor (ordered with compute) and
// return at once, and their failures (ERR_PATHO_COMM, with rank and cause) surface at the next
// read/synchronize of that device.
// Creating Gloo/NCCL communicators blocks until every rank joins, so it runs off the JS thread.
#include <dlfcn.h>
#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/gloo_comm.h"
#include "comm/in_process_comm.h"
#include "core/cuda_plugin.h"
#include "devices.h"
#include "errors.h"
#include "tensor_wrap.h"

namespace patho {
namespace {

using CommPtr = std::shared_ptr<Communicator>;

class CommHandle : public Napi::ObjectWrap<CommHandle> {
 public:
  static Napi::FunctionReference* ctor;
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(
        env, "NativeComm",
        {InstanceAccessor<&CommHandle::Rank>("rank"), InstanceAccessor<&CommHandle::Size>("size"),
         InstanceAccessor<&CommHandle::DeviceName>("device"), InstanceAccessor<&CommHandle::Kind>("kind"),
         InstanceAccessor<&CommHandle::Destroyed>("destroyed"), InstanceMethod<&CommHandle::AllReduce>("allReduce"),
         InstanceMethod<&CommHandle::AllReduceStart>("allReduceStart"), InstanceMethod<&CommHandle::Wait>("wait"),
         InstanceMethod<&CommHandle::Broadcast>("broadcast"), InstanceMethod<&CommHandle::Barrier>("barrier"),
         InstanceMethod<&CommHandle::Abort>("abort"), InstanceMethod<&CommHandle::Destroy>("destroy")});
    ctor = new Napi::FunctionReference(Napi::Persistent(f));
    exports.Set("NativeComm", f);
  }
  static Napi::Object Wrap(Napi::Env env, CommPtr c) {
    Napi::Object obj = ctor->New({});
    CommHandle* h = Napi::ObjectWrap<CommHandle>::Unwrap(obj);
    h->rank_ = c->rank();
    h->size_ = c->size();
    h->device_ = c->device().str();
    h->kind_ = c->kind();
    h->comm_ = std::move(c);
    return obj;
  }
  explicit CommHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CommHandle>(info) {}

 private:
  CommPtr live(const char* op) const {
    PATHO_CHECK(comm_ != nullptr, "ERR_PATHO_DISPOSED", op << ": comm was destroyed");
    return comm_;
  }
  // allReduce(tensor, op: 'sum' | 'avg'): void (queued)
  Napi::Value AllReduce(const Napi::CallbackInfo& info) { return reduce(info, "allReduce", false); }
  // allReduceStart(tensor, op): void (queued). The device queue goes on at once; later work must
  // leave tensor alone until wait().
  Napi::Value AllReduceStart(const Napi::CallbackInfo& info) { return reduce(info, "allReduceStart", true); }
  Napi::Value reduce(const Napi::CallbackInfo& info, const char* fn, bool start);
  // wait(): void (queued): later work on the device runs after every started collective.
  Napi::Value Wait(const Napi::CallbackInfo& info);
  // broadcast(tensor, root): void (queued)
  Napi::Value Broadcast(const Napi::CallbackInfo& info);
  // barrier(): void (queued; synchronize(comm.device) to wait for it)
  Napi::Value Barrier(const Napi::CallbackInfo& info);
  // abort(reason): void, at once (not queued): collectives of this communicator's group that wait,
  // or come later, fail with reason (in-process groups; a no-op for Gloo).
  Napi::Value Abort(const Napi::CallbackInfo& info);

  // Accessors keep answering after destroy() with what the communicator was.
  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), rank_); }
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), size_); }
  Napi::Value DeviceName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), device_); }
  Napi::Value Kind(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kind_); }
  Napi::Value Destroyed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), comm_ == nullptr); }
  // Idempotent. Collectives already queued keep the communicator alive until they have run.
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    comm_.reset();
    return info.Env().Undefined();
  }

  CommPtr comm_;
  int rank_ = -1, size_ = 0;
  std::string device_, kind_;
};
Napi::FunctionReference* CommHandle::ctor = nullptr;

// Resolves a Promise with NativeComm handles made off the JS thread by `make`.
class CreateWorker : public Napi::AsyncWorker {
 public:
  CreateWorker(Napi::Env env, std::function<std::vector<CommPtr>()> make, bool array)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), make_(std::move(make)), array_(array) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      comms_ = make_();
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = "ERR_PATHO_INTERNAL";
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!array_) return deferred_.Resolve(CommHandle::Wrap(env, comms_.at(0)));
    auto arr = Napi::Array::New(env, comms_.size());
    for (size_t i = 0; i < comms_.size(); i++) arr.Set(uint32_t(i), CommHandle::Wrap(env, comms_[i]));
    deferred_.Resolve(arr);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(makeJsError(Env(), code_, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<std::vector<CommPtr>()> make_;
  bool array_;
  std::vector<CommPtr> comms_;
  std::string code_ = "ERR_PATHO_COMM";
};

std::string stringArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  PATHO_CHECK(i < info.Length() && info[i].IsString(), "ERR_PATHO_ARG", fn << ": Expected a string for " << name);
  return info[i].As<Napi::String>().Utf8Value();
}
int intArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, int lo) {
  PATHO_CHECK(i < info.Length() && info[i].IsNumber(), "ERR_PATHO_ARG", fn << ": Expected an integer for " << name);
  double d = info[i].As<Napi::Number>().DoubleValue();
  PATHO_CHECK(d == double(int64_t(d)) && d >= lo && d <= 2147483647.0, "ERR_PATHO_ARG",
              fn << ": Expected an integer >= " << lo << " for " << name << " but received " << d);
  return int(d);
}
std::vector<Device> deviceList(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  PATHO_CHECK(i < info.Length() && info[i].IsArray(), "ERR_PATHO_ARG",
              fn << ": Expected an array of device strings for devices");
  auto arr = info[i].As<Napi::Array>();
  std::vector<Device> out;
  for (uint32_t k = 0; k < arr.Length(); k++) {
    auto v = arr.Get(k);
    PATHO_CHECK(v.IsString(), "ERR_PATHO_ARG", fn << ": Expected device strings in devices");
    out.push_back(Device::parse(v.As<Napi::String>().Utf8Value()));
  }
  return out;
}

// The tensor of a collective: float32, on the communicator's device (whose queue runs it).
Tensor commTensor(const Napi::CallbackInfo& info, size_t i, const CommPtr& c, const char* fn) {
  Tensor t = TensorHandle::FromValue(info.Length() > i ? info[i] : info.Env().Undefined(), fn, "tensor");
  PATHO_CHECK(t.dtype() == DType::F32, "ERR_PATHO_DTYPE",
              fn << ": Expected tensor to be float32 but received " << t.describe());
  PATHO_CHECK(t.device() == c->device(), "ERR_PATHO_DEVICE",
              fn << ": Expected tensor on " << c->device().str() << " (rank " << c->rank() << "'s device) but received "
                 << t.describe());
  return t;
}
void submitTo(const CommPtr& c, std::function<void(Communicator&)> fn) {
  DeviceContext& ctx = deviceContext(c->device());
  ctx.queue->submit([c, fn = std::move(fn)] { fn(*c); });
}

// commCreateInProcess(devices: string[], timeoutMs = 300000): NativeComm[]
Napi::Value CommCreateInProcess(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* fn = "commCreateInProcess";
    auto devices = deviceList(info, 0, fn);
    int timeoutMs = info.Length() > 1 && !info[1].IsUndefined() ? intArg(info, 1, fn, "timeoutMs", 1) : 300000;
    for (auto& d : devices) deviceContext(d);  // create the replicas' queues now, on the JS thread
    auto comms = createInProcessComms(devices, std::chrono::milliseconds(timeoutMs));
    auto arr = Napi::Array::New(info.Env(), comms.size());
    for (size_t i = 0; i < comms.size(); i++)
      arr.Set(uint32_t(i), CommHandle::Wrap(info.Env(), CommPtr(std::move(comms[i]))));
    return arr;
  });
}

// commCreateGloo(rank, size, storeAddr, storePort, prefix, timeoutMs, bindHost = '', device = 'cpu'):
// Promise<NativeComm>
Napi::Value CommCreateGloo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* fn = "commCreateGloo";
    GlooOptions o;
    o.rank = intArg(info, 0, fn, "rank", 0);
    o.size = intArg(info, 1, fn, "size", 1);
    o.storeHost = stringArg(info, 2, fn, "storeAddr");
    o.storePort = intArg(info, 3, fn, "storePort", 1);
    o.prefix = stringArg(info, 4, fn, "prefix");
    o.timeout = std::chrono::milliseconds(intArg(info, 5, fn, "timeoutMs", 1));
    if (info.Length() > 6 && !info[6].IsUndefined()) o.bindHost = stringArg(info, 6, fn, "bindHost");
    o.device = info.Length() > 7 && !info[7].IsUndefined() ? Device::parse(stringArg(info, 7, fn, "device")) : Device{};
    PATHO_CHECK(o.device.kind == Device::Kind::CPU, "ERR_PATHO_DEVICE",
                fn << ": Expected a CPU device for Gloo but received " << o.device.str());
    PATHO_CHECK(o.rank < o.size, "ERR_PATHO_ARG",
                fn << ": Expected rank below size " << o.size << " but received " << o.rank);
    deviceContext(o.device);
    auto* w = new CreateWorker(
        info.Env(), [o] { return std::vector<CommPtr>{std::make_shared<GlooComm>(o)}; }, false);
    auto p = w->promise();
    w->Queue();
    return p;
  });
}

// ---- NCCL, from the CUDA plugin (optional symbols; a plugin without them has no NCCL) ----
void* ncclSymbol(const char* name, const char* fn) {
  cudaInfoJson();  // loads the plugin if it can be loaded
  void* h = dlopen("libpatho_cuda.so", RTLD_NOW | RTLD_NOLOAD);
  PATHO_CHECK(h, "ERR_PATHO_CUDA", fn << ": the CUDA plugin is not loaded (" << cudaInfoJson() << ")");
  void* s = dlsym(h, name);
  dlclose(h);  // NOLOAD took a reference; the loader's own keeps the plugin loaded
  PATHO_CHECK(s, "ERR_PATHO_NCCL", fn << ": this CUDA plugin was built without NCCL communicators (no " << name << ")");
  return s;
}

// commNcclUniqueId(): string (base64 of ncclUniqueId; rank 0 makes it, the store carries it)
Napi::Value CommNcclUniqueId(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto get = reinterpret_cast<patho_nccl_unique_id_fn>(ncclSymbol("patho_nccl_unique_id", "commNcclUniqueId"));
    char id[PATHO_NCCL_ID_BYTES], err[1024] = {0};
    PATHO_CHECK(get(id, sizeof(id), err, sizeof(err)) == 0, "ERR_PATHO_NCCL", "commNcclUniqueId: " << err);
    auto buf = Napi::Buffer<char>::Copy(info.Env(), id, sizeof(id));
    return buf.Get("toString").As<Napi::Function>().Call(buf, {Napi::String::New(info.Env(), "base64")});
  });
}

std::string fromBase64(Napi::Env env, const std::string& b64) {
  auto from = env.Global().Get("Buffer").As<Napi::Object>().Get("from").As<Napi::Function>();
  auto buf = from.Call({Napi::String::New(env, b64), Napi::String::New(env, "base64")}).As<Napi::Buffer<char>>();
  return std::string(buf.Data(), buf.Length());
}

// commCreateNccl(rank, size, uniqueIdBase64, device: 'cuda:N'): Promise<NativeComm>
Napi::Value CommCreateNccl(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* fn = "commCreateNccl";
    int rank = intArg(info, 0, fn, "rank", 0), size = intArg(info, 1, fn, "size", 1);
    PATHO_CHECK(rank < size, "ERR_PATHO_ARG", fn << ": Expected rank below size " << size << " but received " << rank);
    std::string id = fromBase64(info.Env(), stringArg(info, 2, fn, "uniqueId"));
    PATHO_CHECK(
        id.size() == PATHO_NCCL_ID_BYTES, "ERR_PATHO_ARG",
        fn << ": Expected a base64 NCCL unique id of " << PATHO_NCCL_ID_BYTES << " bytes but received " << id.size());
    Device d = Device::parse(stringArg(info, 3, fn, "device"));
    PATHO_CHECK(d.kind == Device::Kind::CUDA, "ERR_PATHO_DEVICE",
                fn << ": Expected a CUDA device but received " << d.str());
    Backend* be = deviceContext(d).backend.get();
    auto make = reinterpret_cast<patho_nccl_create_comm_fn>(ncclSymbol("patho_nccl_create_comm", fn));
    auto* w = new CreateWorker(
        info.Env(),
        [=] {
          char err[1024] = {0};
          Communicator* c = make(id.data(), id.size(), rank, size, be, err, sizeof(err));
          PATHO_CHECK(c, "ERR_PATHO_NCCL", "rank " << rank << " of " << size << " (nccl): init: " << err);
          return std::vector<CommPtr>{CommPtr(c)};
        },
        false);
    auto p = w->promise();
    w->Queue();
    return p;
  });
}

// commCreateNcclAll(devices: string[]): Promise<NativeComm[]> (ncclCommInitAll: all GPUs of one process)
Napi::Value CommCreateNcclAll(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* fn = "commCreateNcclAll";
    std::vector<Backend*> backends;
    for (auto& d : deviceList(info, 0, fn)) {
      PATHO_CHECK(d.kind == Device::Kind::CUDA, "ERR_PATHO_DEVICE",
                  fn << ": Expected CUDA devices but received " << d.str());
      backends.push_back(deviceContext(d).backend.get());
    }
    PATHO_CHECK(!backends.empty(), "ERR_PATHO_ARG", fn << ": Expected at least one device");
    auto make = reinterpret_cast<patho_nccl_create_comms_fn>(ncclSymbol("patho_nccl_create_comms", fn));
    auto* w = new CreateWorker(
        info.Env(),
        [=] {
          std::vector<Communicator*> raw(backends.size(), nullptr);
          char err[1024] = {0};
          PATHO_CHECK(make(int(backends.size()), backends.data(), raw.data(), err, sizeof(err)) == 0, "ERR_PATHO_NCCL",
                      fn << ": " << err);
          std::vector<CommPtr> out;
          for (auto* c : raw) out.emplace_back(c);
          return out;
        },
        true);
    auto p = w->promise();
    w->Queue();
    return p;
  });
}

Napi::Value CommHandle::reduce(const Napi::CallbackInfo& info, const char* fn, bool start) {
  return guarded(info, [&]() -> Napi::Value {
    CommPtr c = live(fn);
    Tensor t = commTensor(info, 0, c, fn);
    std::string op = stringArg(info, 1, fn, "op");
    PATHO_CHECK(op == "sum" || op == "avg", "ERR_PATHO_ARG",
                fn << ": Expected 'sum' or 'avg' for op but received '" << op << "'");
    ReduceOp rop = op == "sum" ? ReduceOp::Sum : ReduceOp::Avg;
    if (start)
      submitTo(c, [t, rop](Communicator& comm) { comm.allReduceStart(t, rop); });
    else
      submitTo(c, [t, rop](Communicator& comm) { comm.allReduce(t, rop); });
    return info.Env().Undefined();
  });
}

Napi::Value CommHandle::Wait(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    submitTo(live("wait"), [](Communicator& comm) { comm.wait(); });
    return info.Env().Undefined();
  });
}

Napi::Value CommHandle::Broadcast(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* fn = "broadcast";
    CommPtr c = live(fn);
    Tensor t = commTensor(info, 0, c, fn);
    int root = intArg(info, 1, fn, "root", 0);
    PATHO_CHECK(root < c->size(), "ERR_PATHO_ARG",
                fn << ": Expected a root rank below " << c->size() << " but received " << root);
    submitTo(c, [t, root](Communicator& comm) { comm.broadcast(t, root); });
    return info.Env().Undefined();
  });
}

Napi::Value CommHandle::Barrier(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    submitTo(live("barrier"), [](Communicator& comm) { comm.barrier(); });
    return info.Env().Undefined();
  });
}

Napi::Value CommHandle::Abort(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    live("abort")->abort(stringArg(info, 0, "abort", "reason"));
    return info.Env().Undefined();
  });
}

}  // namespace

void registerComm(Napi::Env env, Napi::Object exports) {
  CommHandle::Init(env, exports);
  // The same table pattern as ops.cc: the factories; the collectives are NativeComm's methods.
  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
  const Entry entries[] = {
      {"commCreateInProcess", CommCreateInProcess}, {"commCreateGloo", CommCreateGloo},
      {"commNcclUniqueId", CommNcclUniqueId},       {"commCreateNccl", CommCreateNccl},
      {"commCreateNcclAll", CommCreateNcclAll},
  };
  for (auto& e : entries) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
}

}  // namespace patho
