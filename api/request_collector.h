// The API server's front: one thread (the "fc_api" listener) holds every
// client connection between requests, reads each request's bytes as they
// come, without a thread per client, and hands a connection to a worker
// (ConnectionPool) only when its next request is complete
// (api/request_framing.h). A client that goes quiet half-way through a
// request, or keeps its connection open and idle, holds a slot here until
// its deadline, never a worker, so others are answered meanwhile.
//
// Bounds: at most `max_connections` at once (when full, the connection
// idle the longest makes room for a new one; with none idle, new clients
// wait in the listen backlog); a request's bytes within `request_bytes`
// and `request_time` from its first byte; an idle connection closes after
// `idle_time`.
//
// Thread-safety: Run on one thread; Stop from any.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/bounded_connection.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace ember {

struct ClientConnection {
  UniqueFd fd;
  std::string unread;  // received, not yet served
  size_t served = 0;   // requests answered on it
  bool peer_closed = false;
};

class RequestCollector {
 public:
  struct Limits {
    size_t max_connections;
    size_t request_bytes;
    size_t max_body;
    std::chrono::milliseconds request_time;
    std::chrono::milliseconds idle_time;
    size_t max_workers;
    size_t max_queued;
  };
  // Serves the complete request at the front of `unread` on a worker;
  // true when the connection stays open for more.
  using Serve = std::function<bool(ClientConnection&)>;

  // Takes `listen_fd`, a listening socket.
  static Result<std::unique_ptr<RequestCollector>> Create(int listen_fd, Limits limits,
                                                          Serve serve);
  ~RequestCollector();

  // Accepts, collects and dispatches until Stop; then waits for the
  // workers and closes every connection.
  void Run();
  void Stop();

 private:
  struct Parked {
    ClientConnection connection;
    std::chrono::steady_clock::time_point deadline;
    std::chrono::steady_clock::time_point since;  // when it last went idle
  };

  RequestCollector(int listen_fd, UniqueFd wake_read, UniqueFd wake_write, Limits limits,
                   Serve serve);
  void Accept(std::chrono::steady_clock::time_point now);
  // Reads what `parked` has sent; false when it is dropped.
  bool Receive(Parked& parked, std::chrono::steady_clock::time_point now);
  // Dispatches `parked` when its request is complete, else keeps it.
  void Place(Parked parked);
  void Dispatch(ClientConnection connection);
  void Return(ClientConnection connection, bool keep);
  void TakeReturned(std::chrono::steady_clock::time_point now);
  bool EvictOldestIdle();

  UniqueFd listen_fd_;
  UniqueFd wake_read_, wake_write_;
  const Limits limits_;
  const Serve serve_;
  std::atomic<bool> stopping_{false};
  std::vector<Parked> parked_;  // Run's thread only
  size_t with_workers_ = 0;     // Run's thread only: dispatched, not yet returned

  std::mutex mutex_;  // guards returned_
  std::vector<std::pair<ClientConnection, bool>> returned_;
  std::unique_ptr<ConnectionPool> pool_;
};

}  // namespace ember
