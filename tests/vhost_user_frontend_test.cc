// The vhost-user frontend against a scripted fake backend on a socketpair:
// the message sequence, the payloads and fds it sends, and how it treats
// replies it cannot trust.
#include "devices/vhost_user/vhost_user_frontend.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "arch/x86_64/e820.h"
#include "arch/x86_64/layout.h"
#include "devices/virtio/device_control.h"
#include "devices/virtio/vhost_user_fs.h"

namespace ember {
namespace {

using namespace vhost_user;

struct Received {
  Header header{};
  std::vector<uint8_t> payload;
  int fds = 0;
};

// Reads one message, counting and closing the fds that came with it.
bool ReceiveMessage(int fd, Received& message) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  iovec iov{&message.header, sizeof(Header)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (recvmsg(fd, &msg, MSG_WAITALL) != sizeof(Header)) return false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      close(received);
    }
    message.fds += static_cast<int>(count);
  }
  message.payload.resize(message.header.size);
  return message.header.size == 0 || recv(fd, message.payload.data(), message.header.size,
                                          MSG_WAITALL) == static_cast<ssize_t>(message.header.size);
}

void Reply(int fd, uint32_t request, const void* payload, uint32_t size,
           uint32_t flags = kVersion | kFlagReply) {
  Header header{request, flags, size};
  send(fd, &header, sizeof(header), MSG_NOSIGNAL);
  if (size > 0) send(fd, payload, size, MSG_NOSIGNAL);
}

void ReplyU64(int fd, uint32_t request, uint64_t value) { Reply(fd, request, &value, 8); }

