#include "api/request_collector.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "api/request_framing.h"
#include "base/log_limiter.h"
#include "base/sys_error.h"

namespace ember {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 4096;

void Drop(ClientConnection& connection) {
  if (connection.fd.valid()) ::shutdown(connection.fd.get(), SHUT_RDWR);
  connection.fd.reset();
}

// A request that cannot be served: a 400 with its reason, as every API
// error (best effort, never waiting on the client), then the connection
// closes.
void Refuse(ClientConnection& connection, const std::string& reason) {
  const std::string body = nlohmann::json{{"fault_message", reason}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string answer =
      "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  (void)!::send(connection.fd.get(), answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  Drop(connection);
}

}  // namespace

Result<std::unique_ptr<RequestCollector>> RequestCollector::Create(int listen_fd, Limits limits,
                                                                   Serve serve) {
  UniqueFd listening(listen_fd);
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus("creating the api wake pipe");
  return std::unique_ptr<RequestCollector>(new RequestCollector(
      listening.release(), UniqueFd(wake[0]), UniqueFd(wake[1]), limits, std::move(serve)));
}

RequestCollector::RequestCollector(int listen_fd, UniqueFd wake_read, UniqueFd wake_write,
                                   Limits limits, Serve serve)
    : listen_fd_(listen_fd),
      wake_read_(std::move(wake_read)),
      wake_write_(std::move(wake_write)),
      limits_(limits),
      serve_(std::move(serve)),
      pool_(std::make_unique<ConnectionPool>(limits.max_workers, limits.max_queued)) {}

RequestCollector::~RequestCollector() {
  Stop();
  pool_->shutdown();  // (Run has done so when it ran)
}

void RequestCollector::Stop() {
  stopping_ = true;
  const char byte = 0;
  (void)!::write(wake_write_.get(), &byte, 1);
}

void RequestCollector::Run() {
  std::vector<pollfd> polled;
  while (!stopping_) {
    Clock::time_point now = Clock::now();
    TakeReturned(now);
    // Expired: idle past the keep-alive time (closed), or a request not
    // complete within its deadline (refused).
    std::erase_if(parked_, [this, now](Parked& parked) {
      if (parked.deadline > now) return false;
      if (parked.connection.unread.empty()) {
        Drop(parked.connection);
      } else {
        Refuse(parked.connection, "the request did not arrive in full within " +
                                      std::to_string(limits_.request_time.count() / 1000) + " s");
      }
      return true;
    });

    polled.clear();
    polled.push_back({wake_read_.get(), POLLIN, 0});
    const size_t total = parked_.size() + with_workers_;
    const bool room = total < limits_.max_connections ||
                      std::any_of(parked_.begin(), parked_.end(),
                                  [](const Parked& p) { return p.connection.unread.empty(); });
    polled.push_back({room ? listen_fd_.get() : -1, POLLIN, 0});
    Clock::time_point next = now + std::chrono::seconds(1);
    for (const Parked& parked : parked_) {
      polled.push_back({parked.connection.fd.get(), POLLIN, 0});
      next = std::min(next, parked.deadline);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now);
    const int ready = ::poll(polled.data(), polled.size(),
                             static_cast<int>(std::max<int64_t>(0, wait.count()) + 1));
    if (ready < 0 && errno != EINTR) {
      SPDLOG_ERROR("api: waiting for clients: {}", std::strerror(errno));
      break;
    }
    if (ready <= 0) continue;
    now = Clock::now();
    if (polled[0].revents != 0) {
      char drain[64];
      while (::read(wake_read_.get(), drain, sizeof(drain)) > 0) {
      }
    }
    // Connections first (taken out of parked_, which Place refills), then
    // the listener, so a new client cannot push out one that just sent bytes.
    std::vector<Parked> quiet, received;
    quiet.reserve(parked_.size());
    for (size_t i = 0; i < parked_.size(); ++i) {
      if (polled[i + 2].revents == 0) {
        quiet.push_back(std::move(parked_[i]));
      } else if (Receive(parked_[i], now)) {
        received.push_back(std::move(parked_[i]));
      }
    }
    parked_ = std::move(quiet);
    for (Parked& parked : received) Place(std::move(parked));
    if (polled[1].revents != 0) Accept(now);
  }
  // Stopping: the workers finish what they serve, then every connection
  // closes.
  pool_->shutdown();
  TakeReturned(Clock::now());
  for (Parked& parked : parked_) Drop(parked.connection);
  parked_.clear();
}

void RequestCollector::Accept(Clock::time_point now) {
  UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd.valid()) return;  // the client left already, or no fds: it retries
  if (parked_.size() + with_workers_ >= limits_.max_connections && !EvictOldestIdle()) {
    return;  // (raced with a request arriving on the idle one)
  }
  Parked parked{ClientConnection{std::move(fd)}, now + limits_.idle_time, now};
  parked_.push_back(std::move(parked));
}

