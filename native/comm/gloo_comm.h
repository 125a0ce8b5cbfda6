// Gloo communicator: one CPU rank per process, connected over TCP (Gloo's transport) after a
// rendezvous through patho's store. Gloo does the collectives (ring all-reduce, which reduces each
// element once and forwards it, so every rank ends bit-identical).
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "cpu_comm.h"

namespace gloo {
class Context;
}

namespace patho {

struct GlooOptions {
  int rank = 0, size = 1;
  std::string storeHost;  // rank 0's rendezvous store
  int storePort = 0;
  std::string prefix;                        // namespaces this communicator's keys in the store
  std::chrono::milliseconds timeout{60000};  // rendezvous and every collective
  std::string bindHost;                      // address this rank listens on for its peers ("" = this host's name)
  Device device;                             // whose queue runs the collectives (a CPU device)
};

class GlooComm : public CpuComm {
 public:
  // Blocks until every rank has connected (or throws ERR_PATHO_COMM after the timeout): call it
  // off the JS thread, since rank 0's JS thread serves the store.
  explicit GlooComm(const GlooOptions& o);
  ~GlooComm() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Device device() const override { return device_; }
  std::string kind() const override { return "gloo"; }

 protected:
  void doAllReduce(const Tensor& t, ReduceOp op) override;
  void doBroadcast(const Tensor& t, int root) override;
  void doBarrier() override;

 private:
  uint32_t nextTag() { return tag_++; }
  int rank_, size_;
  Device device_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<gloo::Context> context_;
  uint32_t tag_ = 1;
};

}  // namespace patho
