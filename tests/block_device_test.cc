// virtio-blk at the device level: rings written by hand into real guest
// memory, the device's own worker thread serving them from a real file.
// Every malformed request a hostile driver can write is answered (IOERR,
// UNSUPP, a chain returned unread, or DEVICE_NEEDS_RESET) and the device
// never touches bytes outside the guest's buffers and the file's sectors.
#include "devices/virtio/block_device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/virtio_blk.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "arch/x86_64/e820.h"
#include "tests/test_util.h"

namespace ember {
namespace {

constexpr uint64_t kDescriptors = 0x10000;
constexpr uint64_t kAvailable = 0x11000;
constexpr uint64_t kUsed = 0x12000;
constexpr uint64_t kHeader = 0x20000;
constexpr uint64_t kData = 0x21000;
constexpr uint64_t kStatus = 0x30000;
constexpr uint16_t kQueueSize = 16;
constexpr uint16_t kNext = 1, kWrite = 2, kIndirect = 4;

struct Desc {
  uint64_t address;
  uint32_t length;
  uint16_t flags;
  uint16_t next;
};

class BlockDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // spdlog makes its default logger (and asks isatty) on first use; the
    // worker's filter forbids that ioctl, as ember's main() makes it first.
    spdlog::default_logger();
    Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(1 << 20));
    ASSERT_TRUE(memory.ok()) << memory.status().message();
    memory_.emplace(std::move(*memory));
    std::vector<uint8_t> contents(64 * 1024);
    for (size_t i = 0; i < contents.size(); ++i) contents[i] = static_cast<uint8_t>(i * 13 + 5);
    testing::WriteFile(dir_.File("disk.img"), contents);
    kick_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    interrupt_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  }

  void Create(bool read_only = false, bool flush = false, bool async_io = false) {
    Result<UniqueFd> file = BlockDevice::OpenBackingFile(dir_.File("disk.img"), read_only);
    ASSERT_TRUE(file.ok()) << file.status().message();
    Result<std::shared_ptr<BlockDevice>> device = BlockDevice::Create(
        {"disk_id", read_only, flush, kQueueSize, {}, async_io}, std::move(*file));
    ASSERT_TRUE(device.ok()) << device.status().message();
    device_ = *device;
    queue_ = {kQueueSize, true, kDescriptors, kAvailable, kUsed};
    const int kicks[] = {kick_.get()};
    Status activated = device_->Activate(
        Activation{kVirtioFeatureVersion1, *memory_, {&queue_, 1}, kicks, interrupt_.get(), [this] {
                     needs_reset_ = true;
                   }});
    ASSERT_TRUE(activated.ok());
  }

  void TearDown() override {
    if (device_) device_->Reset();
  }

  void PutDesc(uint16_t index, Desc desc) {
    ASSERT_TRUE(memory_->WriteObject(kDescriptors + 16 * index, desc).ok());
  }
  void PutHeader(uint32_t type, uint64_t sector, uint64_t at = kHeader) {
    virtio_blk_outhdr header{type, 0, sector};
    ASSERT_TRUE(memory_->WriteObject(at, header).ok());
  }
  template <typename T>
  T Get(uint64_t address) {
    T value{};
    EXPECT_TRUE(memory_->Read(address, {reinterpret_cast<uint8_t*>(&value), sizeof(T)}).ok());
    return value;
  }
  // Makes descriptor `head` available (as the driver's next entry), kicks,
  // and waits for the device to use it. Returns the used length, or -1.
  void Publish(uint16_t head, uint16_t advance = 1) {
    EXPECT_TRUE(memory_->WriteObject(kAvailable + 4 + 2 * (avail_ % kQueueSize), head).ok());
    avail_ += advance;
    EXPECT_TRUE(memory_->WriteObject<uint16_t>(kAvailable + 2, avail_).ok());
    uint64_t one = 1;
    EXPECT_EQ(write(kick_.get(), &one, sizeof(one)), 8);
  }
  int64_t Submit(uint16_t head = 0) {
    Publish(head);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (Get<uint16_t>(kUsed + 2) == used_) {
      if (std::chrono::steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    uint32_t id = Get<uint32_t>(kUsed + 4 + 8 * (used_ % kQueueSize));
    int64_t length = Get<uint32_t>(kUsed + 8 + 8 * (used_ % kQueueSize));
    EXPECT_EQ(id, head);
    ++used_;
    return length;
  }
  // Header (desc 0), one data buffer (desc 1), status (desc 2).
  int64_t Request(uint32_t type, uint64_t sector, uint32_t bytes, bool device_writes) {
    PutHeader(type, sector);
    PutDesc(0, {kHeader, 16, kNext, 1});
    PutDesc(1, {kData, bytes, static_cast<uint16_t>(kNext | (device_writes ? kWrite : 0)), 2});
    PutDesc(2, {kStatus, 1, kWrite, 0});
    EXPECT_TRUE(memory_->WriteObject<uint8_t>(kStatus, 0xee).ok());
    return Submit();
  }
  uint8_t StatusByte() { return Get<uint8_t>(kStatus); }

  testing::TempDir dir_;
  std::optional<GuestMemory> memory_;
  UniqueFd kick_, interrupt_;
  VirtQueueState queue_;
  std::shared_ptr<BlockDevice> device_;
  std::atomic<bool> needs_reset_{false};
  uint16_t avail_ = 0, used_ = 0;
};

TEST_F(BlockDeviceTest, ReadsWritesFlushesAndAnswersGetId) {
  Create(false, true);
  EXPECT_EQ(device_->capacity_sectors(), 128u);
  EXPECT_NE(device_->device_features() & (1ull << VIRTIO_BLK_F_FLUSH), 0u);
  ASSERT_EQ(Request(VIRTIO_BLK_T_IN, 2, 1024, true), 1025);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_OK);
  for (uint64_t i = 0; i < 1024; ++i) {
    ASSERT_EQ(Get<uint8_t>(kData + i), static_cast<uint8_t>((1024 + i) * 13 + 5)) << i;
  }
  std::vector<uint8_t> ones(512, 0x11);
  ASSERT_TRUE(memory_->Write(kData, ones).ok());
  ASSERT_EQ(Request(VIRTIO_BLK_T_OUT, 127, 512, false), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_OK);
  ASSERT_EQ(Request(VIRTIO_BLK_T_FLUSH, 0, 0, false), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_OK);
  std::string file = testing::ReadFile(dir_.File("disk.img"));
  EXPECT_EQ(file.substr(127 * 512), std::string(512, '\x11'));
  ASSERT_EQ(Request(VIRTIO_BLK_T_GET_ID, 0, 20, true), 21);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_OK);
  EXPECT_EQ(Get<uint64_t>(kData) & 0xffffffffffffff, 0x64695f6b736964u);  // "disk_id"
  uint64_t interrupts = 0;
  EXPECT_EQ(read(interrupt_.get(), &interrupts, sizeof(interrupts)), 8) << "no interrupt";
  EXPECT_GT(interrupts, 0u);
}

