#include "kvm/bus.h"

#include <gtest/gtest.h>

#include <vector>

namespace ember {
namespace {

// Records the accesses it sees and answers reads with a fixed byte.
class RecordingDevice : public BusDevice {
 public:
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    reads.push_back(offset);
    for (auto& byte : data) byte = 0x5a;
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    writes.push_back({offset, data[0]});
  }
  std::vector<uint64_t> reads;
  std::vector<std::pair<uint64_t, uint8_t>> writes;
};

TEST(BusTest, DispatchesWithOffsetInsideTheRange) {
  Bus bus("test");
  auto device = std::make_shared<RecordingDevice>();
  ASSERT_TRUE(bus.Insert(device, 0x3f8, 8, "uart").ok());
  uint8_t value = 0x41;
  EXPECT_TRUE(bus.Write(0x3f8, {&value, 1}));
  uint8_t read = 0;
  EXPECT_TRUE(bus.Read(0x3fd, {&read, 1}));
  EXPECT_EQ(read, 0x5a);
  ASSERT_EQ(device->writes.size(), 1u);
  EXPECT_EQ(device->writes[0].first, 0u);
  EXPECT_EQ(device->writes[0].second, 0x41);
  ASSERT_EQ(device->reads.size(), 1u);
  EXPECT_EQ(device->reads[0], 5u);
}

TEST(BusTest, UnmappedReadsSeeAllOnes) {
  Bus bus("test");
  ASSERT_TRUE(bus.Insert(std::make_shared<RecordingDevice>(), 0x60, 5, "i8042").ok());
  uint8_t data[2] = {0, 0};
  EXPECT_FALSE(bus.Read(0x65, data));
  EXPECT_EQ(data[0], 0xff);
  EXPECT_EQ(data[1], 0xff);
  EXPECT_FALSE(bus.Read(0x5f, {data, 1}));
  uint8_t value = 1;
  EXPECT_FALSE(bus.Write(0x1000, {&value, 1}));
}

TEST(BusTest, RejectsOverlapsNamingBothDevices) {
  Bus bus("MMIO");
  ASSERT_TRUE(bus.Insert(std::make_shared<RecordingDevice>(), 0x1000, 0x100, "first").ok());
  ASSERT_TRUE(bus.Insert(std::make_shared<RecordingDevice>(), 0x1100, 0x100, "adjacent").ok());
  Status overlap = bus.Insert(std::make_shared<RecordingDevice>(), 0x10ff, 2, "second");
  ASSERT_FALSE(overlap.ok());
  EXPECT_NE(overlap.message().find("second"), std::string::npos);
  EXPECT_NE(overlap.message().find("first"), std::string::npos);
  EXPECT_FALSE(bus.Insert(std::make_shared<RecordingDevice>(), 0x0, 0x2000, "covering").ok());
  EXPECT_FALSE(bus.Insert(std::make_shared<RecordingDevice>(), 0x1050, 1, "inside").ok());
}

TEST(BusTest, RejectsEmptyAndWrappingRanges) {
  Bus bus("test");
  EXPECT_FALSE(bus.Insert(std::make_shared<RecordingDevice>(), 0x10, 0, "empty").ok());
  EXPECT_FALSE(bus.Insert(std::make_shared<RecordingDevice>(), ~uint64_t{0} - 1, 4, "wraps").ok());
}

}  // namespace
}  // namespace ember
