// Host-to-device uploads through a ring of pinned buffers. cudaMemcpyAsync from pageable memory
// is staged by the driver before it returns only as observed behaviour, not a documented
// guarantee, and the binding frees the source right after the call. Here the bytes are copied
// into a pinned slot, the slot is copied to the device asynchronously on the stream, and an event
// marks when the slot may be refilled, so the caller's buffer is never read after upload()
// returns. Uploads larger than a slot go through the ring in pieces, the host copy of one piece
// overlapping the DMA of the previous (PyTorch's pinned-memory loaders get the same overlap).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

namespace patho {

class PinnedStaging {
 public:
  static constexpr size_t kSlotBytes = size_t(8) << 20;  // 8 MiB: a 512x512x3 uint8 image batch of 16 is two slots
  static constexpr int kSlots = 4;

  PinnedStaging() = default;
  ~PinnedStaging();  // waits for the slots still in flight, frees the pinned memory
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;

  // dst (device) <- src (host, any memory) on stream s; src may be freed as soon as this returns.
  void upload(void* dst, const void* src, size_t bytes, cudaStream_t s);

 private:
  struct Slot {
    char* host = nullptr;
    cudaEvent_t done = nullptr;
    bool inFlight = false;
  };
  bool ensure();  // allocates the ring once; false if pinned memory is not available

  bool tried_ = false, pinned_ = false;
  char* block_ = nullptr;
  std::vector<Slot> slots_;
  int next_ = 0;
};

}  // namespace patho
