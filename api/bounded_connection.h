// What one API client may hold, for Debian's cpp-httplib 0.11.4, which
// bounds neither the header section nor the threads and queue behind it:
//  - BoundedStream: one request's bytes as httplib reads them on a worker,
//    starting with those the request collector (api/request_collector.h)
//    already received, with a byte budget and a deadline for what is still
//    to come (a body after 100 Continue) and for each write of the answer;
//  - ConnectionPool: a thread per request being served up to a cap, a
//    short bounded queue after that, and beyond it the collector's thread
//    serves the request itself, so the kernel's listen backlog pushes back.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
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
  // `received`: bytes of `fd` already read, handed to httplib first.
  BoundedStream(int fd, Limits limits, std::string received);

  // The next request's budget and deadline start now.
  void StartRequest();
  bool over_budget() const { return over_budget_; }
  // What the client sent past the requests read so far (pipelined ones).
  std::string TakeUnread();

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
  std::string buffer_;
  size_t begin_ = 0;  // buffer_[begin_..] is not yet handed to httplib
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
