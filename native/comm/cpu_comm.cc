// CpuComm (see cpu_comm.h): the side thread is an ExecQueue, whose sticky error (the first
// collective that failed, later ones skipped) is what wait reports.
#include "cpu_comm.h"

namespace patho {

CpuComm::~CpuComm() = default;  // the queue finishes what was started, then joins

ExecQueue& CpuComm::side() {
  if (!side_) side_ = std::make_unique<ExecQueue>(device().str() + " comm");
  return *side_;
}

void CpuComm::allReduceStart(const Tensor& t, ReduceOp op) {
  side().submit([this, t, op] { doAllReduce(t, op); });
}

void CpuComm::wait() {
  if (!side_) return;
  QueueError e = side_->drain();
  if (e.set) throw Error(e.code, e.message);
}

void CpuComm::allReduce(const Tensor& t, ReduceOp op) {
  allReduceStart(t, op);
  wait();
}

void CpuComm::broadcast(const Tensor& t, int root) {
  side().submit([this, t, root] { doBroadcast(t, root); });
  wait();
}

void CpuComm::barrier() {
  side().submit([this] { doBarrier(); });
  wait();
}

}  // namespace patho
