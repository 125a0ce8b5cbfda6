// In-process communicator: N CPU replicas ('cpu:0', 'cpu:1', ...) in one process, each driving its
// collectives from its own queue thread. Also the test double for many devices: results are
// deterministic and bit-identical on every rank (each element is reduced once, in rank order).
#pragma once
#include <chrono>
#include <memory>
#include <vector>

#include "communicator.h"

namespace patho {

class InProcessGroup;

class InProcessComm : public Communicator {
 public:
  InProcessComm(std::shared_ptr<InProcessGroup> group, int rank, Device device);
  int rank() const override { return rank_; }
  int size() const override;
  Device device() const override { return device_; }
  std::string kind() const override { return "inprocess"; }
  void allReduce(const Tensor& t, ReduceOp op) override;
  void broadcast(const Tensor& t, int root) override;
  void barrier() override;

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
