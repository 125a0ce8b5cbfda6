// Caching allocator (see allocator.h). Size classes: powers of two up to 1 MiB, then multiples of
// 1 MiB, so a reused block wastes at most half of a small request and 1 MiB of a large one.
#include "allocator.h"

#include "error.h"

namespace patho {

size_t CachingAllocator::roundSize(size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t kMiB = size_t(1) << 20;
  if (bytes >= kMiB) return (bytes + kMiB - 1) / kMiB * kMiB;
  size_t s = 256;
  while (s < bytes) s <<= 1;
  return s;
}

void* CachingAllocator::allocate(size_t bytes, size_t* granted) {
  const size_t size = roundSize(bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(size);
    if (it != free_.end()) {
      void* p = it->second;
      free_.erase(it);
      stats_.cached -= size;
      stats_.current += size;
      stats_.allocations++;
      if (stats_.current > stats_.peak) stats_.peak = stats_.current;
      *granted = size;
      return p;
    }
  }
  void* p = nullptr;
  try {
    p = rawAlloc_(size);
  } catch (const Error& e) {
    if (e.code() != "ERR_PATHO_OOM") throw;
    releaseCached();  // give the cache back and try once more before failing
    p = rawAlloc_(size);
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.reserved += size;
  stats_.current += size;
  stats_.allocations++;
  if (stats_.current > stats_.peak) stats_.peak = stats_.current;
  *granted = size;
  return p;
}

void CachingAllocator::deallocate(void* p, size_t granted) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  free_.emplace(granted, p);
  stats_.current -= granted;
  stats_.cached += granted;
  stats_.allocations--;
}

void CachingAllocator::releaseCached() {
  std::multimap<size_t, void*> blocks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocks.swap(free_);
    for (auto& kv : blocks) stats_.reserved -= kv.first;
    stats_.cached = 0;
  }
  for (auto& kv : blocks) rawFree_(kv.second);
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::resetPeak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak = stats_.current;
}

}  // namespace patho
