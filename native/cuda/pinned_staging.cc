// Pinned upload ring (see pinned_staging.h).
#include "pinned_staging.h"

#include <algorithm>
#include <cstring>

#include "check.h"

namespace patho {

PinnedStaging::~PinnedStaging() {
  // Destructors cannot act on a failure: every status is dropped.
  for (auto& s : slots_) {
    if (s.done) {
      if (s.inFlight && cudaEventSynchronize(s.done) != cudaSuccess) cudaGetLastError();
      cudaEventDestroy(s.done);
    }
  }
  if (block_ && cudaFreeHost(block_) != cudaSuccess) cudaGetLastError();
}

bool PinnedStaging::ensure() {
  if (tried_) return pinned_;
  tried_ = true;
  void* p = nullptr;
  if (cudaHostAlloc(&p, kSlotBytes * kSlots, cudaHostAllocDefault) != cudaSuccess) {
    cudaGetLastError();  // pinned memory can be capped (containers, ulimit -l): fall back, see upload()
    return false;
  }
  block_ = static_cast<char*>(p);
  slots_.resize(kSlots);
  for (int i = 0; i < kSlots; i++) {
    slots_[i].host = block_ + size_t(i) * kSlotBytes;
    CHECK_CUDA(cudaEventCreateWithFlags(&slots_[i].done, cudaEventDisableTiming));
  }
  pinned_ = true;
  return true;
}

void PinnedStaging::upload(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  if (bytes == 0) return;
  if (!ensure()) {
    // No pinned ring: copy, then wait for the copy, so src is no longer read when this returns.
    CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
    CHECK_CUDA(cudaStreamSynchronize(s));
    return;
  }
  const char* from = static_cast<const char*>(src);
  char* to = static_cast<char*>(dst);
  for (size_t off = 0; off < bytes; off += kSlotBytes) {
    const size_t n = std::min(kSlotBytes, bytes - off);
    Slot& slot = slots_[next_];
    next_ = (next_ + 1) % kSlots;
    if (slot.inFlight) CHECK_CUDA(cudaEventSynchronize(slot.done));  // its previous piece has reached the device
    std::memcpy(slot.host, from + off, n);
    CHECK_CUDA(cudaMemcpyAsync(to + off, slot.host, n, cudaMemcpyHostToDevice, s));
    CHECK_CUDA(cudaEventRecord(slot.done, s));
    slot.inFlight = true;
  }
}

}  // namespace patho
