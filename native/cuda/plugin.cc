// The plugin's C entry points (core/cuda_plugin.h): ABI version, a JSON description of what
// CUDA sees, and backend creation. They never throw across the C boundary and never crash
// without a driver: a missing driver or GPU is reported in "error".
#include <cuda_runtime.h>
#include <cudnn.h>
#include <nccl.h>

#include <cstdio>
#include <sstream>
#include <string>

#include "core/cuda_plugin.h"
#include "cuda_backend.h"
#include "cudnn_libraries.h"

#define PATHO_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

std::string jsonString(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += c; }
    else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
    else o += c;
  }
  return o + "\"";
}

std::string describe() {
  std::ostringstream os;
  int runtime = 0, driver = 0, count = 0;
  if (cudaRuntimeGetVersion(&runtime) != cudaSuccess) cudaGetLastError();
  if (cudaDriverGetVersion(&driver) != cudaSuccess) cudaGetLastError();
  int nccl = 0;
  if (ncclGetVersion(&nccl) != ncclSuccess) nccl = 0;
  os << "{\"runtime\":" << runtime << ",\"driver\":";
  if (driver > 0) os << driver; else os << "null";
  const std::string cudnnMissing = patho::missingCudnnLibraries(false);
  os << ",\"cudnn\":";
  if (cudnnMissing.empty()) os << cudnnGetVersion(); else os << "null";
  os << ",\"cudnnError\":" << (cudnnMissing.empty() ? "null" : jsonString(cudnnMissing)) << ",\"nccl\":" << nccl;
  std::string error;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    count = 0;
    error = std::string("no CUDA device (") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e) + ")";
  } else if (count == 0) {
    error = "no CUDA device (cudaGetDeviceCount found none)";
  }
  os << ",\"deviceCount\":" << count << ",\"devices\":[";
  for (int i = 0; i < count; i++) {
    cudaDeviceProp p;
    if (i) os << ",";
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
      cudaGetLastError();
      os << "{\"index\":" << i << ",\"name\":null,\"memory\":null,\"cc\":null}";
      continue;
    }
    os << "{\"index\":" << i << ",\"name\":" << jsonString(p.name) << ",\"memory\":" << p.totalGlobalMem
       << ",\"cc\":\"" << p.major << "." << p.minor << "\"}";
  }
  os << "],\"error\":" << (error.empty() ? "null" : jsonString(error)) << "}";
  return os.str();
}

void writeError(char* err, size_t errLen, const std::string& msg) {
  if (err && errLen) std::snprintf(err, errLen, "%s", msg.c_str());
}

}  // namespace

PATHO_EXPORT int patho_cuda_abi() { return PATHO_CUDA_ABI; }

PATHO_EXPORT const char* patho_cuda_info() {
  static std::string json;  // valid until the next call, as cuda_plugin.h says
  try {
    json = describe();
  } catch (const std::exception& e) {
    json = "{\"deviceCount\":0,\"devices\":[],\"error\":" + jsonString(e.what()) + "}";
  }
  return json.c_str();
}

PATHO_EXPORT patho::Backend* patho_cuda_create_backend(int index, char* err, size_t errLen) {
  try {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      cudaGetLastError();
      writeError(err, errLen, std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e));
      return nullptr;
    }
    if (index < 0 || index >= count) {
      writeError(err, errLen, "this machine has " + std::to_string(count) + " CUDA device(s)");
      return nullptr;
    }
    const std::string cudnnMissing = patho::missingCudnnLibraries(true);
    if (!cudnnMissing.empty()) {
      writeError(err, errLen, cudnnMissing);
      return nullptr;
    }
    return new patho::CudaBackend(index);
  } catch (const patho::Error& e) {
    writeError(err, errLen, e.code() + ": " + e.what());
  } catch (const std::exception& e) {
    writeError(err, errLen, e.what());
  } catch (...) {
    writeError(err, errLen, "unknown error creating the CUDA backend");
  }
  return nullptr;
}
