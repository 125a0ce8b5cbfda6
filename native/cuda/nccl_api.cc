// Loads NCCL at run time (see nccl_api.h).
#include "nccl_api.h"

#include <dlfcn.h>

#include <mutex>

#include "check.h"
#include "core/dl_symbols.h"

namespace patho {
namespace {

std::mutex gMu;
NcclApi gApi;
bool gLoaded = false;

}  // namespace

const NcclApi* ncclApi(std::string* why) {
  std::lock_guard<std::mutex> lock(gMu);
  if (gLoaded) return &gApi;
  // RTLD_LOCAL: NCCL's symbols stay out of the global namespace; a copy the addon preloaded
  // globally is found by its soname and reused.
  void* h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    if (why) *why = std::string("NCCL 2 (libnccl.so.2) could not be loaded: ") + (e ? e : "not found");
    return nullptr;
  }
  NcclApi api;
  std::string missing;
  resolveSymbol(h, "ncclGetVersion", api.getVersion, missing);
  resolveSymbol(h, "ncclGetErrorString", api.getErrorString, missing);
  resolveSymbol(h, "ncclGetUniqueId", api.getUniqueId, missing);
  resolveSymbol(h, "ncclCommInitRank", api.commInitRank, missing);
  resolveSymbol(h, "ncclCommInitAll", api.commInitAll, missing);
  resolveSymbol(h, "ncclCommDestroy", api.commDestroy, missing);
  resolveSymbol(h, "ncclCommAbort", api.commAbort, missing);
  resolveSymbol(h, "ncclCommGetAsyncError", api.commGetAsyncError, missing);
  resolveSymbol(h, "ncclAllReduce", api.allReduce, missing);
  resolveSymbol(h, "ncclBroadcast", api.broadcast, missing);
  api.getLastError = reinterpret_cast<decltype(api.getLastError)>(dlsym(h, "ncclGetLastError"));
  Dl_info info;
  if (api.getVersion && dladdr(reinterpret_cast<void*>(api.getVersion), &info) && info.dli_fname)
    api.path = info.dli_fname;
  if (!missing.empty()) {
    if (why)
      *why = "NCCL at " + (api.path.empty() ? std::string("libnccl.so.2") : api.path) + " lacks " + missing +
             " (NCCL 2.4 or newer is needed)";
    dlclose(h);
    return nullptr;
  }
  if (api.getVersion(&api.version) != ncclSuccess) api.version = 0;
  gApi = api;
  gLoaded = true;  // the handle stays open for the life of the process
  return &gApi;
}

const NcclApi& requireNccl(const char* what) {
  std::string why;
  const NcclApi* api = ncclApi(&why);
  if (!api)
    PATHO_THROW("ERR_PATHO_NCCL", what << ": " << why << "; pip install nvidia-nccl-cu13 or set PATHO_NCCL_PATH");
  return *api;
}

void throwNccl(const NcclApi& api, ncclResult_t r, const char* expr, const char* file, int line) {
  const char* detail = api.getLastError ? api.getLastError(nullptr) : nullptr;
  PATHO_THROW("ERR_PATHO_NCCL", expr << " failed: " << api.getErrorString(r) << (detail && *detail ? " (" : "")
                                     << (detail && *detail ? detail : "") << (detail && *detail ? ")" : "") << " at "
                                     << cuda_check::baseName(file) << ":" << line);
}

}  // namespace patho
