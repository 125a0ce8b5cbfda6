// NCCL, loaded on first use instead of linked (DESIGN.md decision 2): a single-GPU user without
// NCCL keeps a working CUDA backend, and `patho doctor` reports NCCL on its own line. nccl.h is
// included for its types only; every function is reached through the table below.
#pragma once
#include <nccl.h>

#include <string>

#include "core/error.h"

namespace patho {

// The NCCL functions the communicators use (all present since NCCL 2.4; ncclGetLastError since
// 2.13 is optional). Types come from nccl.h, so a mismatched signature fails to compile.
struct NcclApi {
  int version = 0;   // ncclGetVersion, e.g. 23007
  std::string path;  // the file the functions came from
  decltype(&::ncclGetVersion) getVersion = nullptr;
  decltype(&::ncclGetErrorString) getErrorString = nullptr;
  decltype(&::ncclGetLastError) getLastError = nullptr;  // may be null
  decltype(&::ncclGetUniqueId) getUniqueId = nullptr;
  decltype(&::ncclCommInitRank) commInitRank = nullptr;
  decltype(&::ncclCommInitAll) commInitAll = nullptr;
  decltype(&::ncclCommDestroy) commDestroy = nullptr;
  decltype(&::ncclCommAbort) commAbort = nullptr;
  decltype(&::ncclCommGetAsyncError) commGetAsyncError = nullptr;
  decltype(&::ncclAllReduce) allReduce = nullptr;
  decltype(&::ncclBroadcast) broadcast = nullptr;
};

// dlopens libnccl.so.2 (the addon's loader has already preloaded it from pip's nvidia/nccl/lib,
// $CONDA_PREFIX/lib, ... when it is anywhere it knows) and resolves the table. Success is kept;
// a failure is retried on the next call. Returns null with the reason in `why`.
const NcclApi* ncclApi(std::string* why);
// ncclApi() or throws ERR_PATHO_NCCL naming what is missing.
const NcclApi& requireNccl(const char* what);

[[noreturn]] void throwNccl(const NcclApi& api, ncclResult_t r, const char* expr, const char* file, int line);

}  // namespace patho

#define CHECK_NCCL(api, expr)                                                                    \
  do {                                                                                           \
    ncclResult_t patho_r_ = (expr);                                                              \
    if (patho_r_ != ncclSuccess) ::patho::throwNccl((api), patho_r_, #expr, __FILE__, __LINE__); \
  } while (0)
