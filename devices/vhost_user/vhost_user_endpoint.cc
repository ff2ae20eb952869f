#include "devices/vhost_user/vhost_user_endpoint.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "base/stale_socket.h"
#include "base/sys_error.h"

namespace ember {
namespace {

Result<sockaddr_un> Address(const std::string& path, const std::string& owner) {
  sockaddr_un address{};
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return Status::Error(owner + ": socket path must be 1 to " +
                         std::to_string(sizeof(address.sun_path) - 1) + " bytes long");
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

std::atomic<int64_t> g_allowed_uid{-1};

}  // namespace

// The peer must be root, ember's user or the allowed one: a local user who
// binds a restarting backend's path first must not get guest memory.
Status CheckBackendPeer(int fd, const std::string& path, const std::string& owner) {
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) {
    return ErrnoStatus(owner + ": asking who the vhost-user backend at " + path + " is");
  }
  const int64_t allowed = g_allowed_uid.load();
  if (peer.uid == 0 || peer.uid == geteuid() ||
      (allowed >= 0 && peer.uid == static_cast<uid_t>(allowed))) {
    return Status::Ok();
  }
  return Status::Error(owner + ": the vhost-user backend at " + path + " runs as uid " +
                       std::to_string(peer.uid) + " (pid " + std::to_string(peer.pid) +
                       "), which may not receive guest memory: only root, ember's uid " +
                       std::to_string(geteuid()) + " or --vhost-user-peer-uid may");
}

void AllowBackendUid(uid_t uid) { g_allowed_uid = uid; }

Result<UniqueFd> ConnectToBackend(const std::string& path, const std::string& owner) {
  EMBER_ASSIGN_OR_RETURN(sockaddr_un address, Address(path, owner));
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return ErrnoStatus(owner + ": socket " + path);
  if (!S_ISSOCK(info.st_mode)) return Status::Error(owner + ": " + path + " is not a socket");
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(owner + ": creating a socket");
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return ErrnoStatus(owner + ": connecting to the vhost-user backend at " + path);
  }
  EMBER_RETURN_IF_ERROR(CheckBackendPeer(fd.get(), path, owner));
  return fd;
}

Result<UniqueFd> ListenForBackend(const std::string& path, const std::string& owner) {
  EMBER_ASSIGN_OR_RETURN(sockaddr_un address, Address(path, owner));
  EMBER_RETURN_IF_ERROR(RemoveStaleSocket(path, owner + ": socket"));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return ErrnoStatus(owner + ": creating a socket");
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return ErrnoStatus(owner + ": binding " + path);
  }
  // The backend that connects gets all guest memory: only ember's user may
  // connect. Before listen(), so nobody connects under the umask's mode.
  if (chmod(path.c_str(), 0600) != 0) return ErrnoStatus(owner + ": chmod 0600 " + path);
  if (listen(fd.get(), 1) != 0) return ErrnoStatus(owner + ": listening on " + path);
  return fd;
}

Result<UniqueFd> AcceptBackend(int listener, std::chrono::milliseconds timeout,
                               const std::string& path, const std::string& owner) {
  pollfd waiting{listener, POLLIN, 0};
  int ready;
  do {
    ready = poll(&waiting, 1, static_cast<int>(timeout.count()));
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return ErrnoStatus(owner + ": waiting for the backend on " + path);
  if (ready == 0) {
    return Status::Error(owner + ": no vhost-user backend connected to " + path + " within " +
                         std::to_string(timeout.count()) + " ms");
  }
  UniqueFd fd(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(owner + ": accepting the backend on " + path);
  EMBER_RETURN_IF_ERROR(CheckBackendPeer(fd.get(), path, owner));
  return fd;
}

}  // namespace ember
