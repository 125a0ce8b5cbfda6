// Sub-library check for cuDNN 9 (see cudnn_libraries.h).
#include "cudnn_libraries.h"

#include <cudnn.h>
#include <dlfcn.h>

namespace patho {
namespace {

// Folder of the libcudnn.so.9 this plugin is bound to: the dispatcher looks there first ($ORIGIN).
std::string dispatcherDir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&cudnnGetVersion), &info) && info.dli_fname) {
    std::string p = info.dli_fname;
    auto slash = p.rfind('/');
    if (slash != std::string::npos) return p.substr(0, slash);
  }
  return "";
}

// A library that loads stays loaded (cuDNN would load it next anyway).
bool loadable(const std::string& dir, const char* soname, std::string& why) {
  if (!dir.empty() && dlopen((dir + "/" + soname).c_str(), RTLD_LAZY | RTLD_LOCAL)) return true;
  if (dlopen(soname, RTLD_LAZY | RTLD_LOCAL)) return true;  // LD_LIBRARY_PATH / system path
  const char* e = dlerror();
  why = e ? e : "not found";
  return false;
}

}  // namespace

std::string missingCudnnLibraries(bool forCompute) {
  const std::string dir = dispatcherDir();
  std::string missing, why;
  for (const char* lib : {"libcudnn_graph.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9"}) {
    if (!loadable(dir, lib, why)) missing += (missing.empty() ? "" : ", ") + std::string(lib) + " (" + why + ")";
    if (!forCompute) break;  // version queries need only the graph library
  }
  if (missing.empty()) return "";
  return "cuDNN 9 is incomplete: libcudnn.so.9 in " + (dir.empty() ? std::string("?") : dir) +
         " cannot load " + missing +
         "; install the whole nvidia-cudnn-cu13 wheel (pip install nvidia-cudnn-cu13) or set PATHO_CUDNN_PATH";
}

}  // namespace patho
