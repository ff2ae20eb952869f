#include "devices/serial.h"

#include <unistd.h>

#include <cerrno>

#include "base/metrics.h"

namespace ember {
namespace {

// Register offsets and bits of the 16550A.
constexpr uint64_t kData = 0, kInterruptEnable = 1, kInterruptId = 2, kLineControl = 3,
                   kModemControl = 4, kLineStatus = 5, kModemStatus = 6, kScratch = 7;
constexpr uint8_t kIerReceivedData = 0x01, kIerTransmitEmpty = 0x02;
constexpr uint8_t kIirNone = 0x01, kIirTransmitEmpty = 0x02, kIirReceivedData = 0x04,
                  kIirFifoEnabled = 0xc0;
constexpr uint8_t kLcrDivisorLatch = 0x80;
constexpr uint8_t kMcrDtr = 0x01, kMcrRts = 0x02, kMcrOut1 = 0x04, kMcrOut2 = 0x08,
                  kMcrLoopback = 0x10;
constexpr uint8_t kLsrDataReady = 0x01, kLsrTransmitEmpty = 0x20, kLsrIdle = 0x40;
constexpr uint8_t kMsrCts = 0x10, kMsrDsr = 0x20, kMsrRi = 0x40, kMsrDcd = 0x80;
constexpr uint8_t kFcrEnable = 0x01, kFcrClearReceive = 0x02;

}  // namespace

void Serial::Read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mutex_);
  data[0] = offset < kRegisterCount ? ReadRegister(offset) : 0xff;
  for (size_t i = 1; i < data.size(); ++i) data[i] = 0;
}

void Serial::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty() || offset >= kRegisterCount) return;
  std::lock_guard lock(mutex_);
  WriteRegister(offset, data[0]);
}

size_t Serial::QueueInput(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  size_t accepted = 0;
  while (accepted < bytes.size() && input_.size() < kInputCapacity) {
    input_.push_back(bytes[accepted++]);
  }
  UpdateInterrupt();
  return accepted;
}

size_t Serial::InputSpace() {
  std::lock_guard lock(mutex_);
  return kInputCapacity - input_.size();
}

uint8_t Serial::ReadRegister(uint64_t offset) {
  bool divisor_latch = (line_control_ & kLcrDivisorLatch) != 0;
  switch (offset) {
    case kData: {
      if (divisor_latch) return divisor_low_;
      if (input_.empty()) return 0;
      uint8_t byte = input_.front();
      input_.pop_front();
      GlobalMetrics().uart_read_count.Add();
      UpdateInterrupt();
      return byte;
    }
    case kInterruptEnable:
      return divisor_latch ? divisor_high_ : interrupt_enable_;
    case kInterruptId: {
      uint8_t id = InterruptIdentification();
      // Reading the identification acknowledges a transmit-empty interrupt.
      if ((id & 0x0f) == kIirTransmitEmpty) {
        transmit_empty_pending_ = false;
        UpdateInterrupt();
      }
      return id | (fifo_enabled_ ? kIirFifoEnabled : 0);
    }
    case kLineControl:
      return line_control_;
    case kModemControl:
      return modem_control_;
    case kLineStatus:
      return (input_.empty() ? 0 : kLsrDataReady) | kLsrTransmitEmpty | kLsrIdle;
    case kModemStatus:
      if (modem_control_ & kMcrLoopback) {
        // Loopback wires the modem outputs back to the inputs; Linux's
        // 8250 probe checks this.
        return ((modem_control_ & kMcrRts) ? kMsrCts : 0) |
               ((modem_control_ & kMcrDtr) ? kMsrDsr : 0) |
               ((modem_control_ & kMcrOut1) ? kMsrRi : 0) |
               ((modem_control_ & kMcrOut2) ? kMsrDcd : 0);
      }
      return kMsrDcd | kMsrDsr | kMsrCts;
    case kScratch:
      return scratch_;
  }
  return 0xff;
}

void Serial::WriteRegister(uint64_t offset, uint8_t value) {
  bool divisor_latch = (line_control_ & kLcrDivisorLatch) != 0;
  switch (offset) {
    case kData:
      if (divisor_latch) {
        divisor_low_ = value;
        return;
      }
      if (modem_control_ & kMcrLoopback) {
        if (input_.size() < kInputCapacity) input_.push_back(value);
      } else {
        Emit(value);
      }
      // The byte leaves at once, so the holding register is empty again.
      transmit_empty_pending_ = true;
      interrupt_asserted_ = false;  // a new THRE event, even if one was pending
      UpdateInterrupt();
      return;
    case kInterruptEnable:
      if (divisor_latch) {
        divisor_high_ = value;
        return;
      }
      // Enabling the transmit-empty interrupt with an empty THR fires it.
      if ((value & kIerTransmitEmpty) && !(interrupt_enable_ & kIerTransmitEmpty)) {
        transmit_empty_pending_ = true;
      }
      interrupt_enable_ = value & 0x0f;
      UpdateInterrupt();
      return;
    case kInterruptId:  // FIFO control on write
      fifo_enabled_ = (value & kFcrEnable) != 0;
      if (value & kFcrClearReceive) input_.clear();
      UpdateInterrupt();
      return;
    case kLineControl:
      line_control_ = value;
      return;
    case kModemControl:
      modem_control_ = value & 0x1f;
      return;
    case kScratch:
      scratch_ = value;
      return;
    default:
      return;  // line and modem status are read-only
  }
}

void Serial::Emit(uint8_t byte) {
  GlobalMetrics().uart_write_count.Add();
  output_.Push(byte);
}

uint8_t Serial::InterruptIdentification() const {
  if ((interrupt_enable_ & kIerReceivedData) && !input_.empty()) return kIirReceivedData;
  if ((interrupt_enable_ & kIerTransmitEmpty) && transmit_empty_pending_) {
    return kIirTransmitEmpty;
  }
  return kIirNone;
}

void Serial::UpdateInterrupt() {
  bool pending = InterruptIdentification() != kIirNone;
  // The line goes through the IOAPIC as an edge: signal each new event.
  if (pending && !interrupt_asserted_ && raise_interrupt_) raise_interrupt_();
  interrupt_asserted_ = pending;
}

}  // namespace ember
