// Turns native errors into JS Errors that carry a `code` (ERR_PATHO_*), per STYLE.md.
#pragma once
#include <napi.h>

#include <string>

#include "core/error.h"

namespace patho {

inline Napi::Error makeJsError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// Wraps an exported function body: patho::Error -> JS Error with code; std errors -> ERR_PATHO_INTERNAL.
template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const Error& e) {
    throw makeJsError(info.Env(), e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw makeJsError(info.Env(), "ERR_PATHO_OOM", "out of host memory");
  } catch (const std::exception& e) {
    throw makeJsError(info.Env(), "ERR_PATHO_INTERNAL", e.what());
  }
}

}  // namespace patho
