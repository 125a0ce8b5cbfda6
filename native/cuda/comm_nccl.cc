// NCCL communicators (DESIGN.md decision 6) and the plugin's optional NCCL entry points
// (core/cuda_plugin.h): ncclCommInitRank across processes (the unique id travels through the
// rendezvous store), ncclCommInitAll for all GPUs of one process, collectives on the device stream.
// NCCL itself is loaded on first use (nccl_api.h).
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "check.h"
#include "comm/communicator.h"
#include "comm_guard.h"
#include "core/backend.h"
#include "core/cuda_plugin.h"
#include "cuda_backend.h"
#include "nccl_api.h"

#define PATHO_NCCL_EXPORT extern "C" __attribute__((visibility("default")))

namespace patho {

namespace {

// Every collective runs on the communicator's own stream, after the work already queued on the
// backend's stream (an event), so compute can overlap it; wait makes the backend's stream wait
// for it. All of one communicator's collectives share that one stream, so they run in call order.
// abort() may come from the JS thread at any time: every use of comm_ goes through guard_, so
// nothing touches the communicator once ncclCommAbort has freed it.
class NcclComm final : public Communicator {
 public:
  NcclComm(const NcclApi& api, ncclComm_t comm, int rank, int size, Backend* backend)
      : api_(api), comm_(comm), rank_(rank), size_(size), backend_(backend), device_(backend->device()) {}

  ~NcclComm() override {
    // Never throws: a communicator that failed is aborted instead of destroyed (destroy would wait
    // for peers that may be gone).
    if (cudaSetDevice(device_.index) != cudaSuccess) cudaGetLastError();
    if (stream_ && cudaStreamSynchronize(stream_) != cudaSuccess) cudaGetLastError();
    guard_.abort("destroyed", [&] {
      ncclResult_t async = ncclSuccess;
      if (api_.commGetAsyncError(comm_, &async) != ncclSuccess || async != ncclSuccess)
        api_.commAbort(comm_);
      else
        api_.commDestroy(comm_);
    });
    if (ready_) cudaEventDestroy(ready_);
    if (done_) cudaEventDestroy(done_);
    if (stream_) cudaStreamDestroy(stream_);
    if (scratch_) cudaFree(scratch_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Device device() const override { return device_; }
  std::string kind() const override { return "nccl"; }

  void allReduceStart(const Tensor& t, ReduceOp op) override {
    if (t.numel() == 0) return;
    start("allReduce", [&](cudaStream_t s) {
      CHECK_NCCL(api_, api_.allReduce(t.raw(), t.raw(), size_t(t.numel()), ncclFloat32,
                                      op == ReduceOp::Avg ? ncclAvg : ncclSum, comm_, s));
    });
  }
  void allReduce(const Tensor& t, ReduceOp op) override {
    allReduceStart(t, op);
    wait();
  }

  void broadcast(const Tensor& t, int root) override {
    PATHO_CHECK(root >= 0 && root < size_, "ERR_PATHO_ARG",
                "broadcast: Expected a root rank below " << size_ << " but received " << root);
    if (t.numel() == 0) return;
    start("broadcast", [&](cudaStream_t s) {
      CHECK_NCCL(api_, api_.broadcast(t.raw(), t.raw(), size_t(t.numel()), ncclFloat32, root, comm_, s));
    });
    wait();
  }

  // NCCL has no barrier: an all-reduce of one float, waited for by the host (outside the guard,
  // so an abort from another thread can end a barrier that waits for a dead peer).
  void barrier() override {
    start("barrier", [&](cudaStream_t s) {
      if (!scratch_) CHECK_CUDA(cudaMalloc(&scratch_, sizeof(float)));
      CHECK_NCCL(api_, api_.allReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, comm_, s));
    });
    guard("barrier", [&] { CHECK_CUDA(cudaStreamSynchronize(stream_)); });
    wait();
  }

  // ncclCommAbort is NCCL's way to stop collectives that hang on a dead peer, from any thread.
  void abort(const std::string& reason) override {
    guard_.abort(reason, [&] { api_.commAbort(comm_); });
  }

  void wait() override {
    if (!pending_) return;
    pending_ = false;
    guard("wait", [&] {
      CHECK_CUDA(cudaSetDevice(device_.index));
      CHECK_CUDA(cudaEventRecord(done_, stream_));
      CHECK_CUDA(cudaStreamWaitEvent(cudaBackendStream(*backend_), done_, 0));
      checkAsync();
    });
  }

 private:
  template <typename F>
  void guard(const char* what, F&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      PATHO_COMM_THROW(*this, what, e.what());
    }
  }

