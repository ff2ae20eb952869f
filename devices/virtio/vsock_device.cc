#include "devices/virtio/vsock_device.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "base/metrics.h"
#include "base/sys_error.h"

namespace ember {
namespace {

constexpr uint16_t kRxQueue = 0;
constexpr uint16_t kTxQueue = 1;
constexpr int kEventsPerPoll = 64;

using vsock::Op;
using vsock::PacketHeader;

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return Status::Error(path + ": not a Unix socket path of 1 to " +
                         std::to_string(sizeof(address.sun_path) - 1) + " bytes");
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

// Copies `bytes` into the chain's buffers from byte `offset` on.
void WriteToChain(const DescriptorChain& chain, size_t offset, const void* bytes, size_t length) {
  const auto* from = static_cast<const uint8_t*>(bytes);
  for (const Descriptor& d : chain.descriptors) {
    if (length == 0) return;
    if (offset >= d.length) {
      offset -= d.length;
      continue;
    }
    const size_t n = std::min<size_t>(d.length - offset, length);
    std::memcpy(d.host + offset, from, n);
    from += n;
    length -= n;
    offset = 0;
  }
}

// The chain's buffers from byte `offset` on, at most `limit` bytes.
std::vector<iovec> ChainSlices(const DescriptorChain& chain, size_t offset, size_t limit) {
  std::vector<iovec> slices;
  for (const Descriptor& d : chain.descriptors) {
    if (limit == 0) break;
    if (offset >= d.length) {
      offset -= d.length;
      continue;
    }
    const size_t n = std::min<size_t>(d.length - offset, limit);
    slices.push_back({d.host + offset, n});
    limit -= n;
    offset = 0;
  }
  return slices;
}

}  // namespace

Result<std::shared_ptr<VsockDevice>> VsockDevice::Create(VsockOptions options) {
  EMBER_ASSIGN_OR_RETURN(sockaddr_un address, UnixAddress(options.uds_path));
  UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listener.valid()) return ErrnoStatus("vsock: socket");
  if (bind(listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return ErrnoStatus("vsock: uds_path " + options.uds_path);
  }
  if (listen(listener.get(), 128) != 0) {
    Status failed = ErrnoStatus("vsock: listen on " + options.uds_path);
    unlink(options.uds_path.c_str());
    return failed;
  }
  UniqueFd readable(epoll_create1(EPOLL_CLOEXEC));
  UniqueFd writable(epoll_create1(EPOLL_CLOEXEC));
  if (!readable.valid() || !writable.valid()) {
    unlink(options.uds_path.c_str());
    return ErrnoStatus("vsock: epoll_create1");
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener.get();
  epoll_ctl(readable.get(), EPOLL_CTL_ADD, listener.get(), &event);
  std::shared_ptr<VsockDevice> device(new VsockDevice(std::move(options), std::move(listener),
                                                      std::move(readable), std::move(writable)));
  EMBER_RETURN_IF_ERROR(device->worker_.Launch());
  return device;
}

VsockDevice::~VsockDevice() {
  worker_.Stop();
  unlink(options_.uds_path.c_str());
}

uint64_t VsockDevice::device_features() const {
  return kVirtioFeatureVersion1 | kVirtioFeatureRingEventIdx;
}

void VsockDevice::ReadConfig(uint64_t offset, std::span<uint8_t> data) {
  const uint64_t cid = options_.guest_cid;  // le64 guest_cid
  const auto* bytes = reinterpret_cast<const uint8_t*>(&cid);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < sizeof(cid) ? bytes[offset + i] : 0;
  }
}

Status VsockDevice::Activate(const Activation& activation) {
  EMBER_RETURN_IF_ERROR(queues_.Activate(activation, {kRxQueue, kTxQueue}));
  // The event queue (2) is not served: ember sends no events yet.
  worker_.Start({activation.kick_fds[kRxQueue], activation.kick_fds[kTxQueue]}, [this] { Serve(); },
                {readable_.get(), writable_.get()});
  return Status::Ok();
}

void VsockDevice::Reset() {
  worker_.Stop();
  queues_.Clear();
  // The driver's streams are gone: their host sockets close.
  Metrics& metrics = GlobalMetrics();
  metrics.vsock_conns_removed.Add(connections_.size());
  connections_.clear();
  by_fd_.clear();
  clients_.clear();
  host_ports_.clear();
  timed_.clear();
  receive_round_.clear();
  resets_.clear();
}

void VsockDevice::Serve() {
  if (!queues_.active()) return;
  if (queues_.broken()) {
    // Nothing is served until the driver resets: the sockets must not wake
    // the worker meanwhile.
    worker_.MuteUntilKick(readable_.get());
    worker_.MuteUntilKick(writable_.get());
    return;
  }
  const bool tx_done = Transmit();
  PollHost();
  ExpireDeadlines();
  const bool rx_done = !queues_.broken() && Receive();
  queues_.InterruptIfWanted({{kRxQueue, rx_done}, {kTxQueue, tx_done}});
  ArmTimer();
}

// ---- streams ---------------------------------------------------------------

VsockConnection* VsockDevice::Find(const Key& key) {
  auto found = connections_.find(key);
  return found == connections_.end() ? nullptr : found->second.get();
}

VsockConnection& VsockDevice::Add(std::unique_ptr<VsockConnection> connection) {
  const Key key{connection->local_port(), connection->peer_port()};
  VsockConnection& added = *connection;
  by_fd_[added.fd()] = key;
  ++host_ports_[key.first];
  connections_[key] = std::move(connection);
  GlobalMetrics().vsock_conns_added.Add();
  Watch(added);
  return added;
}

void VsockDevice::Remove(const Key& key, bool reset) {
  auto found = connections_.find(key);
  if (found == connections_.end()) return;
  by_fd_.erase(found->second->fd());
  timed_.erase(key);
  if (--host_ports_[key.first] <= 0) host_ports_.erase(key.first);
  connections_.erase(found);  // closing the socket takes it out of both epoll sets
  if (reset) {
    GlobalMetrics().vsock_conns_killed.Add();
    QueueReset(key.first, key.second);
  } else {
    GlobalMetrics().vsock_conns_removed.Add();
  }
}

void VsockDevice::QueueReset(uint32_t host_port, uint32_t guest_port) {
  if (resets_.size() >= kMaxPendingResets) {
    GlobalMetrics().vsock_rst_dropped.Add();  // a flood: the guest times out instead
    return;
  }
  resets_.push_back({host_port, guest_port});
}

void VsockDevice::QueueForReceive(VsockConnection& connection) {
  if (connection.queued_for_rx) return;
  connection.queued_for_rx = true;
  receive_round_.push_back({connection.local_port(), connection.peer_port()});
}

void VsockDevice::Watch(VsockConnection& connection) {
  const bool established = connection.state() == VsockConnection::State::kEstablished;
  // Read only what the guest has room for: no credit, no reading.
  const bool readable = established && !connection.host_eof && !connection.guest_shut_rcv &&
                        connection.PeerCredit() > 0;
  const bool writable = connection.has_buffered();
  auto update = [&](int epoll, bool want, bool& watched, uint32_t events) {
    if (want == watched) return;
    epoll_event event{};
    event.events = events;
    event.data.fd = connection.fd();
    epoll_ctl(epoll, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, connection.fd(), &event);
    watched = want;
  };
  update(readable_.get(), readable, connection.watched_readable, EPOLLIN);
  update(writable_.get(), writable, connection.watched_writable, EPOLLOUT);
}

uint32_t VsockDevice::AllocateHostPort() {
  // Not one a stream uses (guest-initiated streams may target ports >= 2^30
  // too): at most kMaxConnections are, so this ends.
  while (host_ports_.count(next_host_port_) != 0 || next_host_port_ < kFirstHostPort) {
    ++next_host_port_;
  }
  return next_host_port_++;
}

// ---- the host's side ---------------------------------------------------------

void VsockDevice::PollHost() {
  epoll_event events[kEventsPerPoll];
  int n = epoll_wait(readable_.get(), events, kEventsPerPoll, 0);
  for (int i = 0; i < n; ++i) {
    const int fd = events[i].data.fd;
    if (fd == listener_.get()) {
      AcceptClients();
    } else if (clients_.count(fd) != 0) {
      ReadConnectLine(fd);
    } else if (auto stream = by_fd_.find(fd); stream != by_fd_.end()) {
      VsockConnection& connection = *connections_.at(stream->second);
      connection.host_readable = true;
      QueueForReceive(connection);
    }
  }
  n = epoll_wait(writable_.get(), events, kEventsPerPoll, 0);
  for (int i = 0; i < n; ++i) {
    auto stream = by_fd_.find(events[i].data.fd);
    if (stream == by_fd_.end()) continue;
    const Key key = stream->second;
    VsockConnection& connection = *connections_.at(key);
    if (!connection.FlushToHost()) {
      GlobalMetrics().vsock_tx_write_fails.Add();
      Remove(key, /*reset=*/true);
      continue;
    }
    if (!connection.has_buffered() && connection.guest_shut_send) {
      if (connection.guest_shut_rcv) {
        Remove(key, /*reset=*/true);  // the guest closed; its last bytes are out
        continue;
      }
      shutdown(connection.fd(), SHUT_WR);
    }
    if (connection.CreditUpdateDue()) {
      connection.pending_credit_update = true;
      QueueForReceive(connection);
    }
    Watch(connection);
  }
}

void VsockDevice::AcceptClients() {
  while (true) {
    UniqueFd client(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!client.valid()) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
        // The client stays in the backlog and the listener readable: look
        // again later rather than spin on it.
        queues_.Warn(std::string("accepting a client: ") + strerror(errno));
        worker_.MuteUntilKick(readable_.get());
        worker_.ServeAgainAfter(std::chrono::milliseconds(100));
      }
      return;
    }
    if (clients_.size() >= kMaxHandshakes) {
      queues_.Warn("too many clients without a CONNECT line; closing a new one");
      continue;
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = client.get();
    epoll_ctl(readable_.get(), EPOLL_CTL_ADD, client.get(), &event);
    const int fd = client.get();
    clients_.emplace(
        fd, Client{std::move(client), "", std::chrono::steady_clock::now() + kConnectLineTimeout});
  }
}

