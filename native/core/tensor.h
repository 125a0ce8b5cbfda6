// Tensor: a shape, a dtype, a device and a view (byte offset) into reference-counted Storage.
// A Tensor is a cheap value; work queued on a device holds copies, so storage lives until the
// last queued op that uses it has run, and is then returned to the device's caching allocator
// (memory is freed in queue order). Layout is always dense row-major (NCHW for images).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "allocator.h"
#include "device.h"
#include "dtype.h"

namespace patho {

using Shape = std::vector<int64_t>;

enum class Layout { NCHW = 0, NHWC = 1 };
inline const char* layoutName(Layout l) { return l == Layout::NHWC ? "nhwc" : "nchw"; }
Layout parseLayout(const std::string& s);  // "nchw" | "nhwc", else ERR_PATHO_ARG

std::string shapeStr(const Shape& s);
int64_t shapeNumel(const Shape& s);

// The largest dimension a shape may have: 2^53, the largest integer a JS number holds exactly.
constexpr int64_t kMaxDim = int64_t(1) << 53;
// Every tensor's shape passed this check when it was made (creation, views), so shape arithmetic
// elsewhere (2*H, Ca+Cb, sub-products of dims) cannot overflow: each dim is in [0, kMaxDim], the
// product of the non-zero dims fits int64 (so a shape never wraps to 0 elements, even beside a 0
// dim, and loops over outer dims stay bounded), and so does numel * dtype size in bytes. Returns
// the byte size; throws ERR_PATHO_SHAPE naming `what` (e.g. "empty") otherwise.
size_t checkedBytes(const Shape& s, size_t elemSize, const std::string& what);

class Storage {
 public:
  Storage(CachingAllocator* alloc, size_t bytes) : alloc_(alloc), bytes_(bytes) {
    ptr_ = alloc_->allocate(bytes, &granted_);
  }
  ~Storage() { alloc_->deallocate(ptr_, granted_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* ptr() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  CachingAllocator* alloc_;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  size_t granted_ = 0;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(Shape shape, DType dtype, Device device, std::shared_ptr<Storage> storage, size_t offsetBytes = 0,
         Layout layout = Layout::NCHW)
      : shape_(std::move(shape)),
        dtype_(dtype),
        device_(device),
        storage_(std::move(storage)),
        offset_(offsetBytes),
        layout_(layout) {}

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int ndim() const { return int(shape_.size()); }
  int64_t numel() const { return shapeNumel(shape_); }
  size_t bytes() const { return size_t(numel()) * dtypeSize(dtype_); }
  DType dtype() const { return dtype_; }
  Layout layout() const { return layout_; }
  bool nhwc() const { return layout_ == Layout::NHWC; }
  Device device() const { return device_; }
  size_t offset() const { return offset_; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  void* raw() const { return static_cast<char*>(storage_->ptr()) + offset_; }
  template <typename T>
  T* data() const {
    return reinterpret_cast<T*>(raw());
  }
  float* f32() const { return data<float>(); }

  std::string describe() const;  // "float32[2,3,4,4] on cpu:0", "bfloat16[2,3,4,4] nhwc on cuda:0"

 private:
  Shape shape_;
  DType dtype_ = DType::F32;
  Device device_;
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
  Layout layout_ = Layout::NCHW;
};

}  // namespace patho
