// 16550A-style UART (the 8250 family Linux drives as ttyS0), one per COM
// port. Guest output goes into a ConsoleOutput (drained to ember's stdout or
// a file by the VMM thread); host input is queued by the VMM thread and
// raises the receive interrupt.
//
// Thread-safety: Read/Write run on vCPU threads, QueueInput on the VMM
// thread; all state is behind one mutex. The interrupt callback is invoked
// with that mutex held and must not call back into the device.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "devices/console_output.h"
#include "kvm/bus.h"

namespace ember {

class Serial : public BusDevice {
 public:
  static constexpr uint64_t kRegisterCount = 8;
  static constexpr size_t kInputCapacity = 4096;

  Serial(ConsoleOutput& output, std::function<void()> raise_interrupt)
      : output_(output), raise_interrupt_(std::move(raise_interrupt)) {}

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

  // Queues host bytes for the guest; returns how many fit.
  size_t QueueInput(std::span<const uint8_t> bytes);
  // Free space in the input queue, so the VMM reads no more than fits.
  size_t InputSpace();

 private:
  uint8_t ReadRegister(uint64_t offset);
  void WriteRegister(uint64_t offset, uint8_t value);
  void Emit(uint8_t byte);
  uint8_t InterruptIdentification() const;
  void UpdateInterrupt();

  ConsoleOutput& output_;
  const std::function<void()> raise_interrupt_;

  std::mutex mutex_;
  std::deque<uint8_t> input_;
  uint8_t interrupt_enable_ = 0;
  uint8_t line_control_ = 0x03;   // 8 data bits, as firmware leaves it
  uint8_t modem_control_ = 0x08;  // OUT2
  uint8_t scratch_ = 0;
  uint8_t divisor_low_ = 0x0c;  // 9600 baud
  uint8_t divisor_high_ = 0;
  bool fifo_enabled_ = false;
  bool transmit_empty_pending_ = false;
  bool interrupt_asserted_ = false;
};

}  // namespace ember
