// The reclaimer and helper threads (see detail/store_context.hpp).
#include <exception>
#include <new>

#include "iavl/detail/store_context.hpp"

namespace iavl::detail {

void worker::start() {
  std::lock_guard lock(mutex_);
  if (running_) return;
  running_ = true;
  stopping_ = false;
  exited_ = false;
  thread_ = std::thread([this] { run(); });
}

void worker::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!running_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  std::lock_guard lock(mutex_);
  running_ = false;
}

void reclaimer::stop() {
  worker::stop();
  idle_.notify_all();  // flush() no longer waits for a thread
}

void reclaimer::perform(job& j) {
  if (j.n && j.own) {
    discard(j.n, j.account);
  } else if (j.n) {
    release(j.n, j.account);
  } else if (j.task) {
    j.task();
  } else {
    count_borrowed_slots(*j.committed);
    j.pin = {};
  }
}

void reclaimer::enqueue(job j) {
  {
    std::lock_guard lock(mutex_);
    if (running_ && !exited_) {
      queue_.push_back(std::move(j));
      if (queue_.size() == 1) wake_if_asleep();
      return;
    }
  }
  perform(j);
}

void reclaimer::drop(node* n, bool own, memory_account* account) { enqueue({n, own, account, {}, {}, {}}); }

void reclaimer::count_borrowed(committed_nodes committed, epoch_pin pin) {
  enqueue({nullptr, false, nullptr, std::move(committed), std::move(pin), {}});
}

void reclaimer::post(std::function<void()> task) { enqueue({nullptr, false, nullptr, {}, {}, std::move(task)}); }

void reclaimer::flush() {
  std::unique_lock lock(mutex_);
  if (!queue_.empty()) hurry();
  idle_.wait(lock, [&] { return !running_ || (queue_.empty() && !busy_); });
}

void reclaimer::run() {
  std::vector<job> work;
  std::unique_lock lock(mutex_);
  for (;;) {
    wait_for_work(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {  // stopping, and everything queued is done
      exited_ = true;
      return;
    }
    work.swap(queue_);
    busy_ = true;
    lock.unlock();
    for (job& j : work) perform(j);
    work.clear();
    lock.lock();
    busy_ = false;
    keep_looking();
    if (queue_.empty()) idle_.notify_all();
  }
}

void helper_thread::both(const std::function<void()>& a, const std::function<void()>& b) {
  {
    std::lock_guard lock(mutex_);
    if (!running_ || stopping_ || task_) {  // no helper, or it is busy with another caller's half
      a();
      b();
      return;
    }
    task_ = &a;
    taken_ = false;
  }
  wake_.notify_one();
  std::exception_ptr failure;  // `a` may refer to what b's caller holds: never leave it running
  try {
    b();
  } catch (...) {
    failure = std::current_exception();
  }
  std::unique_lock lock(mutex_);
  // task_ is another caller's once the helper has done ours: `a` is ours only while it is there.
  if (task_ == &a && !taken_) {  // the helper has not been scheduled yet: doing `a` here is sooner
    task_ = nullptr;
    lock.unlock();
    if (failure) std::rethrow_exception(failure);
    a();
    return;
  }
  done_.wait(lock, [&] { return task_ != &a; });
  if (failure) std::rethrow_exception(failure);
}

void helper_thread::post(std::function<void()> task) noexcept {
  {
    std::lock_guard lock(mutex_);
    if (running_ && !exited_) {
      try {
        posted_.push_back(std::move(task));  // when it throws, `task` is as it was
        if (posted_.size() == 1) wake_if_asleep();
        return;
      } catch (const std::bad_alloc&) {
      }
    }
  }
  task();
}

void helper_thread::flush() {
  std::unique_lock lock(mutex_);
  if (!posted_.empty()) hurry();
  done_.wait(lock, [&] { return !running_ || (posted_.empty() && !running_posted_); });
}

void helper_thread::stop() {
  worker::stop();  // run() returns once what was posted is done
  done_.notify_all();
}

void helper_thread::run() {
  std::vector<std::function<void()>> work;
  std::unique_lock lock(mutex_);
  for (;;) {
    wait_for_work(lock, [&] { return stopping_ || (task_ && !taken_) || !posted_.empty(); });
    if (task_ && !taken_) {  // a caller of both() waits for it: first
      taken_ = true;
      const std::function<void()>* task = task_;
      lock.unlock();
      (*task)();
      lock.lock();
      task_ = nullptr;
      done_.notify_all();
    } else if (!posted_.empty()) {
      work.swap(posted_);
      running_posted_ = true;
      lock.unlock();
      for (auto& task : work) task();
      work.clear();
      lock.lock();
      running_posted_ = false;
      keep_looking();
      done_.notify_all();
    } else {  // stopping, with nothing left to do
      exited_ = true;
      return;
    }
  }
}

}  // namespace iavl::detail
