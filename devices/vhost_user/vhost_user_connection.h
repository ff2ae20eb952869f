// One vhost-user socket connection: framed requests with file descriptors
// attached (SCM_RIGHTS), and replies that are checked (reply flag, version,
// request code, size, no stray fds) before they are trusted. A backend that
// stops answering fails the request after a timeout instead of hanging.
//
// Thread-safety: one thread at a time (the device's owner serialises use).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"
#include "devices/vhost_user/vhost_user_protocol.h"

namespace ember {

class VhostUserConnection {
 public:
  static constexpr std::chrono::seconds kReplyTimeout{5};

  // Connects to a backend listening on `path`. `owner` names the device in
  // errors ("fs device myfs").
  static Result<VhostUserConnection> Connect(const std::string& path, const std::string& owner);
  // Adopts an already connected socket.
  VhostUserConnection(UniqueFd fd, std::string owner,
                      std::chrono::milliseconds reply_timeout = kReplyTimeout);

  int fd() const { return fd_.get(); }
  const std::string& owner() const { return owner_; }
  // With REPLY_ACK negotiated, requests without a reply ask for an ack.
  void set_reply_ack(bool on) { reply_ack_ = on; }

  // Sends a request that has no reply of its own (waits for the ack when
  // REPLY_ACK is on).
  Status Send(vhost_user::Request request, std::span<const uint8_t> payload = {},
              std::span<const int> fds = {});
  template <typename T>
  Status SendValue(vhost_user::Request request, const T& value, std::span<const int> fds = {}) {
    return Send(request, {reinterpret_cast<const uint8_t*>(&value), sizeof(T)}, fds);
  }
  // Requests whose reply is a u64 (features, queue count, slot count).
  Result<uint64_t> GetU64(vhost_user::Request request);
  // GET_CONFIG: `size` bytes of the device's config space from offset 0.
  Result<std::vector<uint8_t>> GetConfig(uint32_t size);
  // GET_VRING_BASE: stops the ring and returns where the backend stopped.
  Result<vhost_user::VringState> GetVringBase(uint32_t index);

 private:
  Status Write(vhost_user::Request request, uint32_t flags, std::span<const uint8_t> payload,
               std::span<const int> fds);
  // Reads one reply to `request` whose payload is exactly `out.size()` bytes.
  Status ReadReply(vhost_user::Request request, std::span<uint8_t> out);
  Status ReadExactly(uint8_t* data, size_t length, const char* what);
  std::string Where(vhost_user::Request request) const;

  UniqueFd fd_;
  std::string owner_;
  std::chrono::milliseconds reply_timeout_;
  bool reply_ack_ = false;
};

}  // namespace ember
