// cuDNN's tensor descriptors hold at most 2^31 - 1 elements, so a width-64 UNet at 512x512 with
// batch 64 ([64,128,512,512] = 2^31) cannot be described whole. Like PyTorch, the backend then runs
// convolutions and activations on batch chunks that fit; batch norm, whose statistics span the
// whole batch, and pooling use own kernels with 64-bit indices instead. Pure arithmetic, so
// test/cuda/selftest.cc checks it without a GPU.
#pragma once
#include <cstdint>

namespace patho {

constexpr int64_t kCudnnMaxElements = (int64_t(1) << 31) - 1;

// Chunks of `per` images (the last one holds the remaining N - (count-1)*per). count == 0 when a
// single image already exceeds `limit` (nothing to split: a shape error for the caller).
struct BatchSplit {
  int64_t per = 0;
  int64_t count = 0;
  int64_t size(int64_t i, int64_t N) const { return i + 1 < count ? per : N - (count - 1) * per; }
};

// perImage: the largest per-image element count among the tensors of one call (x and y of a
// convolution, say). Balanced: [64, 2^25-element images] with limit 2^31-1 gives 2 chunks of 32,
// not 63 + 1, so at most two chunk shapes (and two cuDNN plans) exist.
inline BatchSplit batchSplit(int64_t N, int64_t perImage, int64_t limit) {
  BatchSplit s;
  if (N <= 0) return BatchSplit{0, 1};
  if (perImage <= 0) return BatchSplit{N, 1};
  const int64_t maxPer = limit / perImage;
  if (maxPer < 1) return s;  // count 0
  s.count = (N + maxPer - 1) / maxPer;
  s.per = (N + s.count - 1) / s.count;
  return s;
}

// Flat pieces for element-wise ops on tensors that are not batches (n elements, pieces of at most
// `limit` rounded down to a multiple of 16 so every piece keeps 16-byte alignment for 1-byte types and up).
inline BatchSplit flatSplit(int64_t n, int64_t limit) {
  const int64_t piece = limit >= 16 ? limit / 16 * 16 : limit;
  if (n <= limit) return BatchSplit{n, 1};
  return BatchSplit{piece, (n + piece - 1) / piece};
}

}  // namespace patho
