#include "devices/serial.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "base/metrics.h"

namespace ember {
namespace {

class SerialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pipe2(pipe_, O_NONBLOCK), 0);
    Result<std::unique_ptr<ConsoleOutput>> output = ConsoleOutput::Create(pipe_[1]);
    ASSERT_TRUE(output.ok());
    output_ = std::move(*output);
    serial_ = std::make_unique<Serial>(*output_, [this] { ++interrupts_; });
  }
  void TearDown() override {
    close(pipe_[0]);
    close(pipe_[1]);
  }
  uint8_t In(uint64_t offset) {
    uint8_t value = 0;
    serial_->Read(offset, {&value, 1});
    return value;
  }
  void Out(uint64_t offset, uint8_t value) { serial_->Write(offset, {&value, 1}); }
  // What the VMM thread would have written to the console by now.
  std::string Output() {
    output_->Drain();
    char buffer[256];
    ssize_t n = read(pipe_[0], buffer, sizeof(buffer));
    return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
  }

  int pipe_[2];
  int interrupts_ = 0;
  std::unique_ptr<ConsoleOutput> output_;
  std::unique_ptr<Serial> serial_;
};

TEST_F(SerialTest, TransmitsBytesAndAlwaysReportsTransmitterEmpty) {
  EXPECT_EQ(In(5) & 0x60, 0x60);
  Out(0, 'o');
  Out(0, 'k');
  EXPECT_EQ(Output(), "ok");
  EXPECT_EQ(interrupts_, 0) << "no interrupts while IER is 0";
}

TEST_F(SerialTest, DivisorLatchDoesNotTransmit) {
  Out(3, 0x80);
  Out(0, 0x01);
  Out(1, 0x00);
  EXPECT_EQ(In(0), 0x01);
  Out(3, 0x03);
  EXPECT_EQ(Output(), "");
  EXPECT_EQ(In(3), 0x03);
}

TEST_F(SerialTest, TransmitEmptyInterruptFiresAndIsAcknowledgedByIir) {
  Out(1, 0x02);
  EXPECT_EQ(interrupts_, 1);
  EXPECT_EQ(In(2) & 0x0f, 0x02);
  EXPECT_EQ(In(2) & 0x0f, 0x01) << "reading IIR acknowledged it";
  Out(0, 'x');
  EXPECT_EQ(interrupts_, 2);
}

TEST_F(SerialTest, InputRaisesReceiveInterruptAndIsRead) {
  Out(1, 0x01);
  const uint8_t input[] = {'h', 'i'};
  EXPECT_EQ(serial_->QueueInput(input), 2u);
  EXPECT_EQ(interrupts_, 1);
  EXPECT_EQ(In(5) & 0x01, 0x01);
  EXPECT_EQ(In(2) & 0x0f, 0x04);
  EXPECT_EQ(In(0), 'h');
  EXPECT_EQ(In(0), 'i');
  EXPECT_EQ(In(5) & 0x01, 0x00);
  EXPECT_EQ(In(2) & 0x0f, 0x01);
}

TEST_F(SerialTest, InputQueueIsBounded) {
  std::vector<uint8_t> flood(Serial::kInputCapacity + 10, 'a');
  EXPECT_EQ(serial_->QueueInput(flood), Serial::kInputCapacity);
  EXPECT_EQ(serial_->InputSpace(), 0u);
}

TEST_F(SerialTest, LoopbackMirrorsModemControlAsLinuxProbes) {
  Out(4, 0x10 | 0x0a);  // loopback, RTS, OUT2
  EXPECT_EQ(In(6) & 0xf0, 0x90);
  Out(0, 'z');
  EXPECT_EQ(Output(), "") << "loopback keeps bytes inside the UART";
  EXPECT_EQ(In(0), 'z');
  Out(4, 0x0b);
  EXPECT_EQ(In(6) & 0xf0, 0xb0);
}

TEST_F(SerialTest, IgnoresAccessesOutsideItsRegisters) {
  uint8_t value = 0x42;
  serial_->Write(8, {&value, 1});
  EXPECT_EQ(In(8), 0xff);
  EXPECT_EQ(Output(), "");
}

// A reader that stalls: once the fd is full the bytes wait in the buffer
// (one wake-up of the VMM for the whole batch), a buffer's worth beyond
// that drops the oldest, counted; when the reader has caught up and the
// buffer is empty, bytes go straight to the fd again.
TEST_F(SerialTest, StalledReaderCostsTheOldestOutputNotAWait) {
  constexpr size_t kPipe = 4096;
  ASSERT_EQ(fcntl(pipe_[1], F_SETPIPE_SZ, kPipe), static_cast<int>(kPipe));
  auto byte_at = [](size_t i) { return static_cast<char>('a' + i % 26); };
  const uint64_t missed_before = GlobalMetrics().uart_missed_writes.Read();
  const size_t extra = 1000;
  for (size_t i = 0; i < kPipe + ConsoleOutput::kCapacity + extra; ++i) Out(0, byte_at(i));
  uint64_t ready = 0;
  EXPECT_EQ(read(output_->ready_fd(), &ready, sizeof(ready)), 8);
  EXPECT_EQ(ready, 1u) << "one wake-up for the whole batch";
  EXPECT_EQ(GlobalMetrics().uart_missed_writes.Read() - missed_before, extra);

  std::string seen;
  char chunk[kPipe];
  bool drained = false;
  while (!drained) {
    ssize_t n = read(pipe_[0], chunk, sizeof(chunk));
    if (n > 0) seen.append(chunk, static_cast<size_t>(n));
    drained = output_->Drain();
  }
  for (ssize_t n; (n = read(pipe_[0], chunk, sizeof(chunk))) > 0;) {
    seen.append(chunk, static_cast<size_t>(n));
  }
  ASSERT_EQ(seen.size(), kPipe + ConsoleOutput::kCapacity);
  EXPECT_EQ(seen[kPipe - 1], byte_at(kPipe - 1)) << "what the fd took went first";
  EXPECT_EQ(seen[kPipe], byte_at(kPipe + extra)) << "the oldest buffered bytes were dropped";
  EXPECT_EQ(seen.back(), byte_at(kPipe + ConsoleOutput::kCapacity + extra - 1));

  Out(0, 'Z');
  ASSERT_EQ(read(pipe_[0], chunk, 1), 1) << "an empty buffer writes straight through";
  EXPECT_EQ(chunk[0], 'Z');
}

}  // namespace
}  // namespace ember
