// cuDNN 9's libcudnn.so.9 is a small dispatcher that loads its sub-libraries (graph, ops, cnn)
// on first use and aborts the process if one is missing. This checks for them first, so a
// partial install is a clear error instead of a crash.
#pragma once
#include <string>

namespace patho {

// "" when libcudnn_graph.so.9 (and, if `forCompute`, libcudnn_ops.so.9 and libcudnn_cnn.so.9)
// can be loaded the way the dispatcher loads them; otherwise a message naming what is missing.
std::string missingCudnnLibraries(bool forCompute);

}  // namespace patho
