// The seccomp allow-lists (jail/seccomp_filters.h) as data, and loaded for
// real through jail/seccomp.h's InstallThreadFilter in a forked child (a
// filter cannot be taken off again): each kind's filter loads, traps what
// it does not allow, and the child then ends the way ember does, 148.
#include "jail/seccomp_filters.h"

#include <gtest/gtest.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <string>
#include <vector>

#include "jail/seccomp.h"

namespace ember {
namespace {

constexpr ThreadKind kAllKinds[] = {ThreadKind::kVmm,   ThreadKind::kVcpu,
                                    ThreadKind::kApi,   ThreadKind::kDevice,
                                    ThreadKind::kVsock, ThreadKind::kDeviceControl};

std::string SyscallName(int number) {
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, number);
  std::string result = name != nullptr ? name : "#" + std::to_string(number);
  free(name);
  return result;
}

struct ChildResult {
  int exit_code = -1;  // -1: killed by a signal
  int signal = 0;      // the signal, if killed by one
  std::string err;
};

// A call's arguments; by default ones no call could use.
using Args = std::array<long, 6>;
constexpr Args kUselessArgs = {-1L, 0L, 0L, 0L, 0L, 0L};

// Forks; the child names its thread as ember would (the SIGSYS handler
// reports the kind from the name), installs the SIGSYS handler and `kind`'s
// filter with the real installation, then makes system call `number` (with
// arguments no call could use) unless it is -1, and exits 0. A child that
// could not install its filter exits 1.
// `args` may name kSelfPid / kSelfTid, replaced in the child.
constexpr long kSelfPid = -1000001, kSelfTid = -1000002;
ChildResult InstallThenCall(ThreadKind kind, long number, Args args = kUselessArgs) {
  int err_pipe[2];
  if (pipe(err_pipe) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    close(err_pipe[0]);
    dup2(err_pipe[1], STDERR_FILENO);
    if (kind == ThreadKind::kVcpu) prctl(PR_SET_NAME, "fc_vcpu 0");
    if (kind == ThreadKind::kApi) prctl(PR_SET_NAME, "fc_api");
    Status handler = InstallSeccompViolationHandler();
    Status filter = handler.ok() ? InstallThreadFilter(kind) : handler;
    if (!filter.ok()) {
      std::string message = "install: " + filter.message() + "\n";
      (void)!write(STDERR_FILENO, message.data(), message.size());
      _exit(1);
    }
    for (long& arg : args) {
      if (arg == kSelfPid) arg = getpid();
      if (arg == kSelfTid) arg = gettid();
    }
    if (number >= 0) syscall(number, args[0], args[1], args[2], args[3], args[4], args[5]);
    _exit(0);
  }
  close(err_pipe[1]);
  ChildResult result;
  char buffer[512];
  ssize_t n;
  while ((n = read(err_pipe[0], buffer, sizeof(buffer))) > 0) result.err.append(buffer, n);
  close(err_pipe[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) == pid && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

class SeccompFiltersTest : public ::testing::TestWithParam<ThreadKind> {};

TEST_P(SeccompFiltersTest, RealInstallationLoadsTheFilterAndTrapsWhatItDoesNotAllow) {
  ASSERT_TRUE(SeccompEnabled());
  // Loaded: the child lives on under it and exits through exit_group.
  ChildResult loaded = InstallThenCall(GetParam(), -1);
  EXPECT_EQ(loaded.exit_code, 0) << loaded.err;
  EXPECT_EQ(loaded.err, "");
  // Enforced: getppid is in no list; it ends the child the way it ends ember.
  ChildResult trapped = InstallThenCall(GetParam(), SYS_getppid);
  EXPECT_EQ(trapped.exit_code, kSeccompViolationExitCode) << trapped.err;
  EXPECT_NE(trapped.err.find("made a forbidden system call getppid (" +
                             std::to_string(SYS_getppid) + "); exiting with status 148"),
            std::string::npos)
      << trapped.err;
  std::printf("%s filter: %zu rules\n", ThreadKindName(GetParam()), FilterRules(GetParam()).size());
}

TEST_P(SeccompFiltersTest, DangerousCallsAreNotAllowed) {
  std::vector<int> dangerous = {SYS_execve, SYS_execveat, SYS_ptrace, SYS_fork,
                                SYS_vfork,  SYS_kill,     SYS_mount,  SYS_getppid};
#ifndef EMBER_SANITIZER_BUILD
  // Sanitizer builds allow open: their runtime reads /proc/self/maps.
  dangerous.push_back(SYS_open);
#endif
  for (const SyscallRule& rule : FilterRules(GetParam())) {
    for (int forbidden : dangerous) {
      EXPECT_FALSE(rule.syscall == forbidden && rule.fail_with == 0) << SyscallName(forbidden);
    }
  }
}

// Narrowed calls: only the futex operations glibc's locks use (no PI,
// requeue or wake-op), tgkill only for abort() (and, on the VMM thread,
// the vCPU kick and the final SIGTERM); abort() then ends the thread by
// SIGABRT, not by a refusal of its own tgkill.
TEST_P(SeccompFiltersTest, FutexAndTgkillAreNarrowedToWhatEmberUses) {
  static int word = 0;
  const long address = reinterpret_cast<long>(&word);
  for (long op : {FUTEX_WAKE_PRIVATE, FUTEX_WAKE, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG}) {
    ChildResult allowed =
        InstallThenCall(GetParam(), SYS_futex, {address, op, 1, 0, 0, FUTEX_BITSET_MATCH_ANY});
    EXPECT_EQ(allowed.exit_code, 0) << "futex op " << op << ": " << allowed.err;
  }
  for (long op : {FUTEX_LOCK_PI_PRIVATE, FUTEX_CMP_REQUEUE_PRIVATE, FUTEX_WAKE_OP_PRIVATE,
                  FUTEX_UNLOCK_PI, FUTEX_WAIT_REQUEUE_PI_PRIVATE}) {
    ChildResult refused = InstallThenCall(GetParam(), SYS_futex, {address, op, 1, 0, 0, 0});
    EXPECT_EQ(refused.exit_code, kSeccompViolationExitCode) << "futex op " << op;
  }
  ChildResult signal = InstallThenCall(GetParam(), SYS_tgkill, {kSelfPid, kSelfTid, SIGUSR1});
  EXPECT_EQ(signal.exit_code, kSeccompViolationExitCode) << "tgkill SIGUSR1: " << signal.err;
  ChildResult aborted = InstallThenCall(GetParam(), SYS_tgkill, {kSelfPid, kSelfTid, SIGABRT});
  EXPECT_EQ(aborted.signal, SIGABRT) << aborted.err;
}

INSTANTIATE_TEST_SUITE_P(Kinds, SeccompFiltersTest, ::testing::ValuesIn(kAllKinds),
                         [](const auto& info) {
                           std::string name = ThreadKindName(info.param);
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

// The vCPU threads run the guest and its emulated devices: no sockets of
// any kind (the vhost-user conversations run on the device-control thread).
constexpr int kSocketCalls[] = {SYS_socket,  SYS_connect, SYS_accept4, SYS_bind,     SYS_listen,
                                SYS_sendmsg, SYS_recvmsg, SYS_sendto,  SYS_recvfrom, SYS_shutdown};

TEST(VcpuSeccompFilterTest, AllowsNoSocketCall) {
  for (int call : kSocketCalls) {
    for (const SyscallRule& rule : FilterRules(ThreadKind::kVcpu)) {
      EXPECT_FALSE(rule.syscall == call && rule.fail_with == 0)
          << "the vcpu filter allows " << SyscallName(call) << ": " << (rule.why ? rule.why : "");
    }
  }
}

TEST(VcpuSeccompFilterTest, TrapsEverySocketCall) {
  for (int call : kSocketCalls) {
    SCOPED_TRACE(SyscallName(call));
    ChildResult result = InstallThenCall(ThreadKind::kVcpu, call);
    EXPECT_EQ(result.exit_code, kSeccompViolationExitCode) << result.err;
    EXPECT_NE(result.err.find("the vcpu thread made a forbidden system call " + SyscallName(call) +
                              " (" + std::to_string(call) + ")"),
              std::string::npos)
        << result.err;
  }
}

}  // namespace
}  // namespace ember
