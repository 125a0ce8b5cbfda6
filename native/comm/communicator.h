// Communicator: the collectives of data-parallel training (DESIGN.md decision 6) over dense
// float32 tensors, in place. Implementations: in-process (CPU replicas), Gloo (CPU, across
// processes), NCCL (GPUs, in libpatho_cuda.so). Every method runs on the execution queue thread of
// the communicator's device, so collectives are ordered with the compute queued before them.
#pragma once
#include <string>

#include "core/error.h"
#include "core/tensor.h"

namespace patho {

enum class ReduceOp { Sum = 0, Avg = 1 };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The device whose queue runs this rank's collectives; tensors passed in must live there.
  virtual Device device() const = 0;
  virtual std::string kind() const = 0;  // "inprocess" | "gloo" | "nccl"

  // t = reduction of t over all ranks; the result is bit-identical on every rank.
  virtual void allReduce(const Tensor& t, ReduceOp op) = 0;
  // t = t of rank `root` on every rank.
  virtual void broadcast(const Tensor& t, int root) = 0;
  // Returns once every rank has entered barrier().
  virtual void barrier() = 0;

  // Overlap with compute: starts t's reduction and returns, so the device queue goes on with
  // later work (the next gradient buckets of backward), which must leave t alone until wait().
  // Collectives still run in the order they were called. Default: synchronous.
  virtual void allReduceStart(const Tensor& t, ReduceOp op) { allReduce(t, op); }
  // Returns once every started collective has finished (on CUDA: once later work on the device is
  // ordered after them); a failure of one of them is thrown here.
  virtual void wait() {}

  // Called from any thread (the JS thread), not the queue: breaks the communicator so collectives
  // that are waiting, or come later, on every rank of this process fail at once with `reason`
  // instead of waiting for the timeout (e.g. a replica's compute failed and it will never arrive).
  // Across processes, Gloo and NCCL peers see the process exit; here it is a no-op by default.
  virtual void abort(const std::string& reason) {}
};

// Throws ERR_PATHO_COMM with the rank and the cause: "rank 1 of 2 (gloo): allReduce: <cause>".
#define PATHO_COMM_THROW(comm, what, msg)                                                                    \
  PATHO_THROW("ERR_PATHO_COMM", "rank " << (comm).rank() << " of " << (comm).size() << " (" << (comm).kind() \
                                        << "): " << what << ": " << msg)

}  // namespace patho
