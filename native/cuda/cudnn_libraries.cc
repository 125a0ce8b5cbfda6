// Sub-library check for cuDNN 9 (see cudnn_libraries.h).
#include "cudnn_libraries.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <dlfcn.h>

#include <mutex>

namespace patho {
namespace {

// Folder of the libcudnn.so.9 this plugin is bound to (dladdr only: calling cuDNN is not safe yet).
std::string dispatcherDir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&cudnnGetVersion), &info) && info.dli_fname) {
    std::string p = info.dli_fname;
    auto slash = p.rfind('/');
    if (slash != std::string::npos) return p.substr(0, slash);
  }
  return "";
}

// Loads `soname` from `dir`, else by name (LD_LIBRARY_PATH, the system path, a copy already
// loaded). A library that loads stays loaded: cuDNN would load it next anyway. On failure `why`
// holds the first error: dlerror of the attempt in `dir` unless the file is simply not there.
bool loadable(const std::string& dir, const std::string& soname, std::string& why) {
  std::string first;
  if (!dir.empty()) {
    const std::string path = dir + "/" + soname;
    if (dlopen(path.c_str(), RTLD_LAZY | RTLD_LOCAL)) return true;
    const char* e = dlerror();
    first = e ? e : path + ": not loadable";
    if (first.find("cannot open shared object file") != std::string::npos) first.clear();  // absent: look elsewhere
  }
  if (dlopen(soname.c_str(), RTLD_LAZY | RTLD_LOCAL)) return true;
  const char* e = dlerror();
  const std::string second = e ? e : soname + ": not loadable";
  if (!first.empty())
    why = first;  // present in dir but broken: that is the reason
  else if (second.find("cannot open shared object file") == std::string::npos)
    why = second;
  else
    why = dir.empty() ? soname + " is not on the library path"
                      : soname + " is neither in " + dir + " nor on the library path";
  return false;
}

std::string statusText(cudnnStatus_t s) {
  char detail[256] = {0};
  cudnnGetLastErrorString(detail, sizeof(detail));
  return std::string(cudnnGetErrorString(s)) + (detail[0] ? std::string(" (") + detail + ")" : "");
}

CudnnCheck compute() {
  CudnnCheck c;
  c.dir = dispatcherDir();
  const std::string fix =
      "; install the whole nvidia-cudnn-cu13 wheel (pip install nvidia-cudnn-cu13) or set "
      "PATHO_CUDNN_PATH to a folder holding all of cuDNN 9's libraries";
  std::string why;
  // graph first: without it not even the version can be asked.
  if (!loadable(c.dir, "libcudnn_graph.so.9", why)) {
    c.error = "cuDNN 9 is incomplete: libcudnn.so.9 in " + (c.dir.empty() ? std::string("?") : c.dir) +
              " cannot load libcudnn_graph.so.9 (" + why + ")" + fix;
    return c;
  }
  c.graphLoads = true;
  // What the legacy convolution, batch-norm and activation calls reach: ops and cnn, the engines
  // behind them (precompiled kernels, kernels compiled at run time) and the heuristics choosing them.
  std::string missing;
  for (const char* lib : {"libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_engines_precompiled.so.9",
                          "libcudnn_engines_runtime_compiled.so.9", "libcudnn_heuristic.so.9"}) {
    if (!loadable(c.dir, lib, why)) missing += (missing.empty() ? "" : ", ") + std::string(lib) + " (" + why + ")";
  }
  if (!missing.empty()) {
    c.error = "cuDNN 9 is incomplete: libcudnn.so.9 in " + c.dir + " cannot load " + missing + fix;
    return c;
  }
  // Every sub-library is loadable: cuDNN's own checks that they are one version.
  for (auto [name, check] : {std::make_pair("cudnnGraphVersionCheck", &cudnnGraphVersionCheck),
                             std::make_pair("cudnnOpsVersionCheck", &cudnnOpsVersionCheck),
                             std::make_pair("cudnnCnnVersionCheck", &cudnnCnnVersionCheck)}) {
    const cudnnStatus_t s = check();
    if (s != CUDNN_STATUS_SUCCESS) {
      c.error = "cuDNN 9 in " + c.dir + " mixes versions: " + name + " returned " + statusText(s) + fix;
      return c;
    }
  }
  // Kernels compiled at run time need NVRTC of cuDNN's CUDA major; cuDNN loads it by name when
  // first needed (the addon's loader preloads it from pip's nvidia/cu13/lib and the like).
  const int cudart = int(cudnnGetCudartVersion());
  const std::string nvrtc = "libnvrtc.so." + std::to_string(cudart / 1000);
  if (!loadable("", nvrtc, why))
    c.warning = nvrtc + " could not be loaded (" + why +
                "): cuDNN's run-time compiled kernels are unavailable, some "
                "convolutions may be slower (pip install nvidia-cuda-nvrtc)";
  if (cudart / 1000 != CUDART_VERSION / 1000) {
    c.warning += std::string(c.warning.empty() ? "" : "; ") + "cuDNN in " + c.dir + " is built for CUDA " +
                 std::to_string(cudart / 1000) + ", this plugin for CUDA " + std::to_string(CUDART_VERSION / 1000) +
                 " (pip install nvidia-cudnn-cu" + std::to_string(CUDART_VERSION / 1000) + ")";
  }
  return c;
}

}  // namespace

const CudnnCheck& checkCudnnLibraries() {
  static std::once_flag once;
  static CudnnCheck result;
  std::call_once(once, [] { result = compute(); });
  return result;
}

}  // namespace patho