// A backend that answers like virtiofsd and records what it got.
class FakeBackend {
 public:
  // `stall_on`: a request the backend reads but never answers, nor any
  // after it (a backend that hangs mid-conversation).
  explicit FakeBackend(uint64_t features, uint64_t protocol_features, uint32_t stall_on = 0)
      : features_(features), protocol_(protocol_features), stall_on_(stall_on) {
    int pair[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    frontend_fd_ = pair[0];
    backend_fd_ = pair[1];
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeBackend() {
    Stop();
    close(backend_fd_);
  }
  int TakeFrontendFd() { return frontend_fd_; }
  // GET_VRING_BASE answered only after `delay` (a backend still busy with
  // the ring when it is asked to stop).
  void DelayVringBase(std::chrono::milliseconds delay) { vring_base_delay_ms_ = delay.count(); }
  int rings_enabled() const { return rings_enabled_; }
  int vring_bases_answered() const { return vring_bases_answered_; }
  // Waits for the frontend to end the conversation; true if it did in time.
  bool WaitForHangUp(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return hung_up_cv_.wait_for(lock, limit, [this] { return hung_up_; });
  }
  // Ends the conversation from the backend's side, joins the backend thread
  // and returns what it received. The thread writes the log: it is read
  // only here, after the join.
  std::vector<Received> StopAndTakeLog() {
    Stop();
    return std::move(log_);
  }

 private:
  void Stop() {
    if (!thread_.joinable()) return;
    shutdown(backend_fd_, SHUT_RDWR);
    thread_.join();
  }
  void Serve() {
    Received message;
    bool reply_ack = false;
    bool stalled = false;
    while (ReceiveMessage(backend_fd_, message)) {
      log_.push_back(message);
      stalled = stalled || (stall_on_ != 0 && message.header.request == stall_on_);
      if (stalled) {
        message = Received{};
        continue;
      }
      switch (message.header.request) {
        case kGetFeatures:
          ReplyU64(backend_fd_, kGetFeatures, features_);
          break;
        case kGetProtocolFeatures:
          ReplyU64(backend_fd_, kGetProtocolFeatures, protocol_);
          break;
        case kGetMaxMemSlots:
          ReplyU64(backend_fd_, kGetMaxMemSlots, 32);
          break;
        case kGetQueueNum:
          ReplyU64(backend_fd_, kGetQueueNum, 2);
          break;
        case kGetVringBase:
          std::this_thread::sleep_for(std::chrono::milliseconds(vring_base_delay_ms_.load()));
          ++vring_bases_answered_;
          Reply(backend_fd_, kGetVringBase, message.payload.data(), 8);
          break;
        default:
          if (message.header.request == kSetVringEnable) ++rings_enabled_;
          if (message.header.request == kSetProtocolFeatures) {
            uint64_t value;
            std::memcpy(&value, message.payload.data(), 8);
            reply_ack = (value & kProtocolReplyAck) != 0;
          }
          if (reply_ack && (message.header.flags & kFlagNeedReply)) {
            ReplyU64(backend_fd_, message.header.request, 0);
          }
      }
      message = Received{};
    }
    std::lock_guard lock(mutex_);
    hung_up_ = true;
    hung_up_cv_.notify_all();
  }
  uint64_t features_, protocol_;
  uint32_t stall_on_;
  std::mutex mutex_;
  std::condition_variable hung_up_cv_;
  bool hung_up_ = false;
  std::atomic<int64_t> vring_base_delay_ms_{0};
  std::atomic<int> rings_enabled_{0};
  std::atomic<int> vring_bases_answered_{0};
  int frontend_fd_, backend_fd_;
  std::vector<Received> log_;  // the backend thread's until Stop joined it
  std::thread thread_;
};

constexpr uint64_t kVersion1 = 1ull << 32;

TEST(VhostUserFrontendTest, NegotiatesAndStartsInQemusOrder) {
  Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(16 * layout::kMiB));
  ASSERT_TRUE(memory.ok());
  int kick = eventfd(0, 0), call = eventfd(0, 0);
  std::vector<Received> log;
  {
    FakeBackend backend(kVersion1 | kFeatureProtocolFeatures | 1,
                        kProtocolReplyAck | kProtocolConfigureMemSlots | kProtocolMq | (1 << 1));
    Result<std::unique_ptr<VhostUserFrontend>> frontend = VhostUserFrontend::Negotiate(
        VhostUserConnection(UniqueFd(backend.TakeFrontendFd()), "fs device t"));
    ASSERT_TRUE(frontend.ok()) << frontend.status().message();
    EXPECT_EQ((*frontend)->backend_features(), kVersion1 | kFeatureProtocolFeatures | 1);
    EXPECT_EQ((*frontend)->protocol_features(),
              kProtocolReplyAck | kProtocolConfigureMemSlots | kProtocolMq)
        << "only what ember asks for";
    EXPECT_EQ(*(*frontend)->BackendQueueCount(), 2u);
    VringSetup ring{1, 64, 0x100000, 0x101000, 0x102000, 0, kick, call};
    ASSERT_TRUE((*frontend)->Start(kVersion1, *memory, {&ring, 1}).ok());
    ASSERT_TRUE((*frontend)->Stop().ok());
    frontend->reset();
    // The backend thread has read everything once Stop had its reply.
    log = backend.StopAndTakeLog();
  }
  std::vector<uint32_t> order;
  for (const Received& m : log) order.push_back(m.header.request);
  EXPECT_EQ(order,
            (std::vector<uint32_t>{kGetFeatures, kGetProtocolFeatures, kSetProtocolFeatures,
                                   kSetOwner, kGetQueueNum, kSetFeatures, kGetMaxMemSlots,
                                   kAddMemReg, kSetVringNum, kSetVringBase, kSetVringAddr,
                                   kSetVringKick, kSetVringCall, kSetVringEnable, kGetVringBase}));
  auto find = [&](uint32_t request) -> const Received& {
    for (const Received& m : log) {
      if (m.header.request == request) return m;
    }
    return log.front();
  };
  EXPECT_TRUE(find(kSetOwner).header.flags & kFlagNeedReply) << "REPLY_ACK asks for acks";
  uint64_t features;
  std::memcpy(&features, find(kSetFeatures).payload.data(), 8);
  EXPECT_EQ(features, kVersion1 | kFeatureProtocolFeatures);
  const Received& region = find(kAddMemReg);
  EXPECT_EQ(region.fds, 1) << "the guest memory memfd";
  SingleMemoryRegion described;
  std::memcpy(&described, region.payload.data(), sizeof(described));
  EXPECT_EQ(described.region.guest_address, 0u);
  EXPECT_EQ(described.region.size, 16 * layout::kMiB);
  EXPECT_EQ(described.region.user_address, reinterpret_cast<uint64_t>(memory->regions()[0].host));
  VringAddr address;
  std::memcpy(&address, find(kSetVringAddr).payload.data(), sizeof(address));
  EXPECT_EQ(address.index, 1u);
  EXPECT_EQ(address.descriptor, reinterpret_cast<uint64_t>(memory->HostAddress(0x100000, 1)));
  EXPECT_EQ(address.available, reinterpret_cast<uint64_t>(memory->HostAddress(0x101000, 1)));
  EXPECT_EQ(address.used, reinterpret_cast<uint64_t>(memory->HostAddress(0x102000, 1)));
  EXPECT_EQ(find(kSetVringKick).fds, 1);
  EXPECT_EQ(find(kSetVringCall).fds, 1);
  close(kick);
  close(call);
}

// A backend that stops answering while the driver starts the device must
// not leave the device dead: ember drops that connection (the reconnector
// then sees a hang-up) and hands the rings to the next backend, kicking
// every queue so requests queued meanwhile are served.
TEST(VhostUserFrontendTest, DeviceWhoseBackendHangsDuringActivationStartsOnTheNextOne) {
  Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(16 * layout::kMiB));
  ASSERT_TRUE(memory.ok());
  const uint64_t features = kVersion1 | kFeatureProtocolFeatures;
  const uint64_t protocol = kProtocolReplyAck | kProtocolConfigureMemSlots;
  FakeBackend hanging(features, protocol, kSetVringAddr);
  FsConfig config;
  config.fs_id = "share";
  config.tag = "share";
  Result<std::shared_ptr<VhostUserFsDevice>> device = VhostUserFsDevice::Connect(
      config, VhostUserConnection(UniqueFd(hanging.TakeFrontendFd()), "fs device share",
                                  std::chrono::milliseconds(200)));
  ASSERT_TRUE(device.ok()) << device.status().message();
  int kicks[2] = {eventfd(0, EFD_NONBLOCK), eventfd(0, EFD_NONBLOCK)};
  int call = eventfd(0, 0);
  VirtQueueState queues[2] = {{64, true, 0x100000, 0x101000, 0x102000},
                              {64, true, 0x110000, 0x111000, 0x112000}};
  Status activated = (*device)->Activate(Activation{kVersion1, *memory, queues, kicks, call});
  EXPECT_TRUE(activated.ok()) << "the driver's side stands: " << activated.message();
  EXPECT_TRUE(hanging.WaitForHangUp(std::chrono::seconds(5)))
      << "ember keeps talking to a backend that stopped answering";

