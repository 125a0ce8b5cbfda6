// CpuBackend: every op of backend.h on the CPU, with oneDNN primitives where oneDNN has them
// (convolution, batch norm, eltwise) and plain loops for the rest. One instance per CPU device
// ("cpu:0", "cpu:1", ...), each driven by its own execution queue.
#pragma once
#include <memory>
#include <string>

#include "core/backend.h"

namespace patho {

std::unique_ptr<Backend> createCpuBackend(int index);

// "2.6.3 (git hash ...)" and the ISA oneDNN dispatches to, for doctor/info.
std::string oneDnnVersion();
std::string oneDnnIsa();

}  // namespace patho
