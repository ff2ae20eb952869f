// What one API client may hold, for Debian's cpp-httplib 0.11.4, which
// bounds neither the header section nor the threads and queue behind it:
//  - BoundedStream: a connection's bytes as httplib reads them, with a
//    byte budget and a deadline per request (an endless header stream or a
//    client that trickles a byte at a time fails its request, bounded in
//    memory and time) and an idle wait that ends when the server stops;
//  - ConnectionPool: a thread per connection up to a cap, a short bounded
//    queue after that, and beyond it the accepting thread serves the
//    connection itself, so the kernel's listen backlog pushes back. Idle
//    keep-alive clients hold a thread each, never the others' turn.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ember {

class BoundedStream final : public httplib::Stream {
 public:
  struct Limits {
    size_t request_bytes;                    // request line, headers and body
    std::chrono::milliseconds request_time;  // from a request's first byte to its last
    std::chrono::milliseconds write_time;    // for each write of the answer
  };
  BoundedStream(int fd, Limits limits) : fd_(fd), limits_(limits) {}

  // Waits up to `idle` for the next request's first byte; false when none
  // came, the client closed, or `stopping()` turned true (checked often).
  bool WaitForRequest(std::chrono::milliseconds idle, const std::function<bool()>& stopping);
  // The next request's budget and deadline start now.
  void StartRequest();
  bool over_budget() const { return over_budget_; }

  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return fd_; }

 private:
  bool Fill(int timeout_ms);
  int MillisLeft() const;

  const int fd_;
  const Limits limits_;
  char buffer_[4096];
  size_t begin_ = 0, end_ = 0;  // buffered bytes not yet handed to httplib
  size_t budget_ = 0;
  bool over_budget_ = false;
  std::chrono::steady_clock::time_point deadline_;
};

class ConnectionPool final : public httplib::TaskQueue {
 public:
  ConnectionPool(size_t max_threads, size_t max_queued)
      : max_threads_(max_threads), max_queued_(max_queued) {}
  ~ConnectionPool() override;

  void enqueue(std::function<void()> job) override;
  void shutdown() override;

 private:
  void Work();

  const size_t max_threads_;
  const size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace ember
