// In-process communicator: N CPU replicas ('cpu:0', 'cpu:1', ...) in one process, each driving its
// collectives from its own comm thread (cpu_comm.h). Also the test double for many devices: results are
// deterministic and bit-identical on every rank (each element is reduced once, in rank order).
#pragma once
#include <chrono>
#include <memory>
#include <vector>

#include "cpu_comm.h"

namespace patho {

class InProcessGroup;

class InProcessComm : public CpuComm {
 public:
  InProcessComm(std::shared_ptr<InProcessGroup> group, int rank, Device device);
  ~InProcessComm() override { finishSide(); }
  int rank() const override { return rank_; }
  int size() const override;
  Device device() const override { return device_; }
  std::string kind() const override { return "inprocess"; }
  void abort(const std::string& reason) override;

 protected:
  void doAllReduce(const Tensor& t, ReduceOp op) override;
  void doBroadcast(const Tensor& t, int root) override;
  void doBarrier() override;

 private:
  std::shared_ptr<InProcessGroup> group_;
  int rank_;
  Device device_;
};

// One communicator per device, sharing a group. A rank that does not reach a collective within
// `timeout` breaks the group: every rank's pending and later collectives throw ERR_PATHO_COMM
// naming the ranks that did not arrive (instead of hanging their queues forever).
std::vector<std::unique_ptr<Communicator>> createInProcessComms(const std::vector<Device>& devices,
                                                                std::chrono::milliseconds timeout);

}  // namespace patho
