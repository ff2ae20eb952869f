#include "jail/seccomp_filters.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>

namespace ember {
namespace {

class SeccompFiltersTest : public ::testing::TestWithParam<ThreadKind> {};

TEST_P(SeccompFiltersTest, EveryRuleCompiles) {
  scmp_filter_ctx filter = seccomp_init(SCMP_ACT_TRAP);
  ASSERT_NE(filter, nullptr);
  for (const SyscallRule& rule : FilterRules(GetParam())) {
    uint32_t action = rule.fail_with ? SCMP_ACT_ERRNO(rule.fail_with) : SCMP_ACT_ALLOW;
    EXPECT_EQ(seccomp_rule_add_array(filter, action, rule.syscall,
                                     static_cast<unsigned>(rule.arguments.size()),
                                     rule.arguments.empty() ? nullptr : rule.arguments.data()),
              0)
        << seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, rule.syscall);
  }
  seccomp_release(filter);
  std::printf("%s filter: %zu rules\n", ThreadKindName(GetParam()), FilterRules(GetParam()).size());
}

TEST_P(SeccompFiltersTest, DangerousCallsAreNotAllowed) {
  for (const SyscallRule& rule : FilterRules(GetParam())) {
    for (int forbidden : {SYS_execve, SYS_execveat, SYS_ptrace, SYS_fork, SYS_vfork, SYS_kill,
                          SYS_mount, SYS_open, SYS_getppid}) {
      EXPECT_FALSE(rule.syscall == forbidden && rule.fail_with == 0)
          << seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, forbidden);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, SeccompFiltersTest,
                         ::testing::Values(ThreadKind::kVmm, ThreadKind::kVcpu, ThreadKind::kApi),
                         [](const auto& info) { return std::string(ThreadKindName(info.param)); });

}  // namespace
}  // namespace ember
