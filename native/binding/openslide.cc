// OpenSlide, loaded at run time (DESIGN.md decision 2): patho.node never links it, so it loads on
// machines without it. The library comes from PATHO_OPENSLIDE_PATH (a file, or a folder holding
// libopenslide) when that is set, else from the system's library path; the handful of openslide_*
// entry points are resolved with dlsym. Regions are read off the JS thread (AsyncWorker); OpenSlide
// allows concurrent reads of one openslide_t, and a handle closed while reads are in flight is
// closed when the last of them finishes.
#include <dlfcn.h>
#include <napi.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "errors.h"
#include "core/dl_symbols.h"

namespace patho {
namespace {

struct osr_t;  // openslide_t, opaque

struct OpenSlideApi {
  bool tried = false;
  void* lib = nullptr;
  std::string path, error, version;
  std::vector<std::string> tried_paths;  // "path: result", for patho doctor
  osr_t* (*open)(const char*) = nullptr;
  void (*close)(osr_t*) = nullptr;
  const char* (*get_error)(osr_t*) = nullptr;
  int32_t (*get_level_count)(osr_t*) = nullptr;
  void (*get_level_dimensions)(osr_t*, int32_t, int64_t*, int64_t*) = nullptr;
  double (*get_level_downsample)(osr_t*, int32_t) = nullptr;
  const char* const* (*get_property_names)(osr_t*) = nullptr;
  const char* (*get_property_value)(osr_t*, const char*) = nullptr;
  void (*read_region)(osr_t*, uint32_t*, int64_t, int64_t, int32_t, int64_t, int64_t) = nullptr;
  const char* (*get_version)() = nullptr;
  const char* (*detect_vendor)(const char*) = nullptr;
};

std::mutex gMu;
OpenSlideApi gApi;

bool isDir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool tryLoad(OpenSlideApi& a, const std::string& candidate) {
  dlerror();
  void* lib = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    a.tried_paths.push_back(candidate + ": " + (e ? e : "not found"));
    return false;
  }
  std::string missing;
  resolveSymbol(lib, "openslide_open", a.open, missing);
  resolveSymbol(lib, "openslide_close", a.close, missing);
  resolveSymbol(lib, "openslide_get_error", a.get_error, missing);
  resolveSymbol(lib, "openslide_get_level_count", a.get_level_count, missing);
  resolveSymbol(lib, "openslide_get_level_dimensions", a.get_level_dimensions, missing);
  resolveSymbol(lib, "openslide_get_level_downsample", a.get_level_downsample, missing);
  resolveSymbol(lib, "openslide_get_property_names", a.get_property_names, missing);
  resolveSymbol(lib, "openslide_get_property_value", a.get_property_value, missing);
  resolveSymbol(lib, "openslide_read_region", a.read_region, missing);
  resolveSymbol(lib, "openslide_get_version", a.get_version, missing);
  a.detect_vendor = reinterpret_cast<const char* (*)(const char*)>(dlsym(lib, "openslide_detect_vendor"));  // optional
  if (!missing.empty()) {
    a.tried_paths.push_back(candidate + ": loaded but lacks " + missing + " (not OpenSlide 3.4 or later?)");
    dlclose(lib);
    return false;
  }
  a.lib = lib;
  Dl_info info;
  a.path = dladdr(reinterpret_cast<void*>(a.open), &info) && info.dli_fname ? info.dli_fname : candidate;
  const char* v = a.get_version();
  a.version = v ? v : "";
  a.tried_paths.push_back(candidate + ": ok");
  return true;
}

OpenSlideApi& api() {
  std::lock_guard<std::mutex> lock(gMu);
  if (gApi.tried) return gApi;
  gApi.tried = true;
  std::vector<std::string> candidates;
  const char* env = std::getenv("PATHO_OPENSLIDE_PATH");
  // An explicit path is the only place looked at: it lets users pick a build, and tests switch OpenSlide off.
  if (env && *env) {
    std::string p = env;
    if (isDir(p)) {
      for (const char* n : {"libopenslide.so.1", "libopenslide.so.0", "libopenslide.so", "libopenslide.1.dylib",
                            "libopenslide.0.dylib", "libopenslide.dylib"}) {
        candidates.push_back(p + "/" + n);
      }
    } else {
      candidates.push_back(p);
    }
  } else {
    // OpenSlide 4 is libopenslide.so.1, 3.4 (Debian 12, Ubuntu 24.04) libopenslide.so.0
    for (const char* n :
         {"libopenslide.so.1", "libopenslide.so.0", "libopenslide.so", "libopenslide.1.dylib", "libopenslide.0.dylib",
          "/opt/homebrew/lib/libopenslide.1.dylib", "/usr/local/lib/libopenslide.1.dylib"}) {
      candidates.push_back(n);
    }
  }
  for (const auto& c : candidates) {
    if (tryLoad(gApi, c)) return gApi;
  }
  gApi.error = env && *env ? std::string("PATHO_OPENSLIDE_PATH=") + env + " does not hold a loadable OpenSlide library"
                           : "libopenslide was not found on the library path";
  return gApi;
}

OpenSlideApi& loadedApi() {
  OpenSlideApi& a = api();
  PATHO_CHECK(a.lib != nullptr, "ERR_PATHO_LOAD",
              "OpenSlide is not available: " << a.error
                                             << ". Install it (Debian/Ubuntu: apt-get install libopenslide0; Fedora: "
                                                "dnf install openslide; macOS: brew install openslide)"
                                                " or set PATHO_OPENSLIDE_PATH to libopenslide.so");
  return a;
}

// One open slide; closed by the destructor, i.e. when the handle and every in-flight read let go.
struct Osr {
  OpenSlideApi* api;
  osr_t* osr;
  ~Osr() { api->close(osr); }
  std::string error() const {
    const char* e = api->get_error(osr);
    return e ? e : "";
  }
};

class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, std::shared_ptr<Osr> osr, int32_t level, int64_t x, int64_t y, int64_t w, int64_t h)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        osr_(std::move(osr)),
        level_(level),
        x_(x),
        y_(y),
        w_(w),
        h_(h) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      std::vector<uint32_t> argb(size_t(w_) * size_t(h_));
      osr_->api->read_region(osr_->osr, argb.data(), x_, y_, level_, w_, h_);
      std::string err = osr_->error();
      if (!err.empty()) {
        SetError(err);
        return;
      }
      // premultiplied ARGB over white: c + (255 - a) per channel (transparent, i.e. outside the slide, is white)
      rgb_.resize(argb.size() * 3);
      for (size_t i = 0; i < argb.size(); i++) {
        uint32_t p = argb[i];
        uint32_t back = 255 - (p >> 24);
        rgb_[3 * i] = uint8_t(((p >> 16) & 255) + back);
        rgb_[3 * i + 1] = uint8_t(((p >> 8) & 255) + back);
        rgb_[3 * i + 2] = uint8_t((p & 255) + back);
      }
    } catch (const std::bad_alloc&) {
      SetError("out of host memory for a " + std::to_string(w_) + "x" + std::to_string(h_) + " region");
    }
  }
  void OnOK() override {
    auto buf = Napi::Buffer<uint8_t>::Copy(Env(), rgb_.data(), rgb_.size());
    deferred_.Resolve(buf);
  }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(
        makeJsError(Env(), "ERR_PATHO_SLIDE", "OpenSlide failed to read a region: " + e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Osr> osr_;
  int32_t level_;
  int64_t x_, y_, w_, h_;
  std::vector<uint8_t> rgb_;
};

class OpenSlideHandle : public Napi::ObjectWrap<OpenSlideHandle> {
 public:
  static Napi::FunctionReference* ctor;
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(
        env, "OpenSlideHandle",
        {InstanceAccessor<&OpenSlideHandle::Closed>("closed"),
         InstanceMethod<&OpenSlideHandle::Properties>("properties"), InstanceMethod<&OpenSlideHandle::Levels>("levels"),
         InstanceMethod<&OpenSlideHandle::ReadRegion>("readRegion"), InstanceMethod<&OpenSlideHandle::Close>("close")});
    ctor = new Napi::FunctionReference(Napi::Persistent(f));
    exports.Set("OpenSlideHandle", f);
  }
  explicit OpenSlideHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OpenSlideHandle>(info) {}
  std::shared_ptr<Osr> osr;

 private:
  std::shared_ptr<Osr> live(const char* fn) {
    PATHO_CHECK(osr != nullptr, "ERR_PATHO_DISPOSED", "OpenSlideHandle." << fn << ": the slide was closed");
    return osr;
  }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), osr == nullptr); }
  Napi::Value Properties(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto o = live("properties");
      auto out = Napi::Object::New(info.Env());
      const char* const* names = o->api->get_property_names(o->osr);
      for (size_t i = 0; names && names[i]; i++) {
        const char* v = o->api->get_property_value(o->osr, names[i]);
        out.Set(names[i], Napi::String::New(info.Env(), v ? v : ""));
      }
      return out;
    });
  }
  Napi::Value Levels(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto o = live("levels");
      int32_t n = o->api->get_level_count(o->osr);
      PATHO_CHECK(n > 0, "ERR_PATHO_SLIDE", "OpenSlide reports no levels: " << o->error());
      auto arr = Napi::Array::New(info.Env(), n);
      for (int32_t i = 0; i < n; i++) {
        int64_t w = -1, h = -1;
        o->api->get_level_dimensions(o->osr, i, &w, &h);
        auto l = Napi::Object::New(info.Env());
        l.Set("width", Napi::Number::New(info.Env(), double(w)));
        l.Set("height", Napi::Number::New(info.Env(), double(h)));
        l.Set("downsample", Napi::Number::New(info.Env(), o->api->get_level_downsample(o->osr, i)));
        arr.Set(uint32_t(i), l);
      }
      return arr;
    });
  }
  // readRegion(level, x, y, width, height): Promise<Buffer> of RGB; x, y in level-0 pixels (checked in TS)
  Napi::Value ReadRegion(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto o = live("readRegion");
      PATHO_CHECK(info.Length() >= 5, "ERR_PATHO_ARG", "readRegion: Expected level, x, y, width, height");
      for (size_t i = 0; i < 5; i++)
        PATHO_CHECK(info[i].IsNumber(), "ERR_PATHO_ARG", "readRegion: Expected a number for argument " << i);
      auto num = [&](size_t i) { return int64_t(info[i].As<Napi::Number>().DoubleValue()); };
      int64_t w = num(3), h = num(4);
      PATHO_CHECK(w > 0 && h > 0 && w * h <= (int64_t(1) << 28), "ERR_PATHO_ARG",
                  "readRegion: Expected a region of 1 to 2^28 pixels but received " << w << "x" << h);
      auto* worker = new ReadWorker(info.Env(), o, int32_t(num(0)), num(1), num(2), w, h);
      auto p = worker->promise();
      worker->Queue();
      return p;
    });
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    osr.reset();  // in-flight reads hold their own reference
    return info.Env().Undefined();
  }
};
Napi::FunctionReference* OpenSlideHandle::ctor = nullptr;

