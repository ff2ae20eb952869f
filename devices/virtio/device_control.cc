#include "devices/virtio/device_control.h"

#include <pthread.h>

#include <system_error>

#include "jail/seccomp.h"

namespace ember {

Status DeviceControl::Start() {
  try {
    thread_ = std::thread([this] { ThreadMain(); });
  } catch (const std::system_error& error) {
    return Status::Error(std::string("starting the device-control thread: ") + error.what());
  }
  pthread_setname_np(thread_.native_handle(), "device-control");
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return started_.has_value(); });
  return *started_;
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
  Status filtered = InstallThreadFilter(ThreadKind::kDeviceControl);
  {
    std::lock_guard lock(mutex_);
    started_ = filtered.Context("device-control thread");
    if (!filtered.ok()) stopping_ = true;
  }
  changed_.notify_all();
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