std::optional<uint32_t> ParseVsockConnectLine(std::string_view line) {
  // As Firecracker reads it: words split by whitespace, the first "connect"
  // in any case, the second a decimal port; more words (or a '\r') are ignored.
  auto next_word = [&line]() {
    const size_t start = line.find_first_not_of(" \t\r\f\v");
    if (start == std::string_view::npos) return std::string_view();
    const size_t end = line.find_first_of(" \t\r\f\v", start);
    std::string_view word = line.substr(start, end == std::string_view::npos ? end : end - start);
    line.remove_prefix(end == std::string_view::npos ? line.size() : end);
    return word;
  };
  std::string_view command = next_word();
  constexpr std::string_view kConnect = "connect";
  if (command.size() != kConnect.size()) return std::nullopt;
  for (size_t i = 0; i < kConnect.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(command[i])) != kConnect[i]) return std::nullopt;
  }
  std::string_view digits = next_word();
  if (digits.empty() || digits.size() > 10) return std::nullopt;
  uint64_t port = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<uint64_t>(c - '0');
  }
  if (port > 0xffffffffu) return std::nullopt;
  return static_cast<uint32_t>(port);
}

void VsockDevice::ReadConnectLine(int fd) {
  Client& client = clients_.at(fd);
  // A byte at a time, as Firecracker reads it: bytes after the newline are
  // stream data and stay in the socket; what was read is consumed, so a
  // line that stops half-way leaves nothing readable to spin on.
  bool done = false;
  bool closed = false;
  while (!done && client.line.size() < kMaxConnectLine) {
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;  // more to come
    if (n <= 0) {
      closed = true;
      break;
    }
    if (byte == '\n') {
      done = true;
    } else {
      client.line += byte;
    }
  }
  auto taken = clients_.extract(fd);
  epoll_ctl(readable_.get(), EPOLL_CTL_DEL, fd, nullptr);  // watched again as a stream
  std::optional<uint32_t> port;
  if (done) port = ParseVsockConnectLine(taken.mapped().line);
  if (!port) {
    if (!closed) queues_.Warn("a client's first line is not \"CONNECT <port>\\n\"; closed");
    return;  // the socket closes
  }
  if (connections_.size() >= kMaxConnections) {
    queues_.Warn("too many streams; refusing a client");
    GlobalMetrics().vsock_conn_refused.Add();
    return;
  }
  auto connection =
      std::make_unique<VsockConnection>(std::move(taken.mapped().socket), AllocateHostPort(), *port,
                                        VsockConnection::State::kConnecting);
  connection->pending_request = true;
  connection->deadline = std::chrono::steady_clock::now() + kConnectTimeout;
  VsockConnection& added = Add(std::move(connection));
  timed_.insert({added.local_port(), added.peer_port()});
  QueueForReceive(added);
}

