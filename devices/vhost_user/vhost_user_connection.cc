#include "devices/vhost_user/vhost_user_connection.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/sys_error.h"
#include "devices/vhost_user/vhost_user_endpoint.h"

namespace ember {

using namespace vhost_user;

Result<VhostUserConnection> VhostUserConnection::Connect(const std::string& path,
                                                         const std::string& owner) {
  EMBER_ASSIGN_OR_RETURN(UniqueFd fd, ConnectToBackend(path, owner));
  return VhostUserConnection(std::move(fd), owner);
}

VhostUserConnection::VhostUserConnection(UniqueFd fd, std::string owner,
                                         std::chrono::milliseconds reply_timeout)
    : fd_(std::move(fd)), owner_(std::move(owner)), reply_timeout_(reply_timeout) {
  timeval timeout{static_cast<time_t>(reply_timeout.count() / 1000),
                  static_cast<suseconds_t>((reply_timeout.count() % 1000) * 1000)};
  setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
}

std::string VhostUserConnection::Where(Request request) const {
  return owner_ + ": vhost-user " + RequestName(request);
}

Status VhostUserConnection::Write(Request request, uint32_t flags, std::span<const uint8_t> payload,
                                  std::span<const int> fds) {
  Header header{request, kVersion | flags, static_cast<uint32_t>(payload.size())};
  iovec iov[2] = {{&header, sizeof(header)},
                  {const_cast<uint8_t*>(payload.data()), payload.size()}};
  msghdr message{};
  message.msg_iov = iov;
  message.msg_iovlen = payload.empty() ? 1 : 2;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  if (!fds.empty()) {
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&message);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  size_t total = sizeof(header) + payload.size();
  ssize_t sent;
  do {
    sent = sendmsg(fd_.get(), &message, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return ErrnoStatus(Where(request) + ": sending");
  if (static_cast<size_t>(sent) != total) return Status::Error(Where(request) + ": short send");
  return Status::Ok();
}

Status VhostUserConnection::ReadExactly(uint8_t* data, size_t length, const char* what) {
  size_t done = 0;
  while (done < length) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    iovec iov{data + done, length - done};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd_.get(), &message, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    // Replies never carry fds: close any, then refuse the message. The
    // control buffer is only filled when recvmsg succeeded; more fds than
    // fit (MSG_CTRUNC) were closed by the kernel and refuse it too.
    bool stray_fds = n >= 0 && (message.msg_flags & MSG_CTRUNC) != 0;
    for (cmsghdr* cmsg = n >= 0 ? CMSG_FIRSTHDR(&message) : nullptr; cmsg != nullptr;
         cmsg = CMSG_NXTHDR(&message, cmsg)) {
      if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
        size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int stray;
          std::memcpy(&stray, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
          close(stray);
        }
        stray_fds = true;
      }
    }
    if (stray_fds) return Status::Error(std::string(what) + " came with file descriptors");
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return Status::Error(std::string(what) + ": the backend did not answer within " +
                             std::to_string(reply_timeout_.count()) + " ms");
      }
      return ErrnoStatus(what);
    }
    if (n == 0) return Status::Error(std::string(what) + ": the backend closed the connection");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status VhostUserConnection::ReadReply(Request request, std::span<uint8_t> out) {
  std::string where = Where(request) + " reply";
  Header header{};
  EMBER_RETURN_IF_ERROR(
      ReadExactly(reinterpret_cast<uint8_t*>(&header), sizeof(header), where.c_str()));
  if ((header.flags & kVersionMask) != kVersion || !(header.flags & kFlagReply)) {
    return Status::Error(where + " has bad flags " + std::to_string(header.flags));
  }
  if (header.request != request) {
    return Status::Error(where + " answers request " + std::to_string(header.request));
  }
  if (header.size != out.size()) {
    return Status::Error(where + " has " + std::to_string(header.size) +
                         " payload bytes, expected " + std::to_string(out.size()));
  }
  return ReadExactly(out.data(), out.size(), where.c_str());
}

Status VhostUserConnection::Send(Request request, std::span<const uint8_t> payload,
                                 std::span<const int> fds) {
  EMBER_RETURN_IF_ERROR(Write(request, reply_ack_ ? kFlagNeedReply : 0, payload, fds));
  if (!reply_ack_) return Status::Ok();
  uint64_t ack = 0;
  EMBER_RETURN_IF_ERROR(ReadReply(request, {reinterpret_cast<uint8_t*>(&ack), sizeof(ack)}));
  if (ack != 0)
    return Status::Error(Where(request) + ": the backend refused it (" + std::to_string(ack) + ")");
  return Status::Ok();
}

Result<uint64_t> VhostUserConnection::GetU64(Request request) {
  EMBER_RETURN_IF_ERROR(Write(request, 0, {}, {}));
  uint64_t value = 0;
  EMBER_RETURN_IF_ERROR(ReadReply(request, {reinterpret_cast<uint8_t*>(&value), sizeof(value)}));
  return value;
}

Result<std::vector<uint8_t>> VhostUserConnection::GetConfig(uint32_t size) {
  // The request carries the header and `size` bytes (unused); the reply the
  // same header and the config space.
  std::vector<uint8_t> message(sizeof(ConfigHeader) + size, 0);
  const ConfigHeader header{0, size, 0};
  std::memcpy(message.data(), &header, sizeof(header));
  EMBER_RETURN_IF_ERROR(Write(kGetConfig, 0, message, {}));
  EMBER_RETURN_IF_ERROR(ReadReply(kGetConfig, message));
  ConfigHeader reply;
  std::memcpy(&reply, message.data(), sizeof(reply));
  if (reply.offset != 0 || reply.size != size) {
    return Status::Error(Where(kGetConfig) + " reply covers " + std::to_string(reply.size) +
                         " bytes at " + std::to_string(reply.offset) + ", asked for " +
                         std::to_string(size) + " at 0");
  }
  return std::vector<uint8_t>(message.begin() + sizeof(ConfigHeader), message.end());
}

Result<VringState> VhostUserConnection::GetVringBase(uint32_t index) {
  VringState state{index, 0};
  EMBER_RETURN_IF_ERROR(
      Write(kGetVringBase, 0, {reinterpret_cast<const uint8_t*>(&state), sizeof(state)}, {}));
  EMBER_RETURN_IF_ERROR(
      ReadReply(kGetVringBase, {reinterpret_cast<uint8_t*>(&state), sizeof(state)}));
  if (state.index != index) {
    return Status::Error(Where(kGetVringBase) + " reply names ring " + std::to_string(state.index) +
                         ", expected " + std::to_string(index));
  }
  return state;
}

}  // namespace ember
