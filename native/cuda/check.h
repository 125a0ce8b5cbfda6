// Status checks for CUDA and cuDNN: each failure becomes a patho::Error carrying the library's own
// message (for cuDNN also cudnnGetLastErrorString's detail) and file:line. Nothing here aborts;
// callers on the queue thread throw. NCCL is loaded at run time: its check is in nccl_api.h.
#pragma once
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/error.h"

namespace patho {
namespace cuda_check {

// Keeps only the file name so messages stay short ("cudnn_conv.cc:42").
inline const char* baseName(const char* path) {
  const char* b = path;
  for (const char* p = path; *p; p++)
    if (*p == '/') b = p + 1;
  return b;
}

[[noreturn]] inline void throwCuda(cudaError_t e, const char* expr, const char* file, int line) {
  PATHO_THROW("ERR_PATHO_CUDA", expr << " failed: " << cudaGetErrorName(e) << " (" << cudaGetErrorString(e) << ") at "
                                     << baseName(file) << ":" << line);
}
// cudnnGetErrorString names only the status class (e.g. CUDNN_STATUS_BAD_PARAM); the last error
// string says which argument or limit it was. Only reached once cuDNN is complete (a backend
// exists), so calling into the dispatcher is safe here.
[[noreturn]] inline void throwCudnn(cudnnStatus_t s, const char* expr, const char* file, int line) {
  char detail[512] = {0};
  cudnnGetLastErrorString(detail, sizeof(detail));
  PATHO_THROW("ERR_PATHO_CUDNN", expr << " failed: " << cudnnGetErrorString(s) << (detail[0] ? " (" : "") << detail
                                      << (detail[0] ? ")" : "") << " at " << baseName(file) << ":" << line);
}

}  // namespace cuda_check
}  // namespace patho

#define CHECK_CUDA(expr)                                                                              \
  do {                                                                                                \
    cudaError_t patho_e_ = (expr);                                                                    \
    if (patho_e_ != cudaSuccess) ::patho::cuda_check::throwCuda(patho_e_, #expr, __FILE__, __LINE__); \
  } while (0)

#define CHECK_CUDNN(expr)                                                                                       \
  do {                                                                                                          \
    cudnnStatus_t patho_s_ = (expr);                                                                            \
    if (patho_s_ != CUDNN_STATUS_SUCCESS) ::patho::cuda_check::throwCudnn(patho_s_, #expr, __FILE__, __LINE__); \
  } while (0)

// After every kernel launch: catches bad launch configurations at once (asynchronous faults
// surface at the next synchronizing call, which is checked too).
#define CHECK_LAUNCH(kernelName)                                                             \
  do {                                                                                       \
    cudaError_t patho_e_ = cudaGetLastError();                                               \
    if (patho_e_ != cudaSuccess)                                                             \
      ::patho::cuda_check::throwCuda(patho_e_, "launch of " kernelName, __FILE__, __LINE__); \
  } while (0)