void VsockDevice::ExpireDeadlines() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (it->second.deadline <= now) {
      epoll_ctl(readable_.get(), EPOLL_CTL_DEL, it->first, nullptr);
      it = clients_.erase(it);  // no CONNECT line in time: closed
    } else {
      ++it;
    }
  }
  std::vector<Key> expired;
  for (const Key& key : timed_) {
    if (connections_.at(key)->deadline <= now) expired.push_back(key);
  }
  // No answer to REQUEST, or no RST after SHUTDOWN: RST, and the host's
  // socket closes.
  for (const Key& key : expired) Remove(key, /*reset=*/true);
}

void VsockDevice::ArmTimer() {
  std::optional<std::chrono::steady_clock::time_point> first;
  for (const auto& [fd, client] : clients_) {
    if (!first || client.deadline < *first) first = client.deadline;
  }
  for (const Key& key : timed_) {
    const auto deadline = connections_.at(key)->deadline;
    if (!first || deadline < *first) first = deadline;
  }
  if (first) worker_.ServeAgainAfter(*first - std::chrono::steady_clock::now());
}

void VsockDevice::ConnectToHost(const PacketHeader& header) {
  Metrics& metrics = GlobalMetrics();
  const std::string path = options_.uds_path + "_" + std::to_string(header.dst_port);
  Result<sockaddr_un> address = UnixAddress(path);
  UniqueFd fd;
  if (address.ok() && connections_.size() < kMaxConnections) {
    fd.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd.valid() &&
        connect(fd.get(), reinterpret_cast<const sockaddr*>(&*address), sizeof(*address)) != 0) {
      fd.reset();  // nobody listens (or its backlog is full): refused
    }
  }
  if (!fd.valid()) {
    metrics.vsock_conn_refused.Add();
    QueueReset(header.dst_port, header.src_port);
    return;
  }
  auto connection = std::make_unique<VsockConnection>(
      std::move(fd), header.dst_port, header.src_port, VsockConnection::State::kEstablished);
  connection->UpdatePeerCredit(header.buf_alloc, header.fwd_cnt);
  connection->pending_response = true;
  QueueForReceive(Add(std::move(connection)));
}

