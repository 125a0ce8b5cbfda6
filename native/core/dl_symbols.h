// Resolving a run-time loaded library's entry points (OpenSlide in the addon, NCCL in the CUDA
// plugin): one dlsym per function, the names that are missing collected for one clear message.
#pragma once

#include <dlfcn.h>

#include <string>

namespace patho {

// fn = the symbol `name` of lib (a function pointer type F); on failure appends name to missing.
template <typename F>
bool resolveSymbol(void* lib, const char* name, F& fn, std::string& missing) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn) missing += std::string(missing.empty() ? "" : ", ") + name;
  return fn != nullptr;
}

}  // namespace patho
