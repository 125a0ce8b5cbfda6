// Entry points of the instance-separation functions (native/objects): each checks its typed arrays, then
// runs on a libuv worker thread (Napi::AsyncWorker) and returns a Promise, so a large tile never blocks
// the event loop. The typed arrays are held by references until the work is done.
#include <napi.h>

#include <cmath>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "errors.h"
#include "objects/objects.h"

namespace patho {
namespace {

class ObjectsWorker : public Napi::AsyncWorker {
 public:
  ObjectsWorker(Napi::Env env, std::function<double()> work, const std::vector<Napi::Object>& keep)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)) {
    for (const auto& o : keep) refs_.push_back(Napi::Persistent(o));
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      result_ = work_();
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "ERR_PATHO_OOM";
      SetError("out of host memory");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), result_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(makeJsError(Env(), code_, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<double()> work_;
  std::vector<Napi::ObjectReference> refs_;
  double result_ = 0;
  std::string code_ = "ERR_PATHO_INTERNAL";
};

struct Image {
  int64_t w, h;
};

Image size(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  for (size_t k = i; k < i + 2; k++) {
    PATHO_CHECK(k < info.Length() && info[k].IsNumber(), "ERR_PATHO_ARG",
                fn << ": Expected numbers for width and height");
    const double v = info[k].As<Napi::Number>().DoubleValue();
    PATHO_CHECK(v >= 1 && std::floor(v) == v && v < 1e9, "ERR_PATHO_ARG",
                fn << ": Expected a positive integer for " << (k == i ? "width" : "height") << " but received " << v);
  }
  return {int64_t(info[i].As<Napi::Number>().DoubleValue()), int64_t(info[i + 1].As<Napi::Number>().DoubleValue())};
}

// The typed array argument i of the given type and w*h elements.
template <typename T>
T array(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, const char* typeName, const char* name,
        const Image& im, const char* fn) {
  PATHO_CHECK(i < info.Length() && info[i].IsTypedArray() && info[i].As<Napi::TypedArray>().TypedArrayType() == type,
              "ERR_PATHO_ARG", fn << ": Expected a " << typeName << " for " << name);
  T a = info[i].As<T>();
  PATHO_CHECK(int64_t(a.ElementLength()) == im.w * im.h, "ERR_PATHO_SHAPE",
              fn << ": Expected " << im.w * im.h << " values (" << im.w << "x" << im.h << ") for " << name
                 << " but received " << a.ElementLength());
  return a;
}

int connectivity(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  const double c = i < info.Length() && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
  PATHO_CHECK(c == 4 || c == 8, "ERR_PATHO_ARG", fn << ": Expected 4 or 8 for connectivity");
  return int(c);
}

Napi::Value queue(const Napi::CallbackInfo& info, std::function<double()> work, std::vector<Napi::Object> keep) {
  auto* w = new ObjectsWorker(info.Env(), std::move(work), keep);
  Napi::Promise p = w->promise();
  w->Queue();  // the worker deletes itself after OnOK/OnError
  return p;
}

// objectsDistanceTransform(mask: Uint8Array, w, h, out: Float32Array): Promise<0>
Napi::Value DistanceTransform(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* fn = "objectsDistanceTransform";
    const Image im = size(info, 1, fn);
    auto mask = array<Napi::Uint8Array>(info, 0, napi_uint8_array, "Uint8Array", "mask", im, fn);
    auto out = array<Napi::Float32Array>(info, 3, napi_float32_array, "Float32Array", "out", im, fn);
    const uint8_t* m = mask.Data();
    float* o = out.Data();
    return queue(info,
                 [=] {
                   objects::distanceTransform(m, im.w, im.h, o);
                   return 0.0;
                 },
                 {mask, out});
  });
}

// objectsLabelComponents(mask: Uint8Array, w, h, connectivity, out: Int32Array): Promise<count>
Napi::Value LabelComponents(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* fn = "objectsLabelComponents";
    const Image im = size(info, 1, fn);
    auto mask = array<Napi::Uint8Array>(info, 0, napi_uint8_array, "Uint8Array", "mask", im, fn);
    const int conn = connectivity(info, 3, fn);
    auto out = array<Napi::Int32Array>(info, 4, napi_int32_array, "Int32Array", "out", im, fn);
    const uint8_t* m = mask.Data();
    int32_t* o = out.Data();
    return queue(info, [=] { return double(objects::labelComponents(m, im.w, im.h, conn, o)); }, {mask, out});
  });
}

// objectsHMaxima(image: Float32Array, w, h, hh, out: Uint8Array): Promise<0>
Napi::Value HMaxima(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* fn = "objectsHMaxima";
    const Image im = size(info, 1, fn);
    auto image = array<Napi::Float32Array>(info, 0, napi_float32_array, "Float32Array", "image", im, fn);
    PATHO_CHECK(info.Length() > 3 && info[3].IsNumber(), "ERR_PATHO_ARG", fn << ": Expected a number for h");
    const float hh = info[3].As<Napi::Number>().FloatValue();
    PATHO_CHECK(hh > 0 && std::isfinite(hh), "ERR_PATHO_ARG", fn << ": Expected h > 0 but received " << hh);
    auto out = array<Napi::Uint8Array>(info, 4, napi_uint8_array, "Uint8Array", "out", im, fn);
    const float* f = image.Data();
    for (int64_t i = 0; i < im.w * im.h; i++)
      PATHO_CHECK(std::isfinite(f[i]), "ERR_PATHO_ARG",
                  fn << ": Expected finite values in image but found " << f[i] << " at pixel " << i);
    uint8_t* o = out.Data();
    return queue(info,
                 [=] {
                   objects::hMaxima(f, im.w, im.h, hh, o);
                   return 0.0;
                 },
                 {image, out});
  });
}

// objectsWatershed(elevation: Float32Array, mask: Uint8Array | null, w, h, connectivity, labels: Int32Array):
// Promise<0>
Napi::Value Watershed(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const char* fn = "objectsWatershed";
    const Image im = size(info, 2, fn);
    auto elev = array<Napi::Float32Array>(info, 0, napi_float32_array, "Float32Array", "elevation", im, fn);
    std::vector<Napi::Object> keep{elev};
    const uint8_t* m = nullptr;
    if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) {
      auto mask = array<Napi::Uint8Array>(info, 1, napi_uint8_array, "Uint8Array or null", "mask", im, fn);
      m = mask.Data();
      keep.push_back(mask);
    }
    const int conn = connectivity(info, 4, fn);
    auto labels = array<Napi::Int32Array>(info, 5, napi_int32_array, "Int32Array", "labels", im, fn);
    keep.push_back(labels);
    const float* e = elev.Data();
    int32_t* l = labels.Data();
    return queue(
        info,
        [=] {
          objects::watershed(e, m, im.w, im.h, conn, l);
          return 0.0;
        },
        keep);
  });
}

}  // namespace

void registerObjects(Napi::Env env, Napi::Object exports) {
  exports.Set("objectsDistanceTransform", Napi::Function::New(env, DistanceTransform, "objectsDistanceTransform"));
  exports.Set("objectsLabelComponents", Napi::Function::New(env, LabelComponents, "objectsLabelComponents"));
  exports.Set("objectsHMaxima", Napi::Function::New(env, HMaxima, "objectsHMaxima"));
  exports.Set("objectsWatershed", Napi::Function::New(env, Watershed, "objectsWatershed"));
}

}  // namespace patho
