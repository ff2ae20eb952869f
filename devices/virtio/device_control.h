// The device-control thread: where the slow half of a device's control
// runs (the vhost-user conversation of a device's activation, its reset and
// a reconnect to a restarted backend). vCPU threads only record what the
// driver asked for and post a job here, so a backend that is slow, away or
// failing never holds a vCPU (a pause or stop kick always gets through) nor
// the VMM thread (the API and the console keep answering). The thread has
// its own seccomp filter (ThreadKind::kDeviceControl): the vhost-user
// sockets' calls are allowed here and nowhere else.
//
// Thread-safety: Post from any thread; jobs run one at a time, in the order
// posted. Callers keep the queue short (a device posts at most one job
// while one of its own is pending), so a guest that loops resets cannot
// grow it.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "base/status.h"

namespace ember {

class DeviceControl {
 public:
  DeviceControl() = default;
  DeviceControl(const DeviceControl&) = delete;
  DeviceControl& operator=(const DeviceControl&) = delete;
  ~DeviceControl() { Stop(); }

  // Starts the thread; it installs its filter before running any job.
  Status Start();
  void Post(std::function<void()> job);
  // Ends the thread once the job in progress returns; queued jobs are
  // dropped (the machine is going away). Safe to call more than once.
  void Stop();

 private:
  void ThreadMain();

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ember
