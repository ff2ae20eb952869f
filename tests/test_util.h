// Helpers shared by the tests: temporary directories and files, and running
// a program with a time limit while capturing what it prints.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace ember::testing {

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& contents);
void WriteFile(const std::string& path, const std::vector<uint8_t>& contents);
std::string ReadFile(const std::string& path);

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal or the time limit
  bool timed_out = false;
  std::string out;
  std::string err;
};

// How many times `what` occurs in `text` (overlaps counted).
size_t Occurrences(const std::string& text, const std::string& what);

// Polls `done` every 10 ms until it holds; false after `seconds`.
template <typename Predicate>
bool WaitUntil(Predicate done, int seconds = 30) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Where scripts/linux-guest.sh keeps the Debian kernel and initramfs.
std::string LinuxGuestDir();

// Runs argv[0] with stdin from /dev/null, killing it after `timeout_ms`.
ProcessResult RunProcess(const std::vector<std::string>& argv, int timeout_ms);

// A network namespace of its own ("<prefix>-<pid>") holding a TAP named
// tap0 that is up (with `address`, e.g. "10.77.0.1/24", unless empty);
// deleted with everything in it on destruction. Needs root; error() says
// which step failed ("" when all went well).
class TapNamespace {
 public:
  explicit TapNamespace(const std::string& prefix, const std::string& address = "");
  ~TapNamespace();
  TapNamespace(const TapNamespace&) = delete;
  TapNamespace& operator=(const TapNamespace&) = delete;
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }
  // The wrapper that runs a program inside the namespace.
  std::vector<std::string> Exec() const { return {"/usr/sbin/ip", "netns", "exec", name_}; }

 private:
  std::string name_;
  std::string error_;
};

// A field of /proc/meminfo by name ("HugePages_Free"), -1 if absent.
long MeminfoValue(const std::string& name);

// The host's pool of 2 MiB huge pages (/proc/sys/vm/nr_hugepages) held at a
// size for one test, under a lock that keeps tests in parallel ctest jobs
// from resizing it under each other; the old size comes back on
// destruction. Needs root.
class HugePagePool {
 public:
  HugePagePool();
  ~HugePagePool();
  HugePagePool(const HugePagePool&) = delete;
  HugePagePool& operator=(const HugePagePool&) = delete;
  // Asks for `pages` and returns how many the kernel gave (it may give
  // fewer when memory is fragmented).
  long Resize(long pages);

 private:
  int lock_fd_ = -1;
  long original_ = 0;
};

}  // namespace ember::testing
