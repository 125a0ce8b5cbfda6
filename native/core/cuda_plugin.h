// The C interface between patho.node and libpatho_cuda.so (DESIGN.md decision 2). The addon
// dlopens the plugin the first time a CUDA device is asked for (or `doctor` runs) and never links
// CUDA itself. Bump PATHO_CUDA_ABI whenever Backend, Tensor or this interface changes.
#pragma once
#include <cstddef>

#define PATHO_CUDA_ABI 1

namespace patho {
class Backend;
}

extern "C" {
// Returns PATHO_CUDA_ABI as compiled into the plugin.
typedef int (*patho_cuda_abi_fn)();
// JSON describing what exists: {"runtime":13000,"driver":13000|null,"cudnn":92400,"nccl":23007,
// "deviceCount":1,"devices":[{"index":0,"name":"...","memory":85899345920,"cc":"9.0"}],
// "error":null|"no CUDA device (cudaErrorInsufficientDriver: ...)"}. Valid until the next call.
typedef const char* (*patho_cuda_info_fn)();
// Creates the backend of device `index`; on failure returns null and writes a message to err.
typedef patho::Backend* (*patho_cuda_create_backend_fn)(int index, char* err, size_t errLen);
}
