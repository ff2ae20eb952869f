#include "devices/virtio/queue_worker.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/sys_error.h"
#include "jail/filtered_thread.h"

namespace ember {

QueueWorker::~QueueWorker() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
    active_ = false;
  }
  WakeUp();
  thread_.join();
}

Status QueueWorker::Launch() {
  wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_.valid()) return ErrnoStatus(thread_name_ + ": eventfd");
  timer_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer_.valid()) return ErrnoStatus(thread_name_ + ": timerfd_create");
  EMBER_ASSIGN_OR_RETURN(thread_,
                         StartFilteredThread(thread_name_, kind_, [this] { ThreadMain(); }));
  return Status::Ok();
}

void QueueWorker::WakeUp() {
  uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
}

void QueueWorker::Start(std::vector<int> kick_fds, std::function<void()> serve,
                        std::vector<int> data_fds) {
  {
    std::lock_guard lock(mutex_);
    kick_fds_ = std::move(kick_fds);
    data_fds_ = std::move(data_fds);
    serve_ = std::move(serve);
    active_ = true;
    ++generation_;
  }
  WakeUp();
}

void QueueWorker::Stop() {
  std::unique_lock lock(mutex_);
  active_ = false;
  lock.unlock();
  changed_.notify_all();  // a Sync waiting for a serve that will not come
  WakeUp();
  lock.lock();
  changed_.wait(lock, [this] { return !serving_ || !thread_.joinable(); });
  serve_ = nullptr;
}

void QueueWorker::Poke() { WakeUp(); }

void QueueWorker::Sync() {
  std::unique_lock lock(mutex_);
  if (!active_ || !thread_.joinable()) return;
  const uint64_t target = ++sync_requested_;
  lock.unlock();
  WakeUp();
  lock.lock();
  changed_.wait(lock, [&] { return sync_done_ >= target || !active_ || quit_; });
}

void QueueWorker::MuteUntilKick(int fd) { muted_.push_back(fd); }

void QueueWorker::ServeAgainAfter(std::chrono::nanoseconds delay) {
  const auto ns = std::max<int64_t>(delay.count(), 1);
  itimerspec when{};
  when.it_value.tv_sec = ns / 1000000000;
  when.it_value.tv_nsec = ns % 1000000000;
  timerfd_settime(timer_.get(), 0, &when, nullptr);
}

void QueueWorker::ThreadMain() {
  uint64_t served_generation = 0;
  std::vector<pollfd> fds;
  while (true) {
    bool serve_now = false;
    size_t drained = 2;  // wake_ and timer_, then the kick fds
    uint64_t syncs = 0;  // the Sync calls this round's serve covers
    {
      std::lock_guard lock(mutex_);
      if (quit_) return;
      fds.assign({pollfd{wake_.get(), POLLIN, 0}, pollfd{timer_.get(), POLLIN, 0}});
      if (active_) {
        for (int fd : kick_fds_) fds.push_back(pollfd{fd, POLLIN, 0});
        drained = fds.size();
        for (int fd : data_fds_) {
          if (std::find(muted_.begin(), muted_.end(), fd) == muted_.end()) {
            fds.push_back(pollfd{fd, POLLIN, 0});
          }
        }
        // A new activation serves once: requests may predate the kick fds.
        serve_now = served_generation != generation_;
        served_generation = generation_;
      }
    }
    if (!serve_now && poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) {
      SPDLOG_ERROR("{}: poll: {}", thread_name_, strerror(errno));
      return;
    }
    // Drain the eventfds and timer that fired (serve reads the data fds);
    // any of them unmutes the data fds.
    uint64_t count;
    for (size_t i = 0; i < drained; ++i) {
      if (fds[i].revents & POLLIN) {
        (void)!read(fds[i].fd, &count, sizeof(count));
        muted_.clear();
      }
    }
    // A Poke (wake_) or the timer also serves: "look at the queues again".
    const bool kicked = serve_now || std::any_of(fds.begin(), fds.end(),
                                                 [](const pollfd& fd) { return fd.revents != 0; });
    std::function<void()> serve;
    {
      std::lock_guard lock(mutex_);
      if (quit_) return;
      if (!active_ || !kicked) continue;
      serving_ = true;
      syncs = sync_requested_;  // a serve that starts now covers them
      serve = serve_;
    }
    serve();
    {
      std::lock_guard lock(mutex_);
      serving_ = false;
      sync_done_ = std::max(sync_done_, syncs);
    }
    changed_.notify_all();
  }
}

}  // namespace ember
