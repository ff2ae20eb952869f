#include "devices/vhost_user/vhost_user_endpoint.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

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

}  // namespace

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
  return fd;
}

}  // namespace ember
