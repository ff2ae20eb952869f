#include "devices/i8042.h"

#include <gtest/gtest.h>

#include "base/metrics.h"

namespace ember {
namespace {

struct I8042Fixture {
  int resets = 0, interrupts = 0;
  I8042 device{[this] { ++resets; }, [this] { ++interrupts; }};
  uint8_t In(uint64_t offset) {
    uint8_t value = 0;
    device.Read(offset, {&value, 1});
    return value;
  }
  void Out(uint64_t offset, uint8_t value) { device.Write(offset, {&value, 1}); }
};

TEST(I8042Test, CtrlAltDelArrivesOneInterruptPerByte) {
  I8042Fixture kbd;
  kbd.device.SendCtrlAltDel();
  EXPECT_EQ(kbd.interrupts, 1);
  std::vector<uint8_t> codes;
  while (kbd.In(4) & 0x01) codes.push_back(kbd.In(0));
  EXPECT_EQ(codes, (std::vector<uint8_t>{0x1d, 0x38, 0x53, 0xd3, 0xb8, 0x9d}));
  EXPECT_EQ(kbd.interrupts, 6) << "each byte after the first raises the line again";
}

TEST(I8042Test, ResetCommandAndControllerProbe) {
  I8042Fixture kbd;
  EXPECT_EQ(kbd.In(4) & 0x10, 0x10) << "keyboard not locked";
  kbd.Out(4, 0xaa);
  EXPECT_EQ(kbd.In(0), 0x55) << "self-test passed";
  kbd.Out(4, 0x60);
  kbd.Out(0, 0x00);  // interrupts off
  kbd.Out(4, 0x20);
  EXPECT_EQ(kbd.In(0), 0x00);
  kbd.device.SendCtrlAltDel();
  EXPECT_EQ(kbd.interrupts, 0) << "the command byte masks the keyboard interrupt";
  kbd.Out(4, 0xfe);
  EXPECT_EQ(kbd.resets, 1);
}

// A guest that writes keyboard commands and never reads fills the output
// buffer and no more: the rest are dropped and counted, and what was kept
// still reads out in order.
TEST(I8042Test, OutputBufferIsBoundedForAGuestThatNeverReads) {
  I8042Fixture kbd;
  const uint64_t missed_before = GlobalMetrics().i8042_missed_writes.Read();
  for (int i = 0; i < 100000; ++i) kbd.Out(0, 0xed);  // each queues an ACK (0xfa)
  EXPECT_EQ(GlobalMetrics().i8042_missed_writes.Read() - missed_before,
            100000u - I8042::kOutputCapacity);
  size_t read = 0;
  while (kbd.In(4) & 0x01) {
    EXPECT_EQ(kbd.In(0), 0xfa);
    ++read;
  }
  EXPECT_EQ(read, I8042::kOutputCapacity);
  kbd.device.SendCtrlAltDel();  // room again
  std::vector<uint8_t> codes;
  while (kbd.In(4) & 0x01) codes.push_back(kbd.In(0));
  EXPECT_EQ(codes, (std::vector<uint8_t>{0x1d, 0x38, 0x53, 0xd3, 0xb8, 0x9d}));
}

}  // namespace
}  // namespace ember
