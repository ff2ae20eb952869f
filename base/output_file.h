// Opens a log or metrics file as Firecracker does, so that platforms which
// point them at named pipes (Kata does) keep working: created when absent,
// appended to, and opened read-write and non-blocking. Holding a read end
// of its own, a FIFO neither blocks the open (no reader yet) nor fails the
// writes when its reader goes away; a slow or departed reader costs
// dropped lines, which the writers count, never a stalled thread.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "base/unique_fd.h"

namespace ember {

// Never follows a symlink at `path` (ember may run with more rights than
// whoever made the path). The error is the I/O error alone, in Firecracker's words ("No such file
// or directory (os error 2)"); callers say which file.
Result<UniqueFd> OpenOutputFile(const std::string& path);

// How many bytes a log file or a serial_out_path file (regular files) may
// grow by before later output is dropped and counted: a guest or a client
// that writes without end must not fill the host's disk. Set once at
// start-up (--output-file-limit).
void SetOutputFileLimit(uint64_t bytes);
uint64_t OutputFileLimit();

// One write of `size` bytes; false if any part of it was not written, with
// errno EAGAIN when a pipe took only part or none of it. Never blocks.
bool WriteWhole(int fd, const void* data, size_t size);

}  // namespace ember
