// Caching allocator: blocks are rounded up to a size class and returned to a free list instead of
// to the system, so the steady state of a training step allocates nothing. One per device; the
// raw allocate/free come from the backend (aligned host memory, or cudaMalloc in the plugin).
// Thread-safe: outputs are allocated on the JS thread, released wherever the last user drops them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

namespace patho {

struct MemoryStats {
  int64_t current = 0;      // bytes handed out and not yet returned
  int64_t peak = 0;         // high-water mark of current
  int64_t cached = 0;       // bytes held in free lists
  int64_t reserved = 0;     // bytes obtained from the system (current + cached)
  int64_t allocations = 0;  // number of live blocks
};

class CachingAllocator {
 public:
  using RawAlloc = std::function<void*(size_t)>;  // must throw patho::Error (ERR_PATHO_OOM) on failure
  using RawFree = std::function<void(void*)>;

  CachingAllocator(RawAlloc rawAlloc, RawFree rawFree) : rawAlloc_(std::move(rawAlloc)), rawFree_(std::move(rawFree)) {}
  ~CachingAllocator() { releaseCached(); }
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Returns a block of at least `bytes` (256-byte aligned by the raw allocator); never null.
  void* allocate(size_t bytes, size_t* granted);
  void deallocate(void* p, size_t granted);
  // Gives every cached block back to the system (e.g. before reporting OOM, or at shutdown).
  void releaseCached();
  MemoryStats stats() const;
  void resetPeak();

  static size_t roundSize(size_t bytes);

 private:
  RawAlloc rawAlloc_;
  RawFree rawFree_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_;  // size -> block
  MemoryStats stats_;
};

}  // namespace patho
