// The thread that serves an emulated device's queues, so that guest I/O
// never runs on a vCPU thread (a slow disk would stall the vCPU that kicked
// it, and the vCPU filter would need the device's system calls) nor on the
// VMM thread (a slow disk would stall the API and the console).
//
// Between Start (DRIVER_OK) and Stop (reset), `serve` runs on the worker
// whenever a queue is kicked or Poke is called. Stop returns only once
// `serve` is not running and will not run again: after it, the device may
// forget the queues.
//
// The thread is created by Launch, before the VMM thread's seccomp filter
// forbids creating threads, and installs its own filter (ThreadKind::kDevice).
//
// Thread-safety: Start/Stop come from vCPU threads (under the transport's
// lock), Poke from any thread; `serve` runs only on the worker.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"
#include "jail/seccomp_filters.h"

namespace ember {

class QueueWorker {
 public:
  // `kind` picks the worker's seccomp filter.
  explicit QueueWorker(std::string thread_name, ThreadKind kind = ThreadKind::kDevice)
      : thread_name_(std::move(thread_name)), kind_(kind) {}
  ~QueueWorker();
  QueueWorker(const QueueWorker&) = delete;
  QueueWorker& operator=(const QueueWorker&) = delete;

  // Creates the thread and waits until its filter is in.
  Status Launch();
  // Serves `kick_fds` (eventfds, drained here) and `data_fds` (e.g. a TAP,
  // which `serve` reads itself) with `serve` until Stop; none is owned.
  // Runs `serve` once at the start for requests queued before activation.
  void Start(std::vector<int> kick_fds, std::function<void()> serve,
             std::vector<int> data_fds = {});
  void Stop();
  // Runs `serve` once more soon (e.g. a new backing file).
  void Poke();
  // Returns once `serve` has run after this call (so every kick made
  // before it is served), or at once when not started: a quiet point for
  // whoever drives the device from outside (fuzzing; later, snapshots).
  void Sync();
  // From `serve` only: runs it again after `delay` (a throttled queue
  // resumes from this timer, never by spinning). A later call replaces it.
  void ServeAgainAfter(std::chrono::nanoseconds delay);
  // From `serve` only: stops watching data fd `fd` until another fd fires
  // (a kick): a TAP with frames the guest has no buffers for would
  // otherwise wake the worker in a loop.
  void MuteUntilKick(int fd);

 private:
  void ThreadMain();
  void WakeUp();

  const std::string thread_name_;
  const ThreadKind kind_;
  UniqueFd wake_;   // eventfd: something changed under mutex_
  UniqueFd timer_;  // timerfd: ServeAgainAfter
  std::thread thread_;

  std::mutex mutex_;
  std::condition_variable changed_;
  bool quit_ = false;
  bool active_ = false;
  bool serving_ = false;
  uint64_t generation_ = 0;      // bumped by Start: the worker picks up new fds
  uint64_t sync_requested_ = 0;  // Sync calls so far
  uint64_t sync_done_ = 0;       // those a finished serve covered
  std::vector<int> kick_fds_;
  std::vector<int> data_fds_;
  std::function<void()> serve_;
  std::vector<int> muted_;  // worker only
};

}  // namespace ember
