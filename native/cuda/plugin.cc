// The plugin's C entry points (core/cuda_plugin.h): ABI version, a JSON description of what
// CUDA sees, and backend creation. They never throw across the C boundary and never crash
// without a driver: a missing or too old driver, a missing GPU, an incomplete cuDNN or a missing
// NCCL is reported in words (driver_check.h, cudnn_libraries.h, nccl_api.h).
#include <cuda_runtime.h>
#include <cudnn.h>
#include <dlfcn.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "core/cuda_plugin.h"
#include "cuda_backend.h"
#include "cudnn_libraries.h"
#include "driver_check.h"
#include "nccl_api.h"

#define PATHO_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

std::string jsonString(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20)
      o += ' ';
    else
      o += c;
  }
  return o + "\"";
}
std::string jsonOrNull(const std::string& s) { return s.empty() ? "null" : jsonString(s); }

// The driver's own version ("580.82.07"): from NVML when libnvidia-ml.so.1 is there (it ships with
// the driver), else from the kernel module's /proc file; "" without a driver.
std::string nvidiaDriverVersion() {
  if (void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL)) {
    using Init = int (*)();
    using Version = int (*)(char*, unsigned);
    auto init = reinterpret_cast<Init>(dlsym(h, "nvmlInit_v2"));
    auto version = reinterpret_cast<Version>(dlsym(h, "nvmlSystemGetDriverVersion"));
    auto shutdown = reinterpret_cast<Init>(dlsym(h, "nvmlShutdown"));
    char buf[96] = {0};
    if (init && version && shutdown && init() == 0) {  // NVML_SUCCESS
      const bool ok = version(buf, sizeof(buf)) == 0;
      shutdown();
      if (ok && buf[0]) return buf;
    }
  }
  std::ifstream proc("/proc/driver/nvidia/version");
  std::stringstream text;
  text << proc.rdbuf();
  return patho::parseProcDriverVersion(text.str());
}

struct DriverState {
  int runtime = 0, driverCuda = 0, count = 0;
  std::string driverVersion;
  patho::DriverVerdict verdict;
};

DriverState driverState() {
  DriverState d;
  if (cudaRuntimeGetVersion(&d.runtime) != cudaSuccess) cudaGetLastError();
  if (cudaDriverGetVersion(&d.driverCuda) != cudaSuccess) {
    cudaGetLastError();
    d.driverCuda = 0;
  }
  d.driverVersion = nvidiaDriverVersion();
  const cudaError_t e = cudaGetDeviceCount(&d.count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    d.count = 0;
  }
  d.verdict = patho::classifyDriver(d.runtime, d.driverCuda, d.driverVersion, int(e),
                                    e == cudaSuccess ? "" : cudaGetErrorName(e),
                                    e == cudaSuccess ? "" : cudaGetErrorString(e), d.count);
  return d;
}

std::string describe() {
  std::ostringstream os;
  const DriverState d = driverState();
  os << "{\"runtime\":" << d.runtime << ",\"driver\":";
  if (d.driverCuda > 0)
    os << d.driverCuda;
  else
    os << "null";
  os << ",\"driverVersion\":" << jsonOrNull(d.driverVersion) << ",\"minDriver\":" << patho::minDriverBranch(d.runtime)
     << ",\"driverProblem\":" << jsonString(patho::driverProblemName(d.verdict.problem));

  const patho::CudnnCheck& cudnn = patho::checkCudnnLibraries();
  os << ",\"cudnn\":";
  if (cudnn.graphLoads)
    os << cudnnGetVersion();
  else
    os << "null";
  os << ",\"cudnnPath\":" << jsonOrNull(cudnn.dir) << ",\"cudnnError\":" << jsonOrNull(cudnn.error)
     << ",\"cudnnWarning\":" << jsonOrNull(cudnn.warning);

  std::string ncclWhy;
  const patho::NcclApi* nccl = patho::ncclApi(&ncclWhy);
  os << ",\"nccl\":";
  if (nccl)
    os << nccl->version;
  else
    os << "null";
  os << ",\"ncclPath\":" << jsonOrNull(nccl ? nccl->path : "") << ",\"ncclError\":" << jsonOrNull(nccl ? "" : ncclWhy);

  os << ",\"deviceCount\":" << d.count << ",\"devices\":[";
  for (int i = 0; i < d.count; i++) {
    cudaDeviceProp p;
    if (i) os << ",";
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
      cudaGetLastError();
      os << "{\"index\":" << i << ",\"name\":null,\"memory\":null,\"cc\":null}";
      continue;
    }
    os << "{\"index\":" << i << ",\"name\":" << jsonString(p.name) << ",\"memory\":" << p.totalGlobalMem << ",\"cc\":\""
       << p.major << "." << p.minor << "\"}";
  }
  const std::string error =
      d.verdict.problem == patho::DriverProblem::None ? "" : "no CUDA device (" + d.verdict.message + ")";
  os << "],\"error\":" << jsonOrNull(error) << "}";
  return os.str();
}

void writeError(char* err, size_t errLen, const std::string& msg) {
  if (err && errLen) std::snprintf(err, errLen, "%s", msg.c_str());
}

}  // namespace

PATHO_EXPORT int patho_cuda_abi() { return PATHO_CUDA_ABI; }

// Optional (looked up with dlsym): the CUDA version the plugin is built with, so the addon's
// loader can preload the matching NVRTC (libnvrtc.so.<major>) before cuDNN asks for it.
PATHO_EXPORT int patho_cuda_runtime_version() { return CUDART_VERSION; }

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
    const DriverState d = driverState();
    if (d.verdict.problem != patho::DriverProblem::None) {
      writeError(err, errLen, d.verdict.message);
      return nullptr;
    }
    if (index < 0 || index >= d.count) {
      writeError(err, errLen, "this machine has " + std::to_string(d.count) + " CUDA device(s)");
      return nullptr;
    }
    const patho::CudnnCheck& cudnn = patho::checkCudnnLibraries();
    if (!cudnn.error.empty()) {
      writeError(err, errLen, cudnn.error);
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
