// Puts a terminal on stdin into raw mode while the guest owns the console
// (keys such as Ctrl-C go to the guest) and restores it when destroyed.
// Does nothing when stdin is not a terminal. VMM thread only.
#pragma once

#include <termios.h>

namespace ember {

class RawTerminal {
 public:
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

}  // namespace ember