  (*device)->Disconnected();  // what the reconnector does on the hang-up
  FakeBackend next(features, protocol);
  // Without a device-control thread the conversation runs right here.
  Status resumed = Status::Error("Reconnect did not report");
  (*device)->Reconnect(VhostUserConnection(UniqueFd(next.TakeFrontendFd()), "fs device share"),
                       [&](Status status) { resumed = std::move(status); });
  ASSERT_TRUE(resumed.ok()) << resumed.message();
  (*device)->Reset();  // the GET_VRING_BASE replies show the backend read all before
  int enabled = 0;
  for (const Received& m : next.StopAndTakeLog()) enabled += m.header.request == kSetVringEnable;
  EXPECT_EQ(enabled, 2) << "both rings handed to the new backend";
  for (int kick : kicks) {
    uint64_t count = 0;
    EXPECT_EQ(read(kick, &count, sizeof(count)), 8) << "each queue kicked after the restart";
    close(kick);
  }
  close(call);
}

// A driver may free its rings as soon as its reset is done: the reset must
// not return before the backend has stopped them (GET_VRING_BASE answered),
// even though the conversation runs on the device-control thread.
TEST(VhostUserFrontendTest, ResetReturnsOnlyOnceTheBackendStoppedTheRings) {
  Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(16 * layout::kMiB));
  ASSERT_TRUE(memory.ok());
  const uint64_t features = kVersion1 | kFeatureProtocolFeatures;
  FakeBackend backend(features, kProtocolReplyAck | kProtocolConfigureMemSlots);
  backend.DelayVringBase(std::chrono::milliseconds(150));
  FsConfig config;
  config.fs_id = "share";
  config.tag = "share";
  Result<std::shared_ptr<VhostUserFsDevice>> device = VhostUserFsDevice::Connect(
      config, VhostUserConnection(UniqueFd(backend.TakeFrontendFd()), "fs device share"));
  ASSERT_TRUE(device.ok()) << device.status().message();
  DeviceControl control;
  ASSERT_TRUE(control.Start().ok());
  (*device)->UseControlThread(control);
  int kicks[2] = {eventfd(0, EFD_NONBLOCK), eventfd(0, EFD_NONBLOCK)};
  int call = eventfd(0, 0);
  VirtQueueState queues[2] = {{64, true, 0x100000, 0x101000, 0x102000},
                              {64, true, 0x110000, 0x111000, 0x112000}};
  ASSERT_TRUE((*device)->Activate(Activation{kVersion1, *memory, queues, kicks, call}).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (backend.rings_enabled() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(backend.rings_enabled(), 2) << "the activation reached the backend";

  (*device)->Reset();
  EXPECT_EQ(backend.vring_bases_answered(), 2)
      << "Reset returned while the backend could still write into the driver's rings";
  control.Stop();
  for (int fd : {kicks[0], kicks[1], call}) close(fd);
}

TEST(VhostUserFrontendTest, UsesSetMemTableWithoutMemSlots) {
  Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(5 * layout::kGiB));
  ASSERT_TRUE(memory.ok());
  int kick = eventfd(0, 0), call = eventfd(0, 0);
  std::vector<Received> log;
  {
    FakeBackend backend(kVersion1, 0);
    Result<std::unique_ptr<VhostUserFrontend>> frontend = VhostUserFrontend::Negotiate(
        VhostUserConnection(UniqueFd(backend.TakeFrontendFd()), "net device t"));
    ASSERT_TRUE(frontend.ok());
    VringSetup ring{0, 64, 0x100000, 0x101000, 0x102000, 0, kick, call};
    ASSERT_TRUE((*frontend)->Start(kVersion1, *memory, {&ring, 1}).ok());
    ASSERT_TRUE((*frontend)->Stop().ok());  // a reply: the backend saw everything
    log = backend.StopAndTakeLog();
  }
  bool saw_table = false;
  for (const Received& m : log) {
    EXPECT_NE(m.header.request, static_cast<uint32_t>(kSetVringEnable))
        << "no SET_VRING_ENABLE without protocol features";
    if (m.header.request == kSetMemTable) {
      saw_table = true;
      EXPECT_EQ(m.fds, 2) << "one fd per region: below and above the MMIO hole";
      MemTable table{};
      std::memcpy(&table, m.payload.data(), m.payload.size());
      ASSERT_EQ(table.count, 2u);
      EXPECT_EQ(table.regions[1].guest_address, layout::kMmioHoleEnd);
      EXPECT_EQ(table.regions[1].mmap_offset, layout::kMmioHoleStart);
    }
  }
  EXPECT_TRUE(saw_table);
  close(kick);
  close(call);
}

