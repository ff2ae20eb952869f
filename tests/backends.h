// Real vhost-user backends for end-to-end tests, run as child processes and
// stopped by PID: virtiofsd and qemu-storage-daemon (from qemu-system-common)
// and DPDK's testpmd.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ember::testing {

class BackendProcess {
 public:
  // Starts argv and waits (up to `timeout_ms`) for `socket` to appear
  // (not at all when `socket` is empty: the backend connects to ember).
  BackendProcess(std::vector<std::string> argv, std::string socket, std::string log_path,
                 int timeout_ms = 10000);
  ~BackendProcess();  // SIGKILL and reap, if still running
  BackendProcess(const BackendProcess&) = delete;
  BackendProcess& operator=(const BackendProcess&) = delete;

  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }
  const std::string& socket() const { return socket_; }
  std::string Log() const;
  void Kill(int signal);  // and reap
  // Waits for the process to exit by itself; its exit code, or -1.
  int WaitForExit(int timeout_ms);

 private:
  pid_t pid_ = -1;
  std::string socket_;
  std::string log_path_;
  bool ready_ = false;
  bool reaped_ = false;
};

// virtiofsd serving `directory` on `socket` (it exits when its frontend
// disconnects, so each VM needs its own).
std::vector<std::string> VirtiofsdCommand(const std::string& socket, const std::string& directory);

// qemu-storage-daemon exporting `image` (raw) as a writable vhost-user-blk
// device on `socket` (it listens; it has no client mode).
std::vector<std::string> StorageDaemonCommand(const std::string& socket, const std::string& image);

// DPDK testpmd with one vhost-user port per socket, in `forward_mode`
// (macswap: frames come back with MACs swapped; io: port 0 <-> port 1).
// With `client`, testpmd connects to sockets ember listens on. Its runtime
// files go under /var/run/dpdk/<prefix>, removed by RemoveDpdkRuntime.
std::vector<std::string> TestpmdCommand(const std::string& prefix,
                                        const std::vector<std::string>& sockets,
                                        const std::string& forward_mode, bool client = false);
void RemoveDpdkRuntime(const std::string& prefix);

}  // namespace ember::testing
