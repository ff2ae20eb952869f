#include "devices/acpi_power.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>

#include "arch/x86_64/layout.h"
#include "kvm/bus.h"

namespace ember {
namespace {

// The device on a port I/O bus at the ports the FADT names, with counters
// in place of ending the VM.
class AcpiPowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto device = std::make_shared<AcpiPowerDevice>(
        layout::kAcpiResetValue, [this] { ++power_offs_; }, [this] { ++resets_; });
    ASSERT_TRUE(
        bus_.Insert(device, layout::kAcpiSleepControlPort, AcpiPowerDevice::kPortSpan, "acpi")
            .ok());
  }
  void Out(uint16_t port, uint8_t value) { EXPECT_TRUE(bus_.Write(port, {&value, 1})); }

  Bus bus_{"port I/O"};
  int power_offs_ = 0;
  int resets_ = 0;
};

TEST_F(AcpiPowerTest, PortsMatchTheDeviceOffsets) {
  EXPECT_EQ(layout::kAcpiSleepStatusPort - layout::kAcpiSleepControlPort,
            AcpiPowerDevice::kSleepStatusOffset);
  EXPECT_EQ(layout::kAcpiResetPort - layout::kAcpiSleepControlPort, AcpiPowerDevice::kResetOffset);
}

TEST_F(AcpiPowerTest, SleepEnableWithTypeFivePowersOff) {
  // SLP_EN (0x20) | SLP_TYP 5 << 2 (0x14): what Linux writes for S5.
  Out(layout::kAcpiSleepControlPort, 0x34);
  EXPECT_EQ(power_offs_, 1);
  EXPECT_EQ(resets_, 0);
  // Reserved bits (0, 1, 6, 7) do not matter.
  Out(layout::kAcpiSleepControlPort, 0x34 | 0xc3);
  EXPECT_EQ(power_offs_, 2);
}

TEST_F(AcpiPowerTest, OtherSleepWritesAreIgnored) {
  Out(layout::kAcpiSleepControlPort, 0x14);  // type 5 without SLP_EN
  Out(layout::kAcpiSleepControlPort, 0x20);  // SLP_EN, type 0
  for (uint8_t type : {1, 2, 3, 4, 6, 7}) {
    Out(layout::kAcpiSleepControlPort, static_cast<uint8_t>(0x20 | type << 2));
  }
  Out(layout::kAcpiSleepStatusPort, 0x34);  // the status register, not control
  Out(layout::kAcpiSleepStatusPort, 0x80);  // clearing WAK_STS, as Linux does first
  EXPECT_EQ(power_offs_, 0);
  EXPECT_EQ(resets_, 0);
}

TEST_F(AcpiPowerTest, ResetValueResetsOthersDoNot) {
  Out(layout::kAcpiResetPort, static_cast<uint8_t>(layout::kAcpiResetValue + 1));
  Out(layout::kAcpiResetPort, 0);
  EXPECT_EQ(resets_, 0);
  Out(layout::kAcpiResetPort, layout::kAcpiResetValue);
  EXPECT_EQ(resets_, 1);
  EXPECT_EQ(power_offs_, 0);
}

TEST_F(AcpiPowerTest, RegistersReadZeroAtAnyWidth) {
  for (uint16_t port = layout::kAcpiSleepControlPort; port <= layout::kAcpiResetPort; ++port) {
    uint8_t byte = 0xff;
    EXPECT_TRUE(bus_.Read(port, {&byte, 1}));
    EXPECT_EQ(byte, 0) << port;
  }
  uint8_t dword[4] = {0xff, 0xff, 0xff, 0xff};
  EXPECT_TRUE(bus_.Read(layout::kAcpiSleepStatusPort, dword));
  for (uint8_t byte : dword) EXPECT_EQ(byte, 0);
  uint8_t after = 0;
  EXPECT_FALSE(bus_.Read(layout::kAcpiResetPort + 1, {&after, 1})) << "the device spans 3 ports";
}

TEST_F(AcpiPowerTest, WideWriteUsesTheLowByte) {
  uint8_t word[2] = {0x34, 0x00};
  EXPECT_TRUE(bus_.Write(layout::kAcpiSleepControlPort, word));
  EXPECT_EQ(power_offs_, 1);
}

}  // namespace
}  // namespace ember