// Runs the frontend against a backend that answers GET_FEATURES with
// `misbehave`, and returns the error.
std::string ErrorWith(const std::function<void(int)>& misbehave) {
  int pair[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
  std::thread backend([&] {
    Received message;
    if (ReceiveMessage(pair[1], message)) misbehave(pair[1]);
  });
  Result<std::unique_ptr<VhostUserFrontend>> frontend = VhostUserFrontend::Negotiate(
      VhostUserConnection(UniqueFd(pair[0]), "fs device t", std::chrono::milliseconds(300)));
  backend.join();
  close(pair[1]);
  return frontend.ok() ? "" : frontend.status().message();
}

TEST(VhostUserFrontendTest, RefusesRepliesItCannotTrust) {
  EXPECT_NE(ErrorWith([](int fd) {
              uint32_t small = 1;
              Reply(fd, kGetFeatures, &small, 4);
            }).find("has 4 payload bytes, expected 8"),
            std::string::npos);
  EXPECT_NE(
      ErrorWith([](int fd) { ReplyU64(fd, kGetProtocolFeatures, 1); }).find("answers request 15"),
      std::string::npos);
  EXPECT_NE(ErrorWith([](int fd) {
              uint64_t v = 1;
              Reply(fd, kGetFeatures, &v, 8, kVersion);  // no reply flag
            }).find("bad flags"),
            std::string::npos);
  EXPECT_NE(ErrorWith([](int fd) {
              Header header{kGetFeatures, kVersion | kFlagReply, 8};
              uint64_t value = kVersion1;
              int stray = eventfd(0, 0);
              iovec iov[2] = {{&header, sizeof(header)}, {&value, 8}};
              alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
              msghdr msg{};
              msg.msg_iov = iov;
              msg.msg_iovlen = 2;
              msg.msg_control = control;
              msg.msg_controllen = sizeof(control);
              cmsghdr* c = CMSG_FIRSTHDR(&msg);
              c->cmsg_level = SOL_SOCKET;
              c->cmsg_type = SCM_RIGHTS;
              c->cmsg_len = CMSG_LEN(sizeof(int));
              std::memcpy(CMSG_DATA(c), &stray, sizeof(int));
              sendmsg(fd, &msg, 0);
              close(stray);
            }).find("came with file descriptors"),
            std::string::npos);
  EXPECT_NE(ErrorWith([](int fd) { shutdown(fd, SHUT_RDWR); }).find("closed the connection"),
            std::string::npos);
  std::string silent =
      ErrorWith([](int) { std::this_thread::sleep_for(std::chrono::milliseconds(500)); });
  EXPECT_NE(silent.find("did not answer within 300 ms"), std::string::npos) << silent;
  EXPECT_NE(silent.find("fs device t: vhost-user GET_FEATURES"), std::string::npos) << silent;
}

TEST(VhostUserFrontendTest, ConnectNamesTheProblemWithTheSocket) {
  EXPECT_NE(VhostUserFrontend::Connect("/nonexistent/vfs.sock", "fs device a")
                .status()
                .message()
                .find("fs device a: socket /nonexistent/vfs.sock: No such file or directory"),
            std::string::npos);
  EXPECT_NE(VhostUserFrontend::Connect("/etc/hostname", "fs device a")
                .status()
                .message()
                .find("is not a socket"),
            std::string::npos);
  // A socket file nobody listens on: connection refused.
  std::string path = "/tmp/ember-refused-" + std::to_string(getpid()) + ".sock";
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  close(fd);
  EXPECT_NE(
      VhostUserFrontend::Connect(path, "fs device a").status().message().find("Connection refused"),
      std::string::npos);
  unlink(path.c_str());
}

}  // namespace
}  // namespace ember