// ---- the guest's packets -----------------------------------------------------

bool VsockDevice::Transmit() {
  Metrics& metrics = GlobalMetrics();
  bool completed = false;
  DescriptorChain chain;
  std::string problem;
  while (!queues_.broken()) {
    VirtQueue::Pop popped = tx().Next(chain, problem, ChainBuffers::kDriverWritten);
    if (popped == VirtQueue::Pop::kEmpty) {
      if (tx().ArmNotification()) continue;
      break;
    }
    if (popped == VirtQueue::Pop::kBrokenRing) {
      queues_.Broken("transmit queue: " + problem);
      break;
    }
    const size_t length = chain.length;
    PacketHeader header{};
    if (popped == VirtQueue::Pop::kChain && length < vsock::kHeaderBytes) {
      problem = "a packet of " + std::to_string(length) + " bytes, shorter than its header";
      popped = VirtQueue::Pop::kBadChain;
    }
    if (popped == VirtQueue::Pop::kChain) {
      auto* into = reinterpret_cast<uint8_t*>(&header);
      size_t copied = 0;
      for (const Descriptor& d : chain.descriptors) {
        const size_t n = std::min<size_t>(d.length, vsock::kHeaderBytes - copied);
        std::memcpy(into + copied, d.host, n);
        copied += n;
        if (copied == vsock::kHeaderBytes) break;
      }
      if (header.len > length - vsock::kHeaderBytes || header.len > kMaxPacketPayload) {
        problem = "a header that claims " + std::to_string(header.len) + " bytes in a " +
                  std::to_string(length) + "-byte packet";
        popped = VirtQueue::Pop::kBadChain;
      }
    }
    if (popped == VirtQueue::Pop::kChain) {
      metrics.vsock_tx_packets.Add();
      OnGuestPacket(header, ChainSlices(chain, vsock::kHeaderBytes, header.len));
    } else {
      queues_.Warn("transmit: dropped " + problem);
      metrics.vsock_tx_malformed_packets.Add();
    }
    tx().Complete(chain.head, 0);
    completed = true;
  }
  return completed;
}