  // Runs fn under the guard; after an abort, fails with its reason instead of touching comm_.
  template <typename F>
  void withComm(F&& fn) {
    if (!guard_.run(fn)) PATHO_THROW("ERR_PATHO_COMM", "the communicator was aborted (" << guard_.reason() << ")");
  }

  template <typename F>
  void start(const char* what, F&& enqueue) {
    guard(what, [&] {
      CHECK_CUDA(cudaSetDevice(device_.index));
      if (!stream_) {
        CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        CHECK_CUDA(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
        CHECK_CUDA(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
      }
      CHECK_CUDA(cudaEventRecord(ready_, cudaBackendStream(*backend_)));
      CHECK_CUDA(cudaStreamWaitEvent(stream_, ready_, 0));
      withComm([&] {
        enqueue(stream_);
        pending_ = true;
        checkAsyncLocked();
      });
    });
  }

  void checkAsync() {
    withComm([&] { checkAsyncLocked(); });
  }
  void checkAsyncLocked() {
    ncclResult_t async = ncclSuccess;
    CHECK_NCCL(api_, api_.commGetAsyncError(comm_, &async));
    if (async != ncclSuccess && async != ncclInProgress)
      throwNccl(api_, async, "ncclCommGetAsyncError", __FILE__, __LINE__);
  }

  const NcclApi& api_;
  ncclComm_t comm_;
  int rank_, size_;
  Backend* backend_;
  Device device_;
  CommGuard guard_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr, done_ = nullptr;
  bool pending_ = false;
  float* scratch_ = nullptr;
};

void writeError(char* err, size_t errLen, const std::string& msg) {
  if (err && errLen) std::snprintf(err, errLen, "%s", msg.c_str());
}

}  // namespace
}  // namespace patho

PATHO_NCCL_EXPORT int patho_nccl_unique_id(char* id, size_t idLen, char* err, size_t errLen) {
  try {
    static_assert(sizeof(ncclUniqueId) == PATHO_NCCL_ID_BYTES, "PATHO_NCCL_ID_BYTES must match ncclUniqueId");
    PATHO_CHECK(idLen == sizeof(ncclUniqueId), "ERR_PATHO_ARG",
                "patho_nccl_unique_id: buffer of " << idLen << " bytes");
    const patho::NcclApi& api = patho::requireNccl("patho_nccl_unique_id");
    ncclUniqueId u;
    CHECK_NCCL(api, api.getUniqueId(&u));
    std::memcpy(id, &u, sizeof(u));
    return 0;
  } catch (const std::exception& e) {
    patho::writeError(err, errLen, e.what());
    return -1;
  }
}

PATHO_NCCL_EXPORT patho::Communicator* patho_nccl_create_comm(const char* id, size_t idLen, int rank, int size,
                                                              patho::Backend* backend, char* err, size_t errLen) {
  try {
    PATHO_CHECK(idLen == sizeof(ncclUniqueId), "ERR_PATHO_ARG", "NCCL unique id of " << idLen << " bytes");
    PATHO_CHECK(backend && backend->device().kind == patho::Device::Kind::CUDA, "ERR_PATHO_DEVICE",
                "not a CUDA backend");
    const patho::NcclApi& api = patho::requireNccl("ncclCommInitRank");
    ncclUniqueId u;
    std::memcpy(&u, id, sizeof(u));
    CHECK_CUDA(cudaSetDevice(backend->device().index));
    ncclComm_t comm = nullptr;
    CHECK_NCCL(api, api.commInitRank(&comm, size, u, rank));
    return new patho::NcclComm(api, comm, rank, size, backend);
  } catch (const std::exception& e) {
    patho::writeError(err, errLen, e.what());
    return nullptr;
  }
}

PATHO_NCCL_EXPORT int patho_nccl_create_comms(int n, patho::Backend* const* backends, patho::Communicator** out,
                                              char* err, size_t errLen) {
  try {
    std::vector<int> devs(n);
    for (int i = 0; i < n; i++) {
      PATHO_CHECK(backends[i] && backends[i]->device().kind == patho::Device::Kind::CUDA, "ERR_PATHO_DEVICE",
                  "backend " << i << " is not a CUDA backend");
      devs[i] = backends[i]->device().index;
    }
    const patho::NcclApi& api = patho::requireNccl("ncclCommInitAll");
    std::vector<ncclComm_t> comms(n, nullptr);
    CHECK_NCCL(api, api.commInitAll(comms.data(), n, devs.data()));
    for (int i = 0; i < n; i++) out[i] = new patho::NcclComm(api, comms[i], i, n, backends[i]);
    return 0;
  } catch (const std::exception& e) {
    patho::writeError(err, errLen, e.what());
    return -1;
  }
}
