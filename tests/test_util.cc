#include "tests/test_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ember::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/ember-test-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary) << contents;
}

void WriteFile(const std::string& path, const std::vector<uint8_t>& contents) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(contents.data()),
             static_cast<std::streamsize>(contents.size()));
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string LinuxGuestDir() {
  const char* cache = std::getenv("EMBER_CACHE");
  const char* home = std::getenv("HOME");
  return (cache ? std::string(cache) : std::string(home ? home : "/root") + "/.cache/ember") +
         "/linux";
}

ProcessResult RunProcess(const std::vector<std::string>& argv, int timeout_ms) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  ProcessResult result;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(left)) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buffer[4096];
      ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else {
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

TapNamespace::TapNamespace(const std::string& prefix, const std::string& address)
    : name_(prefix + "-" + std::to_string(getpid())) {
  std::vector<std::vector<std::string>> steps = {
      {"netns", "add", name_}, {"-n", name_, "tuntap", "add", "tap0", "mode", "tap"}};
  if (!address.empty()) steps.push_back({"-n", name_, "addr", "add", address, "dev", "tap0"});
  steps.push_back({"-n", name_, "link", "set", "tap0", "up"});
  for (const std::vector<std::string>& step : steps) {
    std::vector<std::string> argv = {"/usr/sbin/ip"};
    argv.insert(argv.end(), step.begin(), step.end());
    ProcessResult result = RunProcess(argv, 10000);
    if (result.exit_code != 0) {
      error_ = "ip " + step[0] + " " + step[1] + " " + step[2] + " failed: " + result.err;
      return;
    }
  }
}

TapNamespace::~TapNamespace() { RunProcess({"/usr/sbin/ip", "netns", "del", name_}, 10000); }

namespace {
constexpr char kNrHugePages[] = "/proc/sys/vm/nr_hugepages";
}  // namespace

HugePagePool::HugePagePool() {
  lock_fd_ = open("/tmp/ember-test-hugepages.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ >= 0) flock(lock_fd_, LOCK_EX);
  original_ = std::atol(ReadFile(kNrHugePages).c_str());
}

HugePagePool::~HugePagePool() {
  Resize(original_);
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the lock
}

long HugePagePool::Resize(long pages) {
  std::ofstream(kNrHugePages) << pages << "\n";
  return std::atol(ReadFile(kNrHugePages).c_str());
}

long MeminfoValue(const std::string& name) {
  std::istringstream meminfo(ReadFile("/proc/meminfo"));
  std::string key;
  long value = 0;
  while (meminfo >> key >> value) {
    if (key == name + ":") return value;
    std::getline(meminfo, key);
  }
  return -1;
}

size_t Occurrences(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

}  // namespace ember::testing