void VsockDevice::OnGuestPacket(const PacketHeader& header, std::span<const iovec> payload) {
  Metrics& metrics = GlobalMetrics();
  const Op op = static_cast<Op>(header.op);
  // Only the guest's own address, only to the host: anything else is
  // dropped (answering would let a guest spoof others).
  if (header.src_cid != options_.guest_cid || header.dst_cid != vsock::kHostCid) {
    queues_.Warn("dropped a packet from CID " + std::to_string(header.src_cid) + " to CID " +
                 std::to_string(header.dst_cid));
    metrics.vsock_tx_malformed_packets.Add();
    return;
  }
  const Key key{header.dst_port, header.src_port};
  VsockConnection* connection = Find(key);
  if (header.type != vsock::kTypeStream) {
    metrics.vsock_tx_malformed_packets.Add();
    if (op != Op::kRst) {
      Remove(key, /*reset=*/false);
      QueueReset(header.dst_port, header.src_port);
    }
    return;
  }
  if (connection == nullptr) {
    if (op == Op::kRequest) {
      ConnectToHost(header);
    } else if (op != Op::kRst) {
      QueueReset(header.dst_port, header.src_port);  // no such stream
    }
    return;
  }
  connection->UpdatePeerCredit(header.buf_alloc, header.fwd_cnt);
  using State = VsockConnection::State;
  switch (op) {
    case Op::kResponse: {
      if (connection->state() != State::kConnecting) {
        Remove(key, /*reset=*/true);
        return;
      }
      // The client hears which host port its stream has, as in Firecracker.
      const std::string ok = "OK " + std::to_string(connection->local_port()) + "\n";
      if (send(connection->fd(), ok.data(), ok.size(), MSG_DONTWAIT | MSG_NOSIGNAL) !=
          static_cast<ssize_t>(ok.size())) {
        Remove(key, /*reset=*/true);
        return;
      }
      connection->set_state(State::kEstablished);
      timed_.erase(key);
      break;
    }
    case Op::kRw: {
      if (connection->state() != State::kEstablished || connection->guest_shut_send) {
        Remove(key, /*reset=*/true);
        return;
      }
      if (!connection->WithinCredit(header.len)) {
        queues_.Warn("a stream's guest sent " + std::to_string(header.len) +
                     " bytes beyond the credit it was given; reset");
        metrics.vsock_tx_malformed_packets.Add();
        Remove(key, /*reset=*/true);
        return;
      }
      metrics.vsock_tx_bytes.Add(header.len);
      if (!connection->SendToHost(payload)) {
        metrics.vsock_tx_write_fails.Add();
        Remove(key, /*reset=*/true);
        return;
      }
      if (connection->CreditUpdateDue()) {
        connection->pending_credit_update = true;
        QueueForReceive(*connection);
      }
      break;
    }
    case Op::kCreditUpdate:
      break;  // the credit is taken above
    case Op::kCreditRequest:
      connection->pending_credit_update = true;
      QueueForReceive(*connection);
      break;
    case Op::kShutdown: {
      if (connection->state() == State::kClosing ||
          (header.flags & vsock::kShutdownBoth) == vsock::kShutdownBoth) {
        // Both ways closed: RST ends the stream, as the spec asks of the
        // receiver, once the host has taken what the guest sent (or the
        // shutdown deadline passes).
        if (!connection->FlushToHost() || !connection->has_buffered()) {
          Remove(key, /*reset=*/true);
          return;
        }
        connection->guest_shut_send = true;
        connection->guest_shut_rcv = true;
        connection->set_state(State::kClosing);
        connection->deadline = std::chrono::steady_clock::now() + kShutdownTimeout;
        timed_.insert(key);
        break;
      }
      if (header.flags & vsock::kShutdownRcv) connection->guest_shut_rcv = true;
      if (header.flags & vsock::kShutdownSend) {
        connection->guest_shut_send = true;
        if (!connection->has_buffered()) shutdown(connection->fd(), SHUT_WR);
      }
      break;
    }
    case Op::kRst:
      Remove(key, /*reset=*/false);
      return;
    case Op::kRequest:  // for a stream that exists
    default:
      metrics.vsock_tx_malformed_packets.Add();
      Remove(key, /*reset=*/true);
      return;
  }
  // New credit may let a waiting stream read its socket again.
  if (connection->host_readable && connection->PeerCredit() > 0) QueueForReceive(*connection);
  Watch(*connection);
}

