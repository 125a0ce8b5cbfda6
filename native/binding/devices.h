// Device registry: one backend and one execution queue per device, created on first use and
// kept for the life of the process. CUDA devices come from the dlopen'ed plugin.
#pragma once
#include <memory>
#include <string>

#include "core/backend.h"
#include "core/queue.h"

namespace patho {

struct DeviceContext {
  Device device;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<ExecQueue> queue;
};

// Throws ERR_PATHO_DEVICE (unknown device) or ERR_PATHO_CUDA (plugin/driver missing, with reason).
DeviceContext& deviceContext(const Device& d);
// Stops every device queue (drops queued work, waits for the op in progress). Called when the
// process's main Node environment is torn down and again from atexit, before oneDNN/CUDA destroy
// their statics: an op still running then would crash the exit.
void shutdownAllQueues();
// Allocates a dense tensor on a device from its caching allocator.
Tensor allocateTensor(const Shape& shape, DType dtype, const Device& d, Layout layout = Layout::NCHW);

// CUDA plugin: JSON from patho_cuda_info(), or {"error": "..."} with why the plugin did not load.
std::string cudaInfoJson();
// Where the plugin was loaded from and what was tried, for doctor.
std::string cudaLoaderReport();

}  // namespace patho
