// Device registry (see devices.h).
#include "devices.h"

#include <map>
#include <mutex>

#include "cpu/cpu_backend.h"

namespace patho {

std::unique_ptr<Backend> createCudaBackend(int index);  // cuda_loader.cc

namespace {
std::mutex gMu;
std::map<std::string, std::unique_ptr<DeviceContext>>& registry() {
  // Leaked on purpose: queues must not be joined during static destruction at process exit.
  static auto* r = new std::map<std::string, std::unique_ptr<DeviceContext>>();
  return *r;
}
}  // namespace

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

Tensor allocateTensor(const Shape& shape, DType dtype, const Device& d) {
  for (auto s : shape) PATHO_CHECK(s >= 0, "ERR_PATHO_SHAPE", "Expected non-negative dimensions but received " << shapeStr(shape));
  auto& ctx = deviceContext(d);
  size_t bytes = size_t(shapeNumel(shape)) * dtypeSize(dtype);
  auto storage = std::make_shared<Storage>(&ctx.backend->allocator(), bytes);
  return Tensor(shape, dtype, d, std::move(storage), 0);
}

}  // namespace patho