// ---- packets for the guest ---------------------------------------------------

bool VsockDevice::Receive() {
  Metrics& metrics = GlobalMetrics();
  bool completed = false;
  DescriptorChain chain;
  std::string problem;
  bool starved = false;
  while (!queues_.broken() && (!resets_.empty() || !receive_round_.empty())) {
    VirtQueue::Pop popped = rx().Next(chain, problem, ChainBuffers::kDeviceWritable);
    if (popped == VirtQueue::Pop::kEmpty) {
      if (rx().ArmNotification()) continue;
      starved = true;
      break;
    }
    if (popped == VirtQueue::Pop::kBrokenRing) {
      queues_.Broken("receive queue: " + problem);
      break;
    }
    // A buffer must hold a header and at least one byte of data.
    if (popped == VirtQueue::Pop::kBadChain || chain.length <= vsock::kHeaderBytes) {
      queues_.Warn("receive: dropped a buffer: " +
                   (popped == VirtQueue::Pop::kBadChain ? problem : "no longer than a header"));
      metrics.vsock_tx_malformed_packets.Add();
      rx().Complete(chain.head, 0);
      completed = true;
      continue;
    }
    uint32_t written = 0;
    if (!resets_.empty()) {
      const Key key = resets_.front();
      resets_.pop_front();
      PacketHeader header = VsockConnection::ResetHeader(options_.guest_cid, key.first, key.second);
      WriteToChain(chain, 0, &header, sizeof(header));
      written = sizeof(header);
    } else {
      const Key key = receive_round_.front();
      receive_round_.pop_front();
      VsockConnection* connection = Find(key);
      if (connection == nullptr) {
        rx().GoBack();
        continue;
      }
      connection->queued_for_rx = false;
      written = WritePacket(*connection, chain);
      connection = Find(key);  // a failed read may have removed it
      if (connection != nullptr) {
        const bool more = connection->pending_request || connection->pending_response ||
                          connection->pending_credit_update ||
                          (connection->host_readable && connection->PeerCredit() > 0 &&
                           connection->state() == VsockConnection::State::kEstablished &&
                           !connection->guest_shut_rcv && !connection->host_eof);
        if (more) QueueForReceive(*connection);  // to the back: streams take turns
        Watch(*connection);
      }
      if (written == 0) {
        rx().GoBack();
        continue;
      }
    }
    metrics.vsock_rx_packets.Add();
    rx().Complete(chain.head, written);
    completed = true;
  }
  // Backpressure: no buffers, so the sockets wait until the driver kicks.
  if (starved) worker_.MuteUntilKick(readable_.get());
  return completed;
}

