// The C interface between patho.node and libpatho_cuda.so (DESIGN.md decision 2). The addon
// dlopens the plugin the first time a CUDA device is asked for (or `doctor` runs) and never links
// CUDA itself. Bump PATHO_CUDA_ABI whenever Backend, Tensor or this interface changes.
#pragma once
#include <cstddef>

#define PATHO_CUDA_ABI 2  // 2: Backend::conv2dInference

namespace patho {
class Backend;
}

extern "C" {
// Returns PATHO_CUDA_ABI as compiled into the plugin.
typedef int (*patho_cuda_abi_fn)();
// JSON describing what exists: {"runtime":13000,"driver":13000|null (CUDA version the driver
// supports),"driverVersion":"580.82.07"|null,"minDriver":580,"driverProblem":"none"|"missing"|
// "too-old"|"no-device"|"error","cudnn":92400|null,"cudnnPath","cudnnError","cudnnWarning",
// "nccl":23007|null,"ncclPath","ncclError","deviceCount":1,"devices":[{"index":0,"name":"...",
// "memory":85899345920,"cc":"9.0"}],"error":null|"no CUDA device (<why, in words>)"} (strings or
// null). NCCL is dlopen'ed here, not linked. Valid until the next call.
typedef const char* (*patho_cuda_info_fn)();
// Creates the backend of device `index`; on failure returns null and writes a message to err.
typedef patho::Backend* (*patho_cuda_create_backend_fn)(int index, char* err, size_t errLen);

// Optional: CUDART_VERSION the plugin is built with (the loader preloads libnvrtc.so.<major>).
typedef int (*patho_cuda_runtime_version_fn)();
}

// ---- Optional NCCL communicators (looked up with dlsym by native/binding/comm.cc; a plugin
// without them simply has no NCCL). Not part of PATHO_CUDA_ABI's required set. They load NCCL
// (libnccl.so.2) on first use and fail with a message when it cannot be loaded. ----
namespace patho {
class Communicator;
}
#define PATHO_NCCL_ID_BYTES 128  // sizeof(ncclUniqueId)
extern "C" {
// Writes a fresh ncclUniqueId (rank 0 makes it; the rendezvous store carries it) into id[idLen].
// Returns 0, or -1 with a message in err.
typedef int (*patho_nccl_unique_id_fn)(char* id, size_t idLen, char* err, size_t errLen);
// ncclCommInitRank for rank `rank` of `size` on the device of `backend` (a CUDA backend of this
// plugin); blocks until every rank has joined. Returns null with a message in err on failure.
typedef patho::Communicator* (*patho_nccl_create_comm_fn)(const char* id, size_t idLen, int rank, int size,
                                                          patho::Backend* backend, char* err, size_t errLen);
// ncclCommInitAll: one communicator per backend (all GPUs of this process), rank i = backends[i].
// Fills out[n]; returns 0, or -1 with a message in err.
typedef int (*patho_nccl_create_comms_fn)(int n, patho::Backend* const* backends, patho::Communicator** out, char* err,
                                          size_t errLen);
}
