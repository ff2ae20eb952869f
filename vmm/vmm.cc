#include "vmm/vmm.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "vmm/event_loop.h"
#include "vmm/terminal.h"

namespace ember {
namespace {

// Moves what the host typed into the UART, no more than it can hold.
void ForwardInput(Machine& machine, EventLoop& loop, int stdin_fd) {
  uint8_t buffer[256];
  size_t space = std::min(sizeof(buffer), machine.serial->InputSpace());
  if (space == 0) return;  // the guest is not reading; try again on the next event
  ssize_t n = read(stdin_fd, buffer, space);
  if (n > 0) {
    machine.serial->QueueInput({buffer, static_cast<size_t>(n)});
  } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
    loop.Remove(stdin_fd);  // end of input: the guest keeps running
  }
}

}  // namespace

Result<int> RunMachine(Machine& machine, int stdin_fd) {
  EMBER_ASSIGN_OR_RETURN(EventLoop loop, EventLoop::Create());
  RawTerminal terminal(stdin_fd);
  bool done = false;
  EMBER_RETURN_IF_ERROR(loop.Add(machine.exit_event.fd(), EPOLLIN, [&](uint32_t) { done = true; }));
  // Regular files and /dev/null cannot be polled; a guest then has no input.
  if (stdin_fd >= 0 &&
      loop.Add(stdin_fd, EPOLLIN, [&](uint32_t) { ForwardInput(machine, loop, stdin_fd); }).ok()) {
    fcntl(stdin_fd, F_SETFL, fcntl(stdin_fd, F_GETFL) | O_NONBLOCK);
  }
  while (!done) EMBER_RETURN_IF_ERROR(loop.RunOnce(-1));

  for (auto& vcpu : machine.vcpus) vcpu->Stop();
  std::optional<VmExit> exit = machine.exit_event.Taken();
  if (exit && exit->reason == VmExitReason::kError) {
    spdlog::error("VM stopped: {}", exit->detail);
    return 1;
  }
  spdlog::info("VM stopped: {}", exit ? exit->detail : "no reason given");
  return 0;
}

}  // namespace ember
