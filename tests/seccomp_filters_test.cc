// The seccomp allow-lists (jail/seccomp_filters.h) as data, and loaded for
// real through jail/seccomp.h's InstallThreadFilter in a forked child (a
// filter cannot be taken off again): each kind's filter loads, traps what
// it does not allow, and the child then ends the way ember does, 148.
#include "jail/seccomp_filters.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

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
  std::string err;
};

// Forks; the child names its thread as ember would (the SIGSYS handler
// reports the kind from the name), installs the SIGSYS handler and `kind`'s
// filter with the real installation, then makes system call `number` (with
// arguments no call could use) unless it is -1, and exits 0. A child that
// could not install its filter exits 1.
ChildResult InstallThenCall(ThreadKind kind, long number) {
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
    if (number >= 0) syscall(number, -1L, 0L, 0L, 0L, 0L, 0L);
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
  for (const SyscallRule& rule : FilterRules(GetParam())) {
    for (int forbidden : {SYS_execve, SYS_execveat, SYS_ptrace, SYS_fork, SYS_vfork, SYS_kill,
                          SYS_mount, SYS_open, SYS_getppid}) {
      EXPECT_FALSE(rule.syscall == forbidden && rule.fail_with == 0) << SyscallName(forbidden);
    }
  }
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
