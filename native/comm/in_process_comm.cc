// In-process collectives (see in_process_comm.h). Each collective is two barriers: after the
// first every rank's buffer is published; between them rank r alone owns chunk r of every buffer
// (it reduces that chunk over ranks 0..N-1 and writes the result to all of them); the second
// keeps any rank from touching its buffer again while others still write into it.
#include "in_process_comm.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <sstream>

namespace patho {

class InProcessGroup {
 public:
  InProcessGroup(int size, std::chrono::milliseconds timeout)
      : size_(size), timeout_(timeout), present_(size, false), slots_(size) {}

  struct Slot {
    float* data = nullptr;
    int64_t numel = 0;
    int arg = 0;  // ReduceOp for allReduce, root for broadcast
  };

  int size() const { return size_; }

  // Publishes this rank's slot, waits for every rank, returns a copy of all slots.
  std::vector<Slot> exchange(const InProcessComm& c, const char* what, Slot mine) {
    std::unique_lock<std::mutex> lock(mu_);
    slots_[c.rank()] = mine;
    arrive(c, what, lock);
    return slots_;
  }
  void wait(const InProcessComm& c, const char* what) {
    std::unique_lock<std::mutex> lock(mu_);
    arrive(c, what, lock);
  }
  // A collective whose ranks disagree (sizes, roots) leaves the ranks out of step: stop the group.
  [[noreturn]] void fail(const InProcessComm& c, const char* what, const std::string& why) {
    breakWith(why);
    std::lock_guard<std::mutex> lock(mu_);
    PATHO_COMM_THROW(c, what, broken_);
  }
  // The first reason wins; every waiting and later collective throws it.
  void breakWith(const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken_.empty()) broken_ = why;
    cv_.notify_all();
  }

 private:
  void arrive(const InProcessComm& c, const char* what, std::unique_lock<std::mutex>& lock) {
    if (!broken_.empty()) PATHO_COMM_THROW(c, what, broken_);
    uint64_t gen = generation_;
    present_[c.rank()] = true;
    if (++arrived_ == size_) {
      arrived_ = 0;
      generation_++;
      std::fill(present_.begin(), present_.end(), false);
      cv_.notify_all();
      return;
    }
    bool done = cv_.wait_for(lock, timeout_, [&] { return generation_ != gen || !broken_.empty(); });
    if (!broken_.empty()) PATHO_COMM_THROW(c, what, broken_);
    if (!done) {
      std::ostringstream os;
      int missing = 0;
      for (int r = 0; r < size_; r++) {
        if (!present_[r]) os << (missing++ ? ", " : "") << r;
      }
      broken_ = (missing > 1 ? "ranks " : "rank ") + os.str() + " did not reach " + what + " within " +
                std::to_string(timeout_.count()) + " ms (a replica failed or stopped calling collectives)";
      cv_.notify_all();
      PATHO_COMM_THROW(c, what, broken_);
    }
  }

  const int size_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  std::vector<bool> present_;
  std::vector<Slot> slots_;
  std::string broken_;
};

InProcessComm::InProcessComm(std::shared_ptr<InProcessGroup> group, int rank, Device device)
    : group_(std::move(group)), rank_(rank), device_(device) {}

int InProcessComm::size() const { return group_->size(); }

void InProcessComm::doAllReduce(const Tensor& t, ReduceOp op) {
  auto slots = group_->exchange(*this, "allReduce", {t.f32(), t.numel(), int(op)});
  const int n = size();
  for (int r = 0; r < n; r++) {
    if (slots[r].numel != t.numel() || slots[r].arg != int(op)) {
      std::ostringstream os;
      os << "ranks disagree: rank " << rank_ << " has " << t.numel() << " elements (op " << int(op) << "), rank " << r
         << " has " << slots[r].numel << " (op " << slots[r].arg << ")";
      group_->fail(*this, "allReduce", os.str());
    }
  }
  // Chunk r of every buffer belongs to rank r; 16-float granules keep chunks on separate cache lines.
  const int64_t numel = t.numel(), chunk = ((numel + n - 1) / n + 15) / 16 * 16;
  const int64_t lo = std::min(numel, rank_ * chunk), hi = std::min(numel, lo + chunk);
  const float scale = op == ReduceOp::Avg ? 1.0f / float(n) : 1.0f;
  for (int64_t j = lo; j < hi; j++) {
    float s = slots[0].data[j];
    for (int r = 1; r < n; r++) s += slots[r].data[j];
    if (op == ReduceOp::Avg) s *= scale;
    for (int r = 0; r < n; r++) slots[r].data[j] = s;
  }
  group_->wait(*this, "allReduce");
}

void InProcessComm::doBroadcast(const Tensor& t, int root) {
  auto slots = group_->exchange(*this, "broadcast", {t.f32(), t.numel(), root});
  for (int r = 0; r < size(); r++) {
    if (slots[r].numel != t.numel() || slots[r].arg != root) {
      std::ostringstream os;
      os << "ranks disagree: rank " << rank_ << " has " << t.numel() << " elements (root " << root << "), rank " << r
         << " has " << slots[r].numel << " (root " << slots[r].arg << ")";
      group_->fail(*this, "broadcast", os.str());
    }
  }
  if (rank_ != root) std::memcpy(t.f32(), slots[root].data, size_t(t.numel()) * sizeof(float));
  group_->wait(*this, "broadcast");
}

void InProcessComm::doBarrier() { group_->wait(*this, "barrier"); }

void InProcessComm::abort(const std::string& reason) {
  group_->breakWith("rank " + std::to_string(rank_) + " aborted the group: " + reason);
}

std::vector<std::unique_ptr<Communicator>> createInProcessComms(const std::vector<Device>& devices,
                                                                std::chrono::milliseconds timeout) {
  PATHO_CHECK(!devices.empty(), "ERR_PATHO_ARG", "commCreateInProcess: Expected at least one device");
  for (size_t i = 0; i < devices.size(); i++) {
    PATHO_CHECK(devices[i].kind == Device::Kind::CPU, "ERR_PATHO_DEVICE",
                "commCreateInProcess: Expected CPU devices (GPUs use NCCL) but received " << devices[i].str());
    for (size_t k = 0; k < i; k++) {
      PATHO_CHECK(devices[k] != devices[i], "ERR_PATHO_DEVICE",
                  "commCreateInProcess: Expected distinct devices (one queue per replica) but received "
                      << devices[i].str() << " twice");
    }
  }
  auto group = std::make_shared<InProcessGroup>(int(devices.size()), timeout);
  std::vector<std::unique_ptr<Communicator>> out;
  for (size_t i = 0; i < devices.size(); i++) out.push_back(std::make_unique<InProcessComm>(group, int(i), devices[i]));
  return out;
}

}  // namespace patho
