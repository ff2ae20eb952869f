// Installs the calling thread's seccomp filter (see seccomp_filters.h) and
// handles violations: the SIGSYS handler logs the thread kind and the
// system call's name and number, counts it in the metrics, and exits with
// status 148, Firecracker's convention.
#pragma once

#include "base/status.h"
#include "jail/seccomp_filters.h"

namespace ember {

constexpr int kSeccompViolationExitCode = 148;

// Process-wide switch (--no-seccomp turns it off); set by main before any
// thread starts.
void SetSeccompEnabled(bool enabled);
bool SeccompEnabled();

// Installs the SIGSYS handler; once per process, before any filter.
Status InstallSeccompViolationHandler();

// Loads `kind`'s filter on the calling thread (threads it creates later
// inherit it). No-op when seccomp is disabled.
Status InstallThreadFilter(ThreadKind kind);

}  // namespace ember
