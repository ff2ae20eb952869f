// Fuzz target: a guest's accesses to the serial port (any register, any
// value, reads and writes in any order, loopback and FIFO control
// included) with host input queued in between, its output going through
// ConsoleOutput into a small pipe whose reader reads only now and then.
// Never a crash, a hang or a buffer beyond its bound.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include "devices/console_output.h"
#include "devices/serial.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) return 0;
  (void)fcntl(pipe_fds[1], F_SETPIPE_SZ, 4096);
  Result<std::unique_ptr<ConsoleOutput>> output = ConsoleOutput::Create(pipe_fds[1]);
  if (!output.ok()) std::abort();
  Serial serial(**output, [] {});
  // Each step: an opcode byte and a value byte.
  for (size_t i = 0; i + 1 < size; i += 2) {
    const uint8_t op = data[i], value = data[i + 1];
    const uint64_t offset = op & 0x0f;  // beyond the 8 registers too
    switch (op >> 4) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
      case 5:
      case 6:
        serial.Write(offset, {&value, 1});
        break;
      case 7:
      case 8:
      case 9: {
        uint8_t read_back[4];
        serial.Read(offset, {read_back, 1 + static_cast<size_t>(value % 4)});
        break;
      }
      case 10:
      case 11:
        for (int n = 0; n <= value; ++n) serial.Write(0, {&value, 1});  // a burst
        break;
      case 12:
        (void)serial.QueueInput({&data[i + 1], size - i - 1});
        break;
      case 13: {
        char sink[4096];
        (void)!read(pipe_fds[0], sink, value * 16u);  // the reader catches up a little
        break;
      }
      default:
        (void)(*output)->Drain();
        break;
    }
  }
  (void)(*output)->Drain();
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  return 0;
}
