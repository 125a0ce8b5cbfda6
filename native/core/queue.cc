// ExecQueue: one worker thread per device (see queue.h).
#include "queue.h"

#include <future>

#include "error.h"

namespace patho {

ExecQueue::ExecQueue(std::string name) : name_(std::move(name)) { worker_ = std::thread([this] { run(); }); }

ExecQueue::~ExecQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void ExecQueue::submit(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(Task{std::move(fn), nullptr});
  }
  cv_.notify_one();
}

void ExecQueue::submitFence(std::function<void(const QueueError&)> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(Task{nullptr, std::move(fn)});
  }
  cv_.notify_one();
}

QueueError ExecQueue::drain() {
  auto done = std::make_shared<std::promise<QueueError>>();
  auto fut = done->get_future();
  submitFence([done](const QueueError& e) { done->set_value(e); });
  return fut.get();
}

size_t ExecQueue::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

void ExecQueue::run() {
  for (;;) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stop_ and nothing left
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    if (task.fence) {
      QueueError e = error_;
      error_ = QueueError{};
      try {
        task.fence(e);
      } catch (...) {
        // a fence callback must not throw; nothing sensible to report to
      }
      continue;
    }
    if (error_.set) continue;
    try {
      task.work();
    } catch (const Error& e) {
      error_ = QueueError{true, e.code(), e.what()};
    } catch (const std::bad_alloc&) {
      error_ = QueueError{true, "ERR_PATHO_OOM", "out of host memory in a queued op on " + name_};
    } catch (const std::exception& e) {
      error_ = QueueError{true, "ERR_PATHO_INTERNAL", std::string(e.what()) + " (in a queued op on " + name_ + ")"};
    }
  }
}

}  // namespace patho
