// The lifetime rule of an NCCL communicator that can be aborted from another thread: ncclCommAbort
// frees the communicator, so no NCCL call may use it afterwards, nor run while abort frees it.
// Every call that touches the handle goes through run(); abort() releases it exactly once, after
// any run() in progress returns. Plain C++ (no CUDA), so test/cuda/selftest.cc checks it on any
// machine. Lock hold times stay short: the calls made under it enqueue work or read a status, never
// synchronize a stream, so abort() does not wait for a collective that hangs on a dead peer
// (ncclCommAbort is what ends that one). The exception is an enqueue that sets up a connection
// the first time NCCL uses it: abort() waits for that setup to return or fail.
#pragma once
#include <mutex>
#include <string>

namespace patho {

class CommGuard {
 public:
  // Runs fn() and returns true, or returns false without running it once abort() has happened.
  template <typename F>
  bool run(F&& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_) return false;
    fn();
    return true;
  }

  // First call: marks the handle aborted, runs release() (ncclCommAbort) and returns true. Later
  // calls do nothing and return false. Waits for a run() in progress.
  template <typename F>
  bool abort(const std::string& reason, F&& release) {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_) return false;
    aborted_ = true;
    reason_ = reason;
    release();
    return true;
  }

  bool aborted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return aborted_;
  }
  std::string reason() const {
    std::lock_guard<std::mutex> lock(mu_);
    return reason_;
  }

 private:
  mutable std::mutex mu_;
  bool aborted_ = false;
  std::string reason_;
};

}  // namespace patho
