#include "devices/i8042.h"

#include "base/metrics.h"

namespace ember {
namespace {

constexpr uint64_t kDataOffset = 0;
constexpr uint64_t kCommandOffset = 4;

constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kStatusCommandLast = 0x08;
constexpr uint8_t kStatusKeyboardEnabled = 0x10;  // "keylock off": Linux warns otherwise

constexpr uint8_t kCmdReadCommandByte = 0x20;
constexpr uint8_t kCmdWriteCommandByte = 0x60;
constexpr uint8_t kCmdDisableAux = 0xa7;
constexpr uint8_t kCmdEnableAux = 0xa8;
constexpr uint8_t kCmdTestAux = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdTestKeyboard = 0xab;
constexpr uint8_t kCmdDisableKeyboard = 0xad;
constexpr uint8_t kCmdEnableKeyboard = 0xae;
constexpr uint8_t kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdPulseReset = 0xfe;

constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kCommandByteKeyboardInterrupt = 0x01;

// Set-1 scan codes (the controller translates by default).
constexpr uint8_t kCtrlAltDel[] = {0x1d, 0x38, 0x53, 0xd3, 0xb8, 0x9d};

}  // namespace

void I8042::Read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mutex_);
  uint8_t value = 0;
  if (offset == kCommandOffset) {
    value = kStatusSystemFlag | kStatusCommandLast | kStatusKeyboardEnabled |
            (OutputEmpty() ? 0 : kStatusOutputFull);
  } else if (offset == kDataOffset && !OutputEmpty()) {
    value = PopOutput();
    // Linux reads one byte per interrupt: signal the next one.
    if (!OutputEmpty() && (command_byte_ & kCommandByteKeyboardInterrupt)) raise_interrupt_();
  }
  data[0] = value;
  for (size_t i = 1; i < data.size(); ++i) data[i] = 0;
}

void I8042::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mutex_);
  uint8_t value = data[0];
  if (offset == kDataOffset) {
    if (pending_command_ == kCmdWriteCommandByte) command_byte_ = value;
    // Keyboard commands (LEDs, resets) are acknowledged like a real keyboard.
    if (pending_command_ == 0) PushOutput(0xfa);
    pending_command_ = 0;
    return;
  }
  if (offset != kCommandOffset) return;
  switch (value) {
    case kCmdReadCommandByte:
      PushOutput(command_byte_);
      break;
    case kCmdWriteCommandByte:
    case kCmdWriteOutputPort:
      pending_command_ = value;
      break;
    case kCmdSelfTest:
      PushOutput(kSelfTestPassed);
      break;
    case kCmdTestKeyboard:
      PushOutput(0x00);
      break;
    case kCmdTestAux:
      PushOutput(0xff);
      break;  // no mouse port
    case kCmdDisableAux:
    case kCmdEnableAux:
    case kCmdDisableKeyboard:
    case kCmdEnableKeyboard:
      break;
    case kCmdPulseReset:
      GlobalMetrics().i8042_reset_count.Add();
      on_reset_();
      break;
    default:
      break;
  }
}

void I8042::SendCtrlAltDel() {
  std::lock_guard lock(mutex_);
  GlobalMetrics().i8042_ctrl_alt_del.Add();
  for (uint8_t code : kCtrlAltDel) PushOutput(code);
  if (command_byte_ & kCommandByteKeyboardInterrupt) raise_interrupt_();
}

void I8042::PushOutput(uint8_t byte) {
  if (output_count_ == kOutputCapacity) {
    GlobalMetrics().i8042_missed_writes.Add();
    return;
  }
  output_[(output_head_ + output_count_) % kOutputCapacity] = byte;
  ++output_count_;
}

uint8_t I8042::PopOutput() {
  uint8_t byte = output_[output_head_];
  output_head_ = (output_head_ + 1) % kOutputCapacity;
  --output_count_;
  return byte;
}

}  // namespace ember
