// virtio-vsock (device type 19) emulated in ember with Firecracker's hybrid
// vsock on the host: the guest's AF_VSOCK streams become Unix stream
// sockets.
//   - Host-initiated: a client connects to `uds_path` and writes
//     "CONNECT <port>\n"; ember asks the guest (REQUEST) and, once it
//     accepts, answers "OK <host port>\n" and joins the two. A refusal
//     (RST) or no answer within kConnectTimeout closes the client's socket;
//     so does a first line that is not one of those (or longer than
//     kMaxConnectLine).
//   - Guest-initiated: a REQUEST to CID 2 port P connects to `uds_path`_P;
//     if nobody listens there the guest gets RST.
// Queues: receive 0, transmit 1, event 2 (unused until snapshots). All of
// it runs on the device's QueueWorker, which watches the Unix sockets through two epoll
// sets (readable, writable) beside the kicks.
//
// Bounded: at most kMaxConnections streams, each holding at most
// VsockConnection::kBufferBytes of the guest's data; host data is read
// only into the guest's buffers and only as far as its credit goes, so a
// guest that stops reading stops ember reading the socket. Hostile packets
// (wrong CIDs, unknown ops, lengths beyond the buffers or the credit) are
// dropped or answered with RST and counted; a broken ring asks for a reset.
//
// Thread-safety: the transport calls in under its lock from vCPU threads;
// streams live on the worker.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "base/unique_fd.h"
#include "devices/virtio/active_queues.h"
#include "devices/virtio/queue_worker.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/virtqueue.h"
#include "devices/virtio/vsock_connection.h"

namespace ember {

// The port of a host client's first line (without its newline), read as
// Firecracker reads it: "CONNECT <port>", the word in any case, extra
// whitespace and trailing words ignored; nullopt for anything else.
std::optional<uint32_t> ParseVsockConnectLine(std::string_view line);

struct VsockOptions {
  uint64_t guest_cid = 3;
  std::string uds_path;
  uint16_t queue_size = 256;
};

class VsockDevice : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceType = 19;
  static constexpr size_t kMaxConnections = 1024;
  static constexpr size_t kMaxHandshakes = 128;  // clients yet to send their CONNECT line
  static constexpr size_t kMaxPendingResets = 1024;
  static constexpr size_t kMaxConnectLine = 32;  // "CONNECT 4294967295\n" is 19
  static constexpr size_t kMaxPacketPayload = 64 * 1024;
  static constexpr std::chrono::milliseconds kConnectTimeout{2000};
  static constexpr std::chrono::milliseconds kShutdownTimeout{2000};
  // A client that has not finished its CONNECT line by then is closed (so
  // idle clients cannot hold every handshake slot).
  static constexpr std::chrono::milliseconds kConnectLineTimeout{10000};
  static constexpr uint32_t kFirstHostPort = 1u << 30;

  // Listens on options.uds_path (which must not exist: the caller removed
  // a stale socket) and starts the worker thread.
  static Result<std::shared_ptr<VsockDevice>> Create(VsockOptions options);
  // Removes the socket at uds_path.
  ~VsockDevice() override;

  uint32_t device_type() const override { return kDeviceType; }
  uint16_t queue_count() const override { return 3; }
  uint16_t max_queue_size() const override { return options_.queue_size; }
  uint64_t device_features() const override;
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  void WriteConfig(uint64_t, std::span<const uint8_t>) override {}
  Status Activate(const Activation& activation) override;
  void Reset() override;

  // Returns once every kick and socket event before the call has been looked at.
  void Sync() { worker_.Sync(); }
  size_t connection_count() const { return connections_.size(); }

 private:
  using Key = std::pair<uint32_t, uint32_t>;  // (host port, guest port)

  VsockDevice(VsockOptions options, UniqueFd listener, UniqueFd readable, UniqueFd writable)
      : options_(std::move(options)),
        listener_(std::move(listener)),
        readable_(std::move(readable)),
        writable_(std::move(writable)),
        queues_("vsock"),
        worker_("vsock device", ThreadKind::kVsock) {}

  void Serve();
  // Each returns whether it returned chains to the driver.
  bool Transmit();
  bool Receive();
  void PollHost();
  void AcceptClients();
  void ReadConnectLine(int fd);
  void ExpireDeadlines();
  void ArmTimer();

  // A packet from the driver, checked for its length.
  void OnGuestPacket(const vsock::PacketHeader& header, std::span<const iovec> payload);
  void ConnectToHost(const vsock::PacketHeader& header);
  // Writes the next packet for `connection` into `chain`; 0 when it has
  // nothing to send.
  uint32_t WritePacket(VsockConnection& connection, const DescriptorChain& chain);

  VsockConnection* Find(const Key& key);
  VsockConnection& Add(std::unique_ptr<VsockConnection> connection);
  // Drops a stream: its socket closes (the host sees EOF); with `reset` the
  // guest gets RST.
  void Remove(const Key& key, bool reset);
  void QueueReset(uint32_t host_port, uint32_t guest_port);
  void QueueForReceive(VsockConnection& connection);
  // The epoll events a stream's socket is watched for, from its state.
  void Watch(VsockConnection& connection);
  uint32_t AllocateHostPort();
  VirtQueue& rx() { return queues_[0]; }
  VirtQueue& tx() { return queues_[1]; }

  const VsockOptions options_;
  const UniqueFd listener_;
  const UniqueFd readable_;  // epoll: listener, clients, streams with room to read
  const UniqueFd writable_;  // epoll: streams with data for a full socket

  // Set by Activate, cleared by Reset; used by the worker in between.
  ActiveQueues queues_;  // receive, transmit (the event queue is not served)

  // Worker only (and Reset, once the worker has stopped).
  std::map<Key, std::unique_ptr<VsockConnection>> connections_;
  std::unordered_map<int, Key> by_fd_;
  // Accepted, no CONNECT line yet: what came of it so far, and until when.
  struct Client {
    UniqueFd socket;
    std::string line;
    std::chrono::steady_clock::time_point deadline;
  };
  std::unordered_map<int, Client> clients_;
  std::map<uint32_t, int> host_ports_;  // the host ports streams use, and how many
  uint32_t next_host_port_ = kFirstHostPort;
  std::set<Key> timed_;            // streams with a deadline (connecting, closing)
  std::deque<Key> receive_round_;  // streams with something for the guest
  std::deque<Key> resets_;         // RSTs owed for streams that are gone

  QueueWorker worker_;  // last: stops before the rest goes
};

}  // namespace ember
