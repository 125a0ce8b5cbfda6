// cuDNN 9's libcudnn.so.9 is a small dispatcher: every call, even cudnnGetVersion, goes through
// sub-libraries it loads on first use, and a missing one aborts the process ("Invalid handle.
// Cannot load symbol ..."). So before anything calls cuDNN, each sub-library the backend needs is
// loaded here the way the dispatcher loads it (its own folder first, then the library path), and
// only then do cuDNN's own version checks run. A failure names the library and the first loader
// error, which is the informative one (a missing dependency, a wrong ELF class).
#pragma once
#include <string>

namespace patho {

struct CudnnCheck {
  bool graphLoads = false;  // cuDNN can be called at all (version queries)
  std::string dir;          // folder of the libcudnn.so.9 the plugin is bound to
  std::string error;        // "" when every needed sub-library loads and the version checks pass
  std::string warning;      // "" or what works but is degraded (no NVRTC, a CUDA-12 build of cuDNN)
};

// The result is computed once per process (loading is not undone).
const CudnnCheck& checkCudnnLibraries();

}  // namespace patho
