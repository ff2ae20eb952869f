// ember's seccomp allow-lists as data: one table per thread kind. Anything
// not listed traps (SIGSYS) and ends ember with status 148.
#pragma once

#include <seccomp.h>

#include <vector>

namespace ember {

enum class ThreadKind { kVmm, kVcpu, kApi, kDevice, kVsock, kDeviceControl };
const char* ThreadKindName(ThreadKind kind);

// One allowed system call, optionally only with these argument values
// (all must hold). A syscall may appear in several rules: any may match.
struct SyscallRule {
  int syscall;
  std::vector<scmp_arg_cmp> arguments;
  const char* why;    // for entries that are not obvious
  int fail_with = 0;  // nonzero: refuse with this errno instead of allowing
};

const std::vector<SyscallRule>& FilterRules(ThreadKind kind);

}  // namespace ember
