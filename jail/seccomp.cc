#include "jail/seccomp.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/metrics.h"

namespace ember {
namespace {

std::atomic<bool> enabled{true};
std::atomic<bool> filter_loaded{false};

// Appends `text` to a fixed buffer; no allocation.
struct Line {
  char data[256];
  size_t size = 0;
  Line& operator<<(const char* text) {
    while (*text != '\0' && size < sizeof(data) - 1) data[size++] = *text++;
    return *this;
  }
  Line& operator<<(uint64_t number) {
    char digits[24];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + number % 10);
      number /= 10;
    } while (number != 0);
    while (n > 0 && size < sizeof(data) - 1) data[size++] = digits[--n];
    return *this;
  }
  void WriteTo(int fd) const { (void)!::write(fd, data, size); }
};

// Threads have Firecracker's names, "fc_vcpu N" and "fc_api" (httplib's
// workers inherit the name of the thread that made them); the VMM thread
// is the main one.
const char* CallingThreadKind() {
  char name[16] = {};
  prctl(PR_GET_NAME, name);
  if (std::strncmp(name, "fc_vcpu", 7) == 0) return ThreadKindName(ThreadKind::kVcpu);
  if (std::strncmp(name, "fc_api", 6) == 0) return ThreadKindName(ThreadKind::kApi);
  return ThreadKindName(ThreadKind::kVmm);
}

// System call names, resolved once when the handler is installed: the
// handler itself must not allocate (the faulting thread may hold the
// allocator's lock, and sanitizer runtimes deadlock on it).
constexpr int kNamedSyscalls = 512;
const char* syscall_names[kNamedSyscalls] = {};

void ResolveSyscallNames() {
  static std::atomic<bool> resolved{false};
  if (resolved.exchange(true)) return;
  for (int number = 0; number < kNamedSyscalls; ++number) {
    syscall_names[number] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, number);
  }
}

const char* SyscallNameOf(int number) {
  if (number < 0 || number >= kNamedSyscalls || syscall_names[number] == nullptr) return "?";
  return syscall_names[number];
}

void OnViolation(int, siginfo_t* info, void*) {
  const int number = info->si_syscall;
  GlobalMetrics().seccomp_faults.Add();
  Line message;
  message << "ember: seccomp: the " << CallingThreadKind()
          << " thread made a forbidden system call " << SyscallNameOf(number) << " ("
          << static_cast<uint64_t>(number) << "); exiting with status 148\n";
  message.WriteTo(STDERR_FILENO);
  int fd = MetricsFileFd();
  if (fd >= 0) {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    Line metrics;
    metrics << "{\"utc_timestamp_ms\":"
            << static_cast<uint64_t>(now.tv_sec) * 1000 +
                   static_cast<uint64_t>(now.tv_nsec) / 1000000
            << ",\"seccomp\":{\"num_faults\":1}}\n";
    metrics.WriteTo(fd);
  }
  _exit(kSeccompViolationExitCode);
}

// Test hook: EMBER_TEST_FORBIDDEN_SYSCALL=<kind> makes that thread kind
// make a system call no filter allows, right after its filter is in.
void MaybeMisbehaveForTests(ThreadKind kind) {
  const char* wanted = std::getenv("EMBER_TEST_FORBIDDEN_SYSCALL");
  if (wanted != nullptr && std::strcmp(wanted, ThreadKindName(kind)) == 0) syscall(SYS_getppid);
}

}  // namespace

void SetSeccompEnabled(bool on) { enabled = on; }
bool SeccompEnabled() { return enabled; }

Status InstallSeccompViolationHandler() {
  ResolveSyscallNames();
  struct sigaction action {};
  action.sa_sigaction = OnViolation;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGSYS, &action, nullptr) != 0) {
    return Status::Error(std::string("installing the SIGSYS handler: ") + std::strerror(errno));
  }
  return Status::Ok();
}

Status InstallThreadFilter(ThreadKind kind) {
  if (!enabled) return Status::Ok();
  const std::string where =
      std::string("seccomp filter for the ") + ThreadKindName(kind) + " thread";
  scmp_filter_ctx filter = seccomp_init(SCMP_ACT_TRAP);
  if (filter == nullptr) return Status::Error(where + ": seccomp_init failed");
  for (const SyscallRule& rule : FilterRules(kind)) {
    uint32_t action = rule.fail_with != 0 ? SCMP_ACT_ERRNO(rule.fail_with) : SCMP_ACT_ALLOW;
    int rc = seccomp_rule_add_array(filter, action, rule.syscall,
                                    static_cast<unsigned>(rule.arguments.size()),
                                    rule.arguments.empty() ? nullptr : rule.arguments.data());
    if (rc != 0) {
      seccomp_release(filter);
      return Status::Error(where + ": rule for system call " + std::to_string(rule.syscall) + ": " +
                           std::strerror(-rc));
    }
  }
  int rc = seccomp_load(filter);
  seccomp_release(filter);
  if (rc != 0) return Status::Error(where + ": loading: " + std::strerror(-rc));
  filter_loaded = true;
  MaybeMisbehaveForTests(kind);
  return Status::Ok();
}

}  // namespace ember

#ifdef EMBER_SANITIZER_BUILD
// LeakSanitizer's exit-time check stops the world with clone and ptrace
// from the exiting thread, which a loaded filter refuses: in the
// sanitizer build, processes that loaded one skip that check (runs with
// --no-seccomp, and every test process without ember's filters, keep it).
extern "C" int __lsan_is_turned_off() { return ember::filter_loaded ? 1 : 0; }
#endif
