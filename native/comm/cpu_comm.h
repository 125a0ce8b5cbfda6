// Base of the CPU communicators (in-process, Gloo): collectives run on a side thread of their own,
// in call order, so the device queue can go on computing while a gradient bucket is reduced
// (allReduceStart/wait); the blocking collectives are a start followed by a wait.
#pragma once
#include <memory>

#include "communicator.h"
#include "core/queue.h"

namespace patho {

class CpuComm : public Communicator {
 public:
  ~CpuComm() override;
  void allReduce(const Tensor& t, ReduceOp op) final;
  void allReduceStart(const Tensor& t, ReduceOp op) final;
  void broadcast(const Tensor& t, int root) final;
  void barrier() final;
  void wait() final;

 protected:
  // Run on the side thread, one at a time, in call order.
  virtual void doAllReduce(const Tensor& t, ReduceOp op) = 0;
  virtual void doBroadcast(const Tensor& t, int root) = 0;
  virtual void doBarrier() = 0;
  // Runs what was started, then stops the side thread. Derived destructors call it first: the
  // side thread calls their do* methods.
  void finishSide() { side_.reset(); }

 private:
  ExecQueue& side();
  // Only the device queue thread calls in, so no lock; created on first use.
  std::unique_ptr<ExecQueue> side_;
};

}  // namespace patho