uint32_t VsockDevice::WritePacket(VsockConnection& connection, const DescriptorChain& chain) {
  const uint64_t cid = options_.guest_cid;
  auto control = [&](Op op, uint32_t flags = 0) {
    PacketHeader header = connection.Header(cid, op, 0, flags);
    WriteToChain(chain, 0, &header, sizeof(header));
    return static_cast<uint32_t>(sizeof(header));
  };
  if (connection.pending_request) {
    connection.pending_request = false;
    return control(Op::kRequest);
  }
  if (connection.pending_response) {
    connection.pending_response = false;
    return control(Op::kResponse);
  }
  const uint32_t credit = connection.PeerCredit();
  if (connection.host_readable && credit > 0 &&
      connection.state() == VsockConnection::State::kEstablished && !connection.host_eof &&
      !connection.guest_shut_rcv) {
    size_t room = 0;
    for (const Descriptor& d : chain.descriptors) room += d.length;
    const size_t limit = std::min<size_t>({room - vsock::kHeaderBytes, credit, kMaxPacketPayload});
    std::vector<iovec> slices = ChainSlices(chain, vsock::kHeaderBytes, limit);
    ssize_t n = readv(connection.fd(), slices.data(), static_cast<int>(slices.size()));
    if (n > 0) {
      connection.pending_credit_update = false;  // this packet carries the credit
      PacketHeader header = connection.Header(cid, Op::kRw, static_cast<uint32_t>(n));
      WriteToChain(chain, 0, &header, sizeof(header));
      connection.SentToGuest(static_cast<uint32_t>(n));
      GlobalMetrics().vsock_rx_bytes.Add(static_cast<uint64_t>(n));
      return static_cast<uint32_t>(sizeof(header) + n);
    }
    if (n == 0) {
      // The host closed its end, or only its sending half: say which.
      connection.host_readable = false;
      connection.host_eof = true;
      pollfd hangup{connection.fd(), POLLOUT, 0};
      const bool both = poll(&hangup, 1, 0) == 1 && (hangup.revents & POLLHUP) != 0;
      if (both) {
        connection.set_state(VsockConnection::State::kClosing);
        connection.deadline = std::chrono::steady_clock::now() + kShutdownTimeout;
        timed_.insert({connection.local_port(), connection.peer_port()});
      }
      return control(Op::kShutdown, both ? vsock::kShutdownBoth : vsock::kShutdownSend);
    }
    if (errno == EAGAIN || errno == EINTR) {
      connection.host_readable = false;
    } else {
      GlobalMetrics().vsock_rx_read_fails.Add();
      Remove({connection.local_port(), connection.peer_port()}, /*reset=*/true);
      return 0;
    }
  }
  if (connection.pending_credit_update) {
    connection.pending_credit_update = false;
    return control(Op::kCreditUpdate);
  }
  return 0;
}

}  // namespace ember
