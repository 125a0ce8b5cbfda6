// ExecQueue: one worker thread per device (see queue.h).
#include "queue.h"

#include <chrono>
#include <future>

#include "error.h"

namespace patho {

ExecQueue::ExecQueue(std::string name) : name_(std::move(name)) {
  worker_ = std::thread([this] { run(); });
}

ExecQueue::~ExecQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void ExecQueue::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    abandon_ = true;
  }
  cv_.notify_all();
  if (!worker_.joinable() || worker_.get_id() == std::this_thread::get_id()) return;
  // Wait for the task in progress, but never hang the exit: a worker stuck longer (e.g. in a
  // collective whose peers are gone) is left behind.
  std::unique_lock<std::mutex> lock(mu_);
  if (doneCv_.wait_for(lock, std::chrono::seconds(10), [this] { return exited_; })) {
    lock.unlock();
    worker_.join();
  } else {
    lock.unlock();
    worker_.detach();
  }
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
      if (abandon_ || tasks_.empty()) {  // exiting, or stop_ and nothing left
        exited_ = true;
        doneCv_.notify_all();
        return;
      }
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
