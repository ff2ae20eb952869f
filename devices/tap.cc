#include "devices/tap.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <cstring>

#include "base/sys_error.h"

namespace ember {

Result<UniqueFd> OpenTap(const std::string& name) {
  const std::string field = "host_dev_name " + name;
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return Status::Error(field + ": must be 1 to " + std::to_string(IFNAMSIZ - 1) + " bytes");
  }
  // TUNSETIFF would create a missing TAP; Firecracker's users create it.
  if (if_nametoindex(name.c_str()) == 0) {
    return Status::Error(field +
                         ": no such network interface (create it first, e.g. `ip tuntap add " +
                         name + " mode tap`)");
  }
  UniqueFd fd(open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(field + ": opening /dev/net/tun");
  ifreq request{};
  std::memcpy(request.ifr_name, name.data(), name.size());
  request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(fd.get(), TUNSETIFF, &request) != 0) {
    switch (errno) {
      case EBUSY:
        return Status::Error(field +
                             ": busy (another process has it open, or it is a "
                             "multi-queue TAP)");
      case EPERM:
      case EACCES:
        return Status::Error(field +
                             ": not permitted (it belongs to another user; see `ip "
                             "tuntap add ... user`)");
      case EINVAL:
        return Status::Error(field + ": is not a TAP device");
      default:
        return ErrnoStatus(field + ": TUNSETIFF");
    }
  }
  int header = kTapVnetHeaderBytes;
  if (ioctl(fd.get(), TUNSETVNETHDRSZ, &header) != 0) {
    return ErrnoStatus(field + ": TUNSETVNETHDRSZ");
  }
  return fd;
}

Status SetTapOffloads(int fd, unsigned offloads, const std::string& name) {
  if (ioctl(fd, TUNSETOFFLOAD, offloads) != 0) {
    return ErrnoStatus("host_dev_name " + name + ": TUNSETOFFLOAD");
  }
  return Status::Ok();
}

}  // namespace ember
