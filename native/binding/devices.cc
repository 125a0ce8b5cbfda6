// Device registry (see devices.h).
#include "devices.h"

#include <cstdlib>
#include <map>
#include <mutex>

#include "cpu/cpu_backend.h"

namespace patho {

std::unique_ptr<Backend> createCudaBackend(int index);  // cuda_loader.cc

namespace {
std::mutex gMu;

// At exit, stop every device queue before oneDNN/CUDA run their own exit handlers: a queued op
// still running while libdnnl's statics are destroyed crashes the process. atexit handlers run in
// reverse order of registration, and this one is registered after those libraries have loaded.
void shutdownQueuesAtExit();

std::map<std::string, std::unique_ptr<DeviceContext>>& registry() {
  // Leaked on purpose: the contexts must outlive static destruction; shutdownQueuesAtExit stops
  // their threads instead.
  static auto* r = [] {
    std::atexit(shutdownQueuesAtExit);
    return new std::map<std::string, std::unique_ptr<DeviceContext>>();
  }();
  return *r;
}

void shutdownQueuesAtExit() { shutdownAllQueues(); }
}  // namespace

void shutdownAllQueues() {
  std::lock_guard<std::mutex> lock(gMu);
  for (auto& kv : registry()) {
    if (kv.second->queue) kv.second->queue->shutdown();
  }
}

DeviceContext& deviceContext(const Device& d) {
  std::lock_guard<std::mutex> lock(gMu);
  auto& reg = registry();
  auto key = d.str();
  auto it = reg.find(key);
  if (it != reg.end()) return *it->second;
  auto ctx = std::make_unique<DeviceContext>();
  ctx->device = d;
  if (d.kind == Device::Kind::CPU) {
    PATHO_CHECK(d.index < 64, "ERR_PATHO_DEVICE", "Expected a CPU device index below 64 but received " << key);
    ctx->backend = createCpuBackend(d.index);
  } else {
    ctx->backend = createCudaBackend(d.index);
  }
  ctx->queue = std::make_unique<ExecQueue>(key);
  auto& ref = *ctx;
  reg.emplace(key, std::move(ctx));
  return ref;
}

Tensor allocateTensor(const Shape& shape, DType dtype, const Device& d, Layout layout) {
  PATHO_CHECK(layout == Layout::NCHW || shape.size() == 4, "ERR_PATHO_SHAPE",
              "Expected a 4-D shape for layout 'nhwc' but received " << shapeStr(shape));
  const size_t bytes = checkedBytes(shape, dtypeSize(dtype), "empty");  // ERR_PATHO_SHAPE on overflow
  auto& ctx = deviceContext(d);
  auto storage = std::make_shared<Storage>(&ctx.backend->allocator(), bytes);
  return Tensor(shape, dtype, d, std::move(storage), 0, layout);
}

}  // namespace patho