bool RequestCollector::EvictOldestIdle() {
  auto oldest = parked_.end();
  for (auto it = parked_.begin(); it != parked_.end(); ++it) {
    if (it->connection.unread.empty() && (oldest == parked_.end() || it->since < oldest->since)) {
      oldest = it;
    }
  }
  if (oldest == parked_.end()) return false;
  Drop(oldest->connection);
  parked_.erase(oldest);
  return true;
}

bool RequestCollector::Receive(Parked& parked, Clock::time_point now) {
  ClientConnection& connection = parked.connection;
  const bool was_idle = connection.unread.empty();
  const size_t had = connection.unread.size();
  connection.unread.resize(had + kReadChunk);
  ssize_t n;
  do {
    n = ::recv(connection.fd.get(), connection.unread.data() + had, kReadChunk, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  connection.unread.resize(had + static_cast<size_t>(std::max<ssize_t>(n, 0)));
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    Drop(connection);
    return false;
  }
  if (n == 0) {
    connection.peer_closed = true;
    if (connection.unread.empty()) {
      Drop(connection);
      return false;
    }
    return true;  // httplib answers what there is
  }
  if (was_idle) parked.deadline = now + limits_.request_time;
  if (connection.unread.size() >= limits_.request_bytes &&
      BytesToServe(connection.unread, limits_.max_body) == 0) {
    static LogLimiter limit;  // a client can send these at will
    EMBER_LOG_LIMITED(limit, SPDLOG_WARN,
                      "api: a request longer than {} bytes was cut off with its connection",
                      limits_.request_bytes);
    Refuse(connection, "the request exceeds the " + std::to_string(limits_.request_bytes) +
                           "-byte limit of a request line, headers and body");
    return false;
  }
  return true;
}

void RequestCollector::Place(Parked parked) {
  ClientConnection& connection = parked.connection;
  if (connection.peer_closed || BytesToServe(connection.unread, limits_.max_body) > 0) {
    if (connection.peer_closed && connection.unread.empty()) {
      Drop(connection);
      return;
    }
    Dispatch(std::move(connection));
    return;
  }
  parked_.push_back(std::move(parked));
}

void RequestCollector::Dispatch(ClientConnection connection) {
  ++with_workers_;
  // std::function wants a copyable job.
  auto held = std::make_shared<ClientConnection>(std::move(connection));
  pool_->enqueue([this, held] {
    const size_t before = held->unread.size();
    bool keep = false;
    try {
      keep = serve_(*held);
    } catch (const std::exception& error) {
      SPDLOG_ERROR("api: serving a connection: {}", error.what());
    }
    // A client that has closed gets answers while its bytes last, and no
    // second look at bytes httplib would not take.
    if (held->peer_closed && held->unread.size() >= before) keep = false;
    Return(std::move(*held), keep);
  });
}

void RequestCollector::Return(ClientConnection connection, bool keep) {
  {
    std::lock_guard lock(mutex_);
    returned_.emplace_back(std::move(connection), keep);
  }
  const char byte = 0;
  (void)!::write(wake_write_.get(), &byte, 1);
}

void RequestCollector::TakeReturned(Clock::time_point now) {
  std::vector<std::pair<ClientConnection, bool>> returned;
  {
    std::lock_guard lock(mutex_);
    returned.swap(returned_);
  }
  for (auto& [connection, keep] : returned) {
    --with_workers_;
    if (!keep || stopping_) {
      Drop(connection);
      continue;
    }
    const bool idle = connection.unread.empty();
    Place(Parked{std::move(connection), now + (idle ? limits_.idle_time : limits_.request_time),
                 now});
  }
}

}  // namespace ember