TEST_F(BlockDeviceTest, AsyncEngineReadsWritesAndFlushesThroughIoUring) {
  Create(false, true, /*async_io=*/true);
  ASSERT_EQ(Request(VIRTIO_BLK_T_IN, 2, 1024, true), 1025);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_OK);
  for (uint64_t i = 0; i < 1024; ++i) {
    ASSERT_EQ(Get<uint8_t>(kData + i), static_cast<uint8_t>((1024 + i) * 13 + 5)) << i;
  }
  std::vector<uint8_t> ones(512, 0x22);
  ASSERT_TRUE(memory_->Write(kData, ones).ok());
  ASSERT_EQ(Request(VIRTIO_BLK_T_OUT, 5, 512, false), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_OK);
  ASSERT_EQ(Request(VIRTIO_BLK_T_FLUSH, 0, 0, false), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_OK);
  EXPECT_EQ(testing::ReadFile(dir_.File("disk.img")).substr(5 * 512, 512),
            std::string(512, '\x22'));
  // Checks before the ring are the same as Sync's.
  EXPECT_EQ(Request(VIRTIO_BLK_T_IN, 128, 512, true), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_IOERR);
}

TEST_F(BlockDeviceTest, RefusesRequestsThatAreWrongOrOutsideTheDrive) {
  Create(/*read_only=*/true);
  EXPECT_NE(device_->device_features() & (1ull << VIRTIO_BLK_F_RO), 0u);
  std::string before = testing::ReadFile(dir_.File("disk.img"));
  EXPECT_EQ(Request(VIRTIO_BLK_T_OUT, 0, 512, false), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_IOERR) << "a write to a read-only drive";
  EXPECT_EQ(Request(VIRTIO_BLK_T_IN, 128, 512, true), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_IOERR) << "a read past the end";
  EXPECT_EQ(Request(VIRTIO_BLK_T_IN, 127, 1024, true), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_IOERR) << "a read that runs past the end";
  EXPECT_EQ(Request(VIRTIO_BLK_T_IN, ~0ull, 512, true), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_IOERR) << "a sector that overflows";
  EXPECT_EQ(Request(VIRTIO_BLK_T_IN, 0, 100, true), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_IOERR) << "not whole sectors";
  EXPECT_EQ(Request(VIRTIO_BLK_T_IN, 0, 512, false), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_IOERR) << "a read into a buffer the device may not write";
  EXPECT_EQ(Request(VIRTIO_BLK_T_DISCARD, 0, 512, false), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_UNSUPP);
  // A header shorter than 16 bytes.
  PutDesc(0, {kHeader, 8, kNext, 2});
  EXPECT_EQ(Submit(), 1);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_IOERR);
  // A status byte the device may not write: returned unread.
  PutDesc(0, {kHeader, 16, kNext, 2});
  PutDesc(2, {kStatus, 1, 0, 0});
  ASSERT_TRUE(memory_->WriteObject<uint8_t>(kStatus, 0xee).ok());
  EXPECT_EQ(Submit(), 0);
  EXPECT_EQ(StatusByte(), 0xee);
  EXPECT_EQ(testing::ReadFile(dir_.File("disk.img")), before);
  EXPECT_FALSE(needs_reset_);
}