Napi::Value OpenSlideInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    OpenSlideApi& a = api();
    Napi::Env env = info.Env();
    auto o = Napi::Object::New(env);
    o.Set("available", Napi::Boolean::New(env, a.lib != nullptr));
    o.Set("version", a.lib ? Napi::Value(Napi::String::New(env, a.version)) : env.Null());
    o.Set("path", a.lib ? Napi::Value(Napi::String::New(env, a.path)) : env.Null());
    o.Set("error", a.lib ? env.Null() : Napi::Value(Napi::String::New(env, a.error)));
    auto tried = Napi::Array::New(env, a.tried_paths.size());
    for (size_t i = 0; i < a.tried_paths.size(); i++) tried.Set(uint32_t(i), Napi::String::New(env, a.tried_paths[i]));
    o.Set("tried", tried);
    return o;
  });
}

// openslideOpen(path): OpenSlideHandle; ERR_PATHO_LOAD without OpenSlide, ERR_PATHO_SLIDE when it cannot open the file
Napi::Value OpenSlideOpen(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    PATHO_CHECK(info.Length() >= 1 && info[0].IsString(), "ERR_PATHO_ARG", "openslideOpen: Expected a file path");
    std::string file = info[0].As<Napi::String>().Utf8Value();
    OpenSlideApi& a = loadedApi();
    osr_t* osr = a.open(file.c_str());
    PATHO_CHECK(osr != nullptr, "ERR_PATHO_SLIDE",
                file << ": Expected a slide format OpenSlide " << a.version
                     << " recognises but it does not recognise this file");
    auto holder = std::shared_ptr<Osr>(new Osr{&a, osr});
    std::string err = holder->error();
    PATHO_CHECK(err.empty(), "ERR_PATHO_SLIDE", file << ": OpenSlide could not open it: " << err);
    Napi::Object obj = OpenSlideHandle::ctor->New({});
    OpenSlideHandle::Unwrap(obj)->osr = holder;
    return obj;
  });
}

}  // namespace

void registerOpenSlide(Napi::Env env, Napi::Object exports) {
  OpenSlideHandle::Init(env, exports);
  exports.Set("openslideInfo", Napi::Function::New(env, OpenSlideInfo, "openslideInfo"));
  exports.Set("openslideOpen", Napi::Function::New(env, OpenSlideOpen, "openslideOpen"));
}

}  // namespace patho
