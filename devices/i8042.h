// The part of the i8042 keyboard controller a microVM needs: enough of the
// command set for Linux's probe, the CPU reset line (command 0xFE), which
// ends the VM cleanly, and Ctrl-Alt-Del key presses for a graceful guest
// shutdown. Ports 0x60 (data) and 0x64 (status/command).
//
// Thread-safety: Read/Write run on vCPU threads, SendCtrlAltDel on the VMM
// thread; state is behind one mutex. Callbacks run with it held.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>

#include "kvm/bus.h"

namespace ember {

class I8042 : public BusDevice {
 public:
  static constexpr uint64_t kPortSpan = 5;  // 0x60..0x64

  I8042(std::function<void()> on_reset, std::function<void()> raise_interrupt)
      : on_reset_(std::move(on_reset)), raise_interrupt_(std::move(raise_interrupt)) {}

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

  // The output buffer holds 16 bytes, as Firecracker's does: a guest that
  // writes without reading can fill it, never grow it. Past that, bytes
  // are dropped and counted (i8042.missed_write_count).
  static constexpr size_t kOutputCapacity = 16;

  // Queues the scan codes of Ctrl+Alt+Del and raises the keyboard interrupt.
  void SendCtrlAltDel();

 private:
  void PushOutput(uint8_t byte);
  bool OutputEmpty() const { return output_count_ == 0; }
  uint8_t PopOutput();

  const std::function<void()> on_reset_;
  const std::function<void()> raise_interrupt_;

  std::mutex mutex_;
  std::array<uint8_t, kOutputCapacity> output_{};
  size_t output_head_ = 0;       // the oldest byte
  size_t output_count_ = 0;      // bytes waiting for the guest
  uint8_t command_byte_ = 0x45;  // keyboard interrupt on, translation on
  uint8_t pending_command_ = 0;  // a command waiting for its data byte
};

}  // namespace ember
