#include "tests/backends.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/test_util.h"

namespace ember::testing {

BackendProcess::BackendProcess(std::vector<std::string> argv, std::string socket,
                               std::string log_path, int timeout_ms)
    : socket_(std::move(socket)), log_path_(std::move(log_path)) {
  if (!socket_.empty()) unlink(socket_.c_str());
  pid_ = fork();
  if (pid_ == 0) {
    // Its own process group: virtiofsd forks a sandboxed child that must
    // die with it.
    setpgid(0, 0);
    int in = open("/dev/null", O_RDONLY);
    int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(in, 0);
    dup2(log, 1);
    dup2(log, 2);
    std::vector<char*> raw;
    for (std::string& arg : argv) raw.push_back(arg.data());
    raw.push_back(nullptr);
    execv(raw[0], raw.data());
    _exit(127);
  }
  if (socket_.empty()) {
    ready_ = true;
    return;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  struct stat info {};
  while (std::chrono::steady_clock::now() < deadline) {
    if (stat(socket_.c_str(), &info) == 0 && S_ISSOCK(info.st_mode)) {
      ready_ = true;
      return;
    }
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      reaped_ = true;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

BackendProcess::~BackendProcess() { Kill(SIGKILL); }

std::string BackendProcess::Log() const { return ReadFile(log_path_); }

void BackendProcess::Kill(int signal) {
  if (pid_ <= 0 || reaped_) return;
  kill(-pid_, signal);
  waitpid(pid_, nullptr, 0);
  reaped_ = true;
}

int BackendProcess::WaitForExit(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!reaped_ && std::chrono::steady_clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

std::vector<std::string> VirtiofsdCommand(const std::string& socket, const std::string& directory) {
  return {"/usr/lib/qemu/virtiofsd",
          "--socket-path=" + socket,
          "-o",
          "source=" + directory,
          "-o",
          "cache=auto"};
}

std::vector<std::string> StorageDaemonCommand(const std::string& socket, const std::string& image) {
  return {"/usr/bin/qemu-storage-daemon",
          "--blockdev",
          "driver=file,node-name=file0,filename=" + image,
          "--blockdev",
          "driver=raw,node-name=disk0,file=file0",
          "--export",
          "type=vhost-user-blk,id=export0,node-name=disk0,addr.type=unix,addr.path=" + socket +
              ",writable=on"};
}

std::vector<std::string> TestpmdCommand(const std::string& prefix,
                                        const std::vector<std::string>& sockets,
                                        const std::string& forward_mode, bool client) {
  std::vector<std::string> argv = {
      "/usr/bin/dpdk-testpmd",  "--no-huge", "-m", "256", "--no-pci", "--lcores", "(0,1)@0",
      "--file-prefix=" + prefix};
  for (size_t i = 0; i < sockets.size(); ++i) {
    argv.push_back("--vdev");
    argv.push_back("net_vhost" + std::to_string(i) + ",iface=" + sockets[i] + ",queues=1" +
                   (client ? ",client=1" : ""));
  }
  for (const char* arg : {"--", "--auto-start", "--stats-period", "60", "--total-num-mbufs=8192"}) {
    argv.push_back(arg);
  }
  argv.push_back("--forward-mode=" + forward_mode);
  return argv;
}

void RemoveDpdkRuntime(const std::string& prefix) {
  std::error_code ignored;
  std::filesystem::remove_all("/var/run/dpdk/" + prefix, ignored);
}

}  // namespace ember::testing
