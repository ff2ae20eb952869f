#include "api/bounded_connection.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ember {
namespace {

// poll() on one fd, retried on EINTR; the number of ready fds or -1.
int PollOne(int fd, short events, int timeout_ms) {
  pollfd waiting{fd, events, 0};
  int ready;
  do {
    ready = poll(&waiting, 1, timeout_ms);
  } while (ready < 0 && errno == EINTR);
  return ready;
}

}  // namespace

int BoundedStream::MillisLeft() const {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline_ - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

BoundedStream::BoundedStream(int fd, Limits limits, std::string received)
    : fd_(fd), limits_(limits), buffer_(std::move(received)) {}

bool BoundedStream::Fill(int timeout_ms) {
  if (begin_ < buffer_.size()) return true;
  if (PollOne(fd_, POLLIN, timeout_ms) <= 0) return false;
  buffer_.resize(4096);
  ssize_t n;
  do {
    n = recv(fd_, buffer_.data(), buffer_.size(), 0);
  } while (n < 0 && errno == EINTR);
  buffer_.resize(n > 0 ? static_cast<size_t>(n) : 0);
  begin_ = 0;
  return n > 0;
}

void BoundedStream::StartRequest() {
  budget_ = limits_.request_bytes;
  over_budget_ = false;
  deadline_ = std::chrono::steady_clock::now() + limits_.request_time;
}

std::string BoundedStream::TakeUnread() {
  std::string unread = buffer_.substr(begin_);
  buffer_.clear();
  begin_ = 0;
  return unread;
}

bool BoundedStream::is_readable() const {
  return begin_ < buffer_.size() || PollOne(fd_, POLLIN, MillisLeft()) > 0;
}

bool BoundedStream::is_writable() const {
  return PollOne(fd_, POLLOUT, static_cast<int>(limits_.write_time.count())) > 0;
}

ssize_t BoundedStream::read(char* ptr, size_t size) {
  if (budget_ == 0) {
    over_budget_ = true;
    return -1;
  }
  if (!Fill(MillisLeft())) return -1;
  const size_t n = std::min({size, buffer_.size() - begin_, budget_});
  std::memcpy(ptr, buffer_.data() + begin_, n);
  begin_ += n;
  budget_ -= n;
  return static_cast<ssize_t>(n);
}

ssize_t BoundedStream::write(const char* ptr, size_t size) {
  if (!is_writable()) return -1;
  ssize_t n;
  do {
    n = send(fd_, ptr, size, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n;
}

void BoundedStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  ip.clear();  // a Unix socket
  port = 0;
}

void BoundedStream::get_local_ip_and_port(std::string& ip, int& port) const {
  ip.clear();
  port = 0;
}

ConnectionPool::~ConnectionPool() { shutdown(); }

void ConnectionPool::enqueue(std::function<void()> job) {
  std::unique_lock lock(mutex_);
  if (!stopping_ && idle_ <= jobs_.size() && threads_.size() < max_threads_) {
    try {
      threads_.emplace_back([this] { Work(); });
      ++idle_;
    } catch (const std::system_error&) {
      // No thread now: the queue or the caller serves it.
    }
  }
  if (stopping_ || jobs_.size() >= max_queued_) {
    // Every thread is busy and the queue is full: this (accepting) thread
    // serves the connection, and accepts no more meanwhile.
    lock.unlock();
    job();
    return;
  }
  jobs_.push_back(std::move(job));
  wake_.notify_one();
}

void ConnectionPool::Work() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, nothing left
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    --idle_;
    lock.unlock();
    job();
    lock.lock();
    ++idle_;
  }
}

void ConnectionPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    threads.swap(threads_);
  }
  wake_.notify_all();
  for (std::thread& thread : threads) thread.join();
}

}  // namespace ember
