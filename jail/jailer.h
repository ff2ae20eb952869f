// ember-jailer's work, in Firecracker's jailer's order: make the jail
// directory and copy the VMM (and, because ember links Debian's shared
// libraries where Firecracker is static, the libraries it needs) into it;
// join the network namespace; set rlimits; join the cgroup; enter a new
// mount namespace and pivot_root into the jail; make /dev/kvm,
// /dev/net/tun, /dev/urandom and /dev/userfaultfd for the VMM's user;
// daemonize or a new PID namespace if asked; write the pid file; drop to
// uid/gid and exec the VMM with --id and the start times.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "jail/jailer_args.h"

namespace ember {

struct JailerClock {
  uint64_t start_us;      // CLOCK_MONOTONIC when the jailer started
  uint64_t start_cpu_us;  // its CPU time then
};

// Returns only on failure: the error names the step. What the jailer made
// before the failure (files, device nodes, directories) is removed again;
// a cgroup it joined stays (it cannot leave it): see README's cleanup.
Status RunJailer(const JailerArgs& args, const JailerClock& clock);

}  // namespace ember
