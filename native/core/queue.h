// Per-device execution queue (DESIGN.md decision 4): a native worker thread that runs submitted
// work in order, so op calls from JavaScript return at once and compute never blocks the event
// loop. A task that throws leaves a sticky error: later compute tasks are skipped until the next
// fence (read or synchronize) reports it, as CUDA reports asynchronous errors.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace patho {

struct QueueError {
  bool set = false;
  std::string code, message;
};

class ExecQueue {
 public:
  explicit ExecQueue(std::string name);
  ~ExecQueue();
  ExecQueue(const ExecQueue&) = delete;
  ExecQueue& operator=(const ExecQueue&) = delete;

  // Compute work: skipped while an error is pending.
  void submit(std::function<void()> fn);
  // Fence work (reads, synchronize): always runs, and receives (then clears) the pending error.
  void submitFence(std::function<void(const QueueError&)> fn);
  // Blocks the calling thread until everything submitted so far has run; returns the pending error.
  QueueError drain();
  size_t pending() const;
  // Process exit: drops the work not yet started, waits for the task in progress and joins the
  // worker, so no op runs while libraries (oneDNN, CUDA) tear down their statics. Idempotent.
  void shutdown();

 private:
  struct Task {
    std::function<void()> work;
    std::function<void(const QueueError&)> fence;
  };
  void run();

  std::string name_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  bool stop_ = false;
  bool abandon_ = false;
  bool exited_ = false;  // the worker has left its loop
  std::condition_variable doneCv_;
  QueueError error_;  // touched by the worker only
  std::thread worker_;
};

}  // namespace patho
