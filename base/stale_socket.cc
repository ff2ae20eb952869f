#include "base/stale_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "base/sys_error.h"
#include "base/unique_fd.h"

namespace ember {

Status RemoveStaleSocket(const std::string& path, const std::string& what) {
  struct stat info {};
  if (lstat(path.c_str(), &info) != 0) return Status::Ok();  // nothing there
  if (!S_ISSOCK(info.st_mode)) {
    return Status::Error(what + " " + path + " exists and is not a socket: refusing to replace it");
  }
  sockaddr_un address{};
  if (path.size() >= sizeof(address.sun_path)) {
    return Status::Error(what + " " + path + ": the path is too long for a Unix socket");
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (connect(probe.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    return Status::Error(what + " " + path + " is in use by another process");
  }
  if (unlink(path.c_str()) != 0) return ErrnoStatus("removing the stale " + what + " " + path);
  return Status::Ok();
}

}  // namespace ember
