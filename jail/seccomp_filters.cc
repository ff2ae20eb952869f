#include "jail/seccomp_filters.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

namespace ember {
namespace {

// Argument helpers for the tables.
scmp_arg_cmp Arg(unsigned index, scmp_datum_t value) {
  return scmp_arg_cmp{index, SCMP_CMP_EQ, value, 0};
}
scmp_arg_cmp ArgMasked(unsigned index, scmp_datum_t mask, scmp_datum_t value) {
  return scmp_arg_cmp{index, SCMP_CMP_MASKED_EQ, mask, value};
}

// A futex operation, with or without FUTEX_PRIVATE_FLAG and
// FUTEX_CLOCK_REALTIME (the kernel reads only the low 32 bits).
scmp_arg_cmp FutexOp(int op) {
  return ArgMasked(1,
                   0xffffffffu & ~static_cast<uint32_t>(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME),
                   static_cast<scmp_datum_t>(op));
}

// Memory maps are never executable.
std::vector<SyscallRule> Memory() {
  return {
      {SCMP_SYS(mmap), {ArgMasked(2, PROT_EXEC, 0)}, "allocator; never PROT_EXEC"},
      {SCMP_SYS(mprotect), {ArgMasked(2, PROT_EXEC, 0)}, "allocator guard pages; never PROT_EXEC"},
      {SCMP_SYS(munmap), {}, nullptr},
      {SCMP_SYS(madvise), {}, "allocator returns memory"},
      {SCMP_SYS(brk), {}, nullptr},
  };
}

// What every ember thread does: log, lock, allocate, read the clock, exit.
std::vector<SyscallRule> Common() {
  std::vector<SyscallRule> rules = {
      {SCMP_SYS(read), {}, nullptr},
      {SCMP_SYS(write), {}, "logging, eventfds, the console"},
      {SCMP_SYS(close), {}, nullptr},
      // Only the operations glibc's mutexes, condition variables and joins
      // use: no PI, requeue or wake-op futexes (kernel paths ember never needs).
      {SCMP_SYS(futex), {FutexOp(FUTEX_WAIT)}, "mutexes and condition variables"},
      {SCMP_SYS(futex), {FutexOp(FUTEX_WAKE)}, "mutexes and condition variables"},
      {SCMP_SYS(futex), {FutexOp(FUTEX_WAIT_BITSET)}, "condition variables, timed waits, joins"},
      {SCMP_SYS(futex), {FutexOp(FUTEX_WAKE_BITSET)}, nullptr},
      {SCMP_SYS(clock_gettime), {}, "timestamps when the vDSO falls back"},
      {SCMP_SYS(clock_nanosleep), {}, nullptr},
      {SCMP_SYS(nanosleep), {}, nullptr},
      {SCMP_SYS(sched_yield), {}, nullptr},
      {SCMP_SYS(gettid), {}, "logging"},
      {SCMP_SYS(getpid), {}, nullptr},
      {SCMP_SYS(rt_sigprocmask), {}, nullptr},
      {SCMP_SYS(rt_sigreturn), {}, "return from the kick and SIGSYS handlers"},
      {SCMP_SYS(restart_syscall), {}, nullptr},
      {SCMP_SYS(newfstatat), {}, "stdio on the log stream"},
      {SCMP_SYS(fstat), {}, "stdio on the log stream"},
      {SCMP_SYS(lseek), {}, "stdio on the log stream"},
      {SCMP_SYS(exit), {}, "thread exit"},
      {SCMP_SYS(exit_group), {}, nullptr},
      // No filtered thread opens files; glibc's malloc probes
      // /proc/sys/vm/overcommit_memory for new arenas and copes without it.
      {SCMP_SYS(openat), {}, "refused with EACCES", EACCES},
      {SCMP_SYS(prctl), {Arg(0, PR_GET_NAME)}, "the SIGSYS handler names the thread"},
      // Once a process has more than 8 malloc arenas, glibc caps them by
      // the CPU count (seen with many API connection threads).
      {SCMP_SYS(sched_getaffinity), {}, "glibc's malloc counts CPUs for its arenas"},
      // abort() raises SIGABRT with tgkill: a thread that must abort dies of
      // its own abort, with the cause logged, not of a seccomp refusal.
      {SCMP_SYS(tgkill), {Arg(2, SIGABRT)}, "abort()"},
  };
  for (SyscallRule& rule : Memory()) rules.push_back(std::move(rule));
#ifdef EMBER_SANITIZER_BUILD
  // What the sanitizer runtimes call from any thread (scripts/sanitize.sh):
  // only in that build, never in ember's release filters.
  for (int call : {SCMP_SYS(pipe2), SCMP_SYS(sigaltstack), SCMP_SYS(prctl), SCMP_SYS(open)}) {
    rules.push_back({call, {}, "sanitizer runtime"});
  }
#endif
  return rules;
}

std::vector<SyscallRule> With(std::vector<SyscallRule> extra) {
  std::vector<SyscallRule> rules = Common();
  for (SyscallRule& rule : extra) rules.push_back(std::move(rule));
  return rules;
}

std::vector<SyscallRule> VcpuRules() {
  std::vector<SyscallRule> rules = With({
      {SCMP_SYS(ioctl), {Arg(1, KVM_RUN)}, nullptr},
      {SCMP_SYS(ioctl), {Arg(1, KVM_IRQ_LINE)}, "serial and i8042 raise their lines"},
      {SCMP_SYS(ioctl), {Arg(1, KVM_GET_REGS)}, "registers for a KVM error report"},
      {SCMP_SYS(ioctl), {Arg(1, KVM_GET_SREGS)}, "registers for a KVM error report"},
  });
  return rules;
}

// The device-control thread (devices/virtio/device_control.h): every
// vhost-user conversation after the first negotiation (activation, reset,
// negotiating again with a restarted backend), on sockets the VMM thread
// opened.
std::vector<SyscallRule> DeviceControlRules() {
  return With({
      {SCMP_SYS(sendmsg), {}, "vhost-user requests carry fds"},
      {SCMP_SYS(recvmsg), {}, "vhost-user replies"},
      {SCMP_SYS(shutdown), {}, "drops a connection whose backend failed activation"},
  });
}

std::vector<SyscallRule> VmmRules() {
  std::vector<SyscallRule> rules;
  for (SyscallRule& rule : Common()) {
    if (rule.syscall != SCMP_SYS(openat)) rules.push_back(std::move(rule));
  }
  for (SyscallRule& rule : std::vector<SyscallRule>{
           {SCMP_SYS(epoll_wait), {}, "the event loop"},
           {SCMP_SYS(epoll_pwait), {}, "the event loop"},
           {SCMP_SYS(epoll_ctl), {}, "the event loop"},
           {SCMP_SYS(tgkill),
            {Arg(2, static_cast<scmp_datum_t>(SIGRTMIN))},
            "kicks vCPUs out of KVM_RUN for pause and stop"},
           {SCMP_SYS(tgkill), {Arg(2, SIGTERM)}, "ends the process as SIGTERM did, after stopping"},
           {SCMP_SYS(ioctl), {Arg(1, KVM_IRQ_LINE)}, "console input and Ctrl-Alt-Del raise lines"},
           {SCMP_SYS(ioctl), {Arg(1, TCGETS)}, "console terminal state"},
           {SCMP_SYS(ioctl), {Arg(1, TCSETS)}, "restores the console terminal at exit"},
           {SCMP_SYS(fcntl), {Arg(1, F_GETFL)}, nullptr},
           {SCMP_SYS(fcntl), {Arg(1, F_SETFL)}, nullptr},
           {SCMP_SYS(unlink), {}, "removes the API socket at exit"},
           {SCMP_SYS(shutdown), {}, "stops the API listener; ends backend conversations at exit"},
           {SCMP_SYS(socket), {Arg(0, AF_UNIX)}, "reconnects to vhost-user backends"},
           {SCMP_SYS(connect), {}, "reconnects to vhost-user backends"},
           {SCMP_SYS(accept4),
            {Arg(3, SOCK_CLOEXEC)},
            "vhost-user backends connecting in server mode"},
           {SCMP_SYS(setsockopt),
            {Arg(1, SOL_SOCKET), Arg(2, SO_RCVTIMEO)},
            "reply timeouts on vhost-user sockets"},
           {SCMP_SYS(setsockopt),
            {Arg(1, SOL_SOCKET), Arg(2, SO_SNDTIMEO)},
            "reply timeouts on vhost-user sockets"},
           {SCMP_SYS(getsockopt),
            {Arg(1, SOL_SOCKET), Arg(2, SO_PEERCRED)},
            "who a reconnecting vhost-user backend is"},
           {SCMP_SYS(stat), {}, "checks a backend socket before reconnecting"},
           {SCMP_SYS(timerfd_settime), {}, "arms the backend reconnect timer"},
           {SCMP_SYS(sendto),
            {ArgMasked(3, MSG_DONTWAIT, MSG_DONTWAIT)},
            "console output to a stdout that is a socket, never blocking"},
           {SCMP_SYS(openat),
            {ArgMasked(2, O_CREAT | O_TRUNC | O_TMPFILE, 0)},
            "PATCH /drives opens the new backing file; never creates or truncates"},
       }) {
    rules.push_back(std::move(rule));
  }
  return rules;
}

// An emulated device's worker (QueueWorker): waits on its kick eventfds and
// moves data between its backing file and guest memory.
std::vector<SyscallRule> DeviceRules() {
  return With({
      {SCMP_SYS(poll), {}, "waits for kicks"},
      {SCMP_SYS(ppoll), {}, "waits for kicks"},
      {SCMP_SYS(getrandom), {}, "bytes for a virtio-rng driver"},
      {SCMP_SYS(pread64), {}, "drive reads"},
      {SCMP_SYS(preadv), {}, "drive reads into guest buffers"},
      {SCMP_SYS(pwrite64), {}, "drive writes"},
      {SCMP_SYS(pwritev), {}, "drive writes from guest buffers"},
      {SCMP_SYS(fdatasync), {}, "FLUSH on a Writeback drive"},
      {SCMP_SYS(fsync), {}, "FLUSH on a Writeback drive"},
      {SCMP_SYS(timerfd_settime), {}, "a throttled queue resumes from a timer"},
      {SCMP_SYS(io_uring_enter), {}, "io_engine Async submits and reaps"},
      {SCMP_SYS(writev), {}, "frames to a TAP"},
      {SCMP_SYS(ioctl), {Arg(1, TUNSETOFFLOAD)}, "the offloads a virtio-net driver accepted"},
  });
}

// The vsock device's worker: its kicks and timer as any device, plus the
// host's Unix sockets (accepting clients, connecting to uds_path_PORT,
// moving stream data between them and guest buffers).
std::vector<SyscallRule> VsockRules() {
  return With({
      {SCMP_SYS(poll), {}, "waits for kicks and sockets"},
      {SCMP_SYS(ppoll), {}, "waits for kicks and sockets"},
      {SCMP_SYS(timerfd_settime), {}, "connect and shutdown deadlines"},
      {SCMP_SYS(epoll_wait), {}, "which sockets are ready"},
      {SCMP_SYS(epoll_pwait), {}, "which sockets are ready"},
      {SCMP_SYS(epoll_ctl), {}, "watches sockets as streams come and go"},
      {SCMP_SYS(accept4), {Arg(3, SOCK_CLOEXEC | SOCK_NONBLOCK)}, "clients of uds_path"},
      {SCMP_SYS(socket), {Arg(0, AF_UNIX)}, "guest-initiated streams to uds_path_PORT"},
      {SCMP_SYS(connect), {}, "guest-initiated streams to uds_path_PORT"},
      {SCMP_SYS(recvfrom), {}, "peeks at a client's CONNECT line"},
      {SCMP_SYS(sendto), {}, "the OK line, buffered stream data"},
      {SCMP_SYS(sendmsg), {}, "stream data from guest buffers"},
      {SCMP_SYS(readv), {}, "stream data into guest buffers"},
      {SCMP_SYS(shutdown), {}, "the guest stopped sending"},
  });
}

std::vector<SyscallRule> ApiRules() {
  return With({
      {SCMP_SYS(accept4), {Arg(3, SOCK_CLOEXEC)}, "the request collector's clients"},
      {SCMP_SYS(poll), {}, "the request collector; httplib waits for sockets"},
      {SCMP_SYS(ppoll), {}, "httplib waits for sockets"},
      {SCMP_SYS(select), {}, "httplib waits for sockets"},
      {SCMP_SYS(pselect6), {}, "httplib waits for sockets"},
      {SCMP_SYS(recvfrom), {}, nullptr},
      {SCMP_SYS(sendto), {}, nullptr},
      {SCMP_SYS(setsockopt),
       {Arg(1, SOL_SOCKET), Arg(2, SO_RCVTIMEO)},
       "httplib sets timeouts on client sockets"},
      {SCMP_SYS(setsockopt),
       {Arg(1, SOL_SOCKET), Arg(2, SO_SNDTIMEO)},
       "httplib sets timeouts on client sockets"},
      {SCMP_SYS(getsockopt), {}, nullptr},
      {SCMP_SYS(getpeername), {}, "httplib records the client address"},
      {SCMP_SYS(getsockname), {}, nullptr},
      {SCMP_SYS(shutdown), {}, nullptr},
      {SCMP_SYS(fcntl), {Arg(1, F_GETFL)}, nullptr},
      {SCMP_SYS(fcntl), {Arg(1, F_SETFL)}, nullptr},
      // The collector starts its worker threads after its own filter is in.
      // clone3 takes its flags in memory, where seccomp cannot look: glibc
      // falls back to clone, whose flags can be checked.
      {SCMP_SYS(clone3), {}, "refused with ENOSYS", ENOSYS},
      {SCMP_SYS(clone), {ArgMasked(0, CLONE_THREAD, CLONE_THREAD)}, "the API worker threads"},
      {SCMP_SYS(set_robust_list), {}, "new worker threads"},
      {SCMP_SYS(rseq), {}, "new worker threads"},
      {SCMP_SYS(sigaltstack), {}, "new worker threads"},
      {SCMP_SYS(prctl), {Arg(0, PR_SET_NAME)}, "httplib names its workers"},
  });
}

}  // namespace

const char* ThreadKindName(ThreadKind kind) {
  switch (kind) {
    case ThreadKind::kVmm:
      return "vmm";
    case ThreadKind::kVcpu:
      return "vcpu";
    case ThreadKind::kApi:
      return "api";
    case ThreadKind::kDevice:
      return "device";
    case ThreadKind::kVsock:
      return "vsock";
    case ThreadKind::kDeviceControl:
      return "device-control";
  }
  return "?";
}

const std::vector<SyscallRule>& FilterRules(ThreadKind kind) {
  static const std::vector<SyscallRule> vmm = VmmRules();
  static const std::vector<SyscallRule> vcpu = VcpuRules();
  static const std::vector<SyscallRule> api = ApiRules();
  static const std::vector<SyscallRule> device = DeviceRules();
  static const std::vector<SyscallRule> vsock = VsockRules();
  static const std::vector<SyscallRule> device_control = DeviceControlRules();
  switch (kind) {
    case ThreadKind::kVmm:
      return vmm;
    case ThreadKind::kVcpu:
      return vcpu;
    case ThreadKind::kApi:
      return api;
    case ThreadKind::kDevice:
      return device;
    case ThreadKind::kVsock:
      return vsock;
    case ThreadKind::kDeviceControl:
      return device_control;
  }
  return vmm;
}

}  // namespace ember