TEST_F(BlockDeviceTest, MalformedChainsAreReturnedUnread) {
  Create();
  PutHeader(VIRTIO_BLK_T_IN, 0);
  PutDesc(2, {kStatus, 1, kWrite, 0});
  // Outside guest memory, straddling its end, an indirect table, a loop,
  // a next index past the table.
  const Desc bad[] = {{0x7fff0000, 512, kNext | kWrite, 2},
                      {(1 << 20) - 256, 512, kNext | kWrite, 2},
                      {kData, 512, kNext | kIndirect, 2},
                      {kData, 512, kNext | kWrite, 0},
                      {kData, 512, kNext | kWrite, 99}};
  for (const Desc& data : bad) {
    PutDesc(0, {kHeader, 16, kNext, 1});
    PutDesc(1, data);
    ASSERT_TRUE(memory_->WriteObject<uint8_t>(kStatus, 0xee).ok());
    EXPECT_EQ(Submit(), 0);
    EXPECT_EQ(StatusByte(), 0xee);
  }
  // The device goes on serving.
  EXPECT_EQ(Request(VIRTIO_BLK_T_IN, 0, 512, true), 513);
  EXPECT_EQ(StatusByte(), VIRTIO_BLK_S_OK);
  EXPECT_FALSE(needs_reset_);
}

TEST_F(BlockDeviceTest, AnAvailableRingThatMakesNoSenseAsksForAReset) {
  Create();
  Publish(/*head=*/0, /*advance=*/kQueueSize + 3);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!needs_reset_ && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(needs_reset_);
  // A head index past the table, after a reset and a new activation.
  device_->Reset();
  needs_reset_ = false;
  avail_ = used_ = 0;
  ASSERT_TRUE(memory_->WriteObject<uint16_t>(kUsed + 2, 0).ok());
  const int kicks[] = {kick_.get()};
  ASSERT_TRUE(device_
                  ->Activate(Activation{kVirtioFeatureVersion1,
                                        *memory_,
                                        {&queue_, 1},
                                        kicks,
                                        interrupt_.get(),
                                        [this] { needs_reset_ = true; }})
                  .ok());
  Publish(/*head=*/kQueueSize + 1);
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!needs_reset_ && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(needs_reset_);
}

TEST_F(BlockDeviceTest, ANewFileChangesTheCapacityAndTheData) {
  Create();
  testing::WriteFile(dir_.File("bigger.img"), std::string(1 << 20, 'z'));
  Result<UniqueFd> file = BlockDevice::OpenBackingFile(dir_.File("bigger.img"), false);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(device_->ReplaceFile(std::move(*file)).ok());
  EXPECT_EQ(device_->capacity_sectors(), 2048u);
  uint8_t config[8];
  device_->ReadConfig(0, config);
  uint64_t capacity;
  std::memcpy(&capacity, config, 8);
  EXPECT_EQ(capacity, 2048u);
  EXPECT_EQ(Request(VIRTIO_BLK_T_IN, 2000, 512, true), 513);
  EXPECT_EQ(Get<uint8_t>(kData), 'z');
}

TEST_F(BlockDeviceTest, AfterResetKicksAreNotServed) {
  Create();
  device_->Reset();
  PutHeader(VIRTIO_BLK_T_IN, 0);
  PutDesc(0, {kHeader, 16, kNext, 1});
  PutDesc(1, {kData, 512, kNext | kWrite, 2});
  PutDesc(2, {kStatus, 1, kWrite, 0});
  ASSERT_TRUE(memory_->WriteObject<uint16_t>(kAvailable + 4, 0).ok());
  ASSERT_TRUE(memory_->WriteObject<uint16_t>(kAvailable + 2, 1).ok());
  uint64_t one = 1;
  ASSERT_EQ(write(kick_.get(), &one, sizeof(one)), 8);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(Get<uint16_t>(kUsed + 2), 0);
  device_.reset();  // the worker ends with the device
}

TEST(BlockBackingFileTest, RefusesWhatIsNotADriveFile) {
  testing::TempDir dir;
  EXPECT_NE(BlockDevice::OpenBackingFile(dir.File("missing"), true)
                .status()
                .message()
                .find("No such file or directory"),
            std::string::npos);
  EXPECT_NE(BlockDevice::OpenBackingFile(dir.path(), true)
                .status()
                .message()
                .find("is not a regular file or a block device"),
            std::string::npos);
  EXPECT_NE(
      BlockDevice::OpenBackingFile(dir.path(), false).status().message().find("Is a directory"),
      std::string::npos);
  ASSERT_EQ(mkfifo(dir.File("fifo").c_str(), 0600), 0);
  EXPECT_NE(BlockDevice::OpenBackingFile(dir.File("fifo"), true)
                .status()
                .message()
                .find("is not a regular file"),
            std::string::npos);
}

}  // namespace
}  // namespace ember
