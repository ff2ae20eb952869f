#include "devices/virtio/device_control.h"

#include "jail/filtered_thread.h"

namespace ember {

Status DeviceControl::Start() {
  Result<std::thread> started =
      StartFilteredThread("device-control", ThreadKind::kDeviceControl, [this] { ThreadMain(); });
  if (!started.ok()) {
    std::lock_guard lock(mutex_);
    stopping_ = true;  // nothing would run what is posted
    return started.status();
  }
  thread_ = std::move(*started);
  return Status::Ok();
}

void DeviceControl::Post(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    jobs_.push_back(std::move(job));
  }
  changed_.notify_all();
}

void DeviceControl::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DeviceControl::ThreadMain() {
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace ember
