// Firecracker's hybrid vsock end to end: ember's virtio-vsock device with
// the test guest's driver (tests/guest/virtio_vsock.c) on real KVM, and
// the host side spoken over real Unix sockets as Kata's runtime and
// Firecracker's users do: "CONNECT <port>\n" on uds_path, answered "OK
// <port>\n"; guest-initiated streams arrive on uds_path_<port>. Needs
// /dev/kvm; skips, saying so, without it.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

// Reads until `count` bytes, EOF or the deadline; what came.
std::string ReadBytes(int fd, size_t count, int timeout_ms = 20000) {
  std::string data;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (data.size() < count) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, left) != 1) break;
    char buffer[65536];
    ssize_t n = recv(fd, buffer, std::min(sizeof(buffer), count - data.size()), 0);
    if (n <= 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  return data;
}

// One line (with its '\n'), read a byte at a time so nothing after it is taken.
std::string ReadLine(int fd, int timeout_ms = 20000) {
  std::string line;
  while (line.empty() || line.back() != '\n') {
    std::string byte = ReadBytes(fd, 1, timeout_ms);
    if (byte.empty()) break;
    line += byte;
  }
  return line;
}

// Whether the peer closes the socket (EOF or reset) within the wait.
bool ClosedWithin(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return false;
  char byte;
  return recv(fd, &byte, 1, MSG_DONTWAIT) <= 0;
}

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

int Listen(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || listen(fd, 8) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int AcceptWithin(int listener, int timeout_ms) {
  pollfd p{listener, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return -1;
  return accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
}

// Kata's handshake: the reply line, or "" when ember closed the socket.
std::string Handshake(int fd, uint32_t port) {
  if (!SendAll(fd, "CONNECT " + std::to_string(port) + "\n")) return "";
  return ReadLine(fd);
}

uint32_t ByteSum(const std::string& data) {
  uint32_t sum = 0;
  for (unsigned char c : data) sum += c;
  return sum;
}

class VsockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0)
      GTEST_SKIP() << "/dev/kvm is absent: the guest needs it";
  }
  json Boot(const std::string& extra) {
    return {{"kernel_image_path", std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"},
            {"boot_args", "console=ttyS0 ember.tests=vsock " + extra}};
  }
  TempDir dir_;
};

// One boot for the whole conversation (each boot of the test guest costs
// seconds on emulated KVM).
TEST_F(VsockTest, HostAndGuestTalkThroughTheHybridSocket) {
  EmberProcess ember(dir_, {});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  const std::string uds = dir_.File("v.sock");
  ASSERT_EQ(ember.Request("PUT", "/boot-source", Boot("ember.vsock=5000,5001,5002").dump()).status,
            204);
  HttpResponse put = ember.Request(
      "PUT", "/vsock", json{{"vsock_id", "vsock0"}, {"guest_cid", 3}, {"uds_path", uds}}.dump());
  ASSERT_EQ(put.status, 204) << put.body;
  // Guest-initiated streams: a host listener on 5000 and 5002, none on 5001.
  int hello_listener = Listen(uds + "_5000");
  int push_listener = Listen(uds + "_5002");
  ASSERT_GE(hello_listener, 0);
  ASSERT_GE(push_listener, 0);
  ASSERT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  // The socket is there once InstanceStart has answered (Kata chmods it next).
  struct stat info {};
  ASSERT_EQ(stat(uds.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  HttpResponse late =
      ember.Request("PUT", "/vsock", json{{"guest_cid", 4}, {"uds_path", uds}}.dump());
  EXPECT_EQ(late.status, 400);
  EXPECT_NE(Fault(late).find("not supported after starting"), std::string::npos) << Fault(late);
  ASSERT_TRUE(ember.WaitForOutput("ember-guest: vsock ready cid=3\n", 30000))
      << ember.Stdout() << ember.Stderr();

  // Guest-initiated: hello, our line echoed, then "close\n" makes the guest
  // close, which ends the host's socket.
  int hello = AcceptWithin(hello_listener, 20000);
  ASSERT_GE(hello, 0) << ember.Stdout();
  EXPECT_EQ(ReadLine(hello), "hello from guest port 05000\n");
  ASSERT_TRUE(SendAll(hello, "hello guest\n"));
  EXPECT_EQ(ReadLine(hello), "hello guest\n");
  ASSERT_TRUE(SendAll(hello, "close\n"));
  EXPECT_TRUE(ClosedWithin(hello, 20000)) << "the guest closed; ember should close the socket";
  close(hello);
  EXPECT_TRUE(ember.WaitForOutput("ember-guest: vsock connect 5001 rst\n"))
      << "nobody listens on " << uds << "_5001: the guest gets RST\n"
      << ember.Stdout();

  // Kata's handshake and a round trip.
  int kata = ConnectUnix(uds);
  ASSERT_GE(kata, 0);
  const std::string ok = Handshake(kata, 1024);
  ASSERT_EQ(ok.rfind("OK ", 0), 0u) << "reply: " << ok;
  EXPECT_GE(std::stoull(ok.substr(3)), 1ull << 30) << ok;
  std::string message(1000, '\0');
  for (size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>(i * 31 + 7);
  ASSERT_TRUE(SendAll(kata, message));
  EXPECT_EQ(ReadBytes(kata, message.size()), message);

  // 64 streams at once, each with its own data.
  std::vector<int> streams;
  for (int i = 0; i < 64; ++i) {
    int fd = ConnectUnix(uds);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "CONNECT 1024\n"));
    streams.push_back(fd);
  }
  for (int fd : streams) ASSERT_EQ(ReadLine(fd).rfind("OK ", 0), 0u);
  for (size_t i = 0; i < streams.size(); ++i) {
    ASSERT_TRUE(
        SendAll(streams[i], std::string(512, static_cast<char>('A' + i % 50)) + std::to_string(i)));
  }
  for (size_t i = 0; i < streams.size(); ++i) {
    const std::string want = std::string(512, static_cast<char>('A' + i % 50)) + std::to_string(i);
    EXPECT_EQ(ReadBytes(streams[i], want.size()), want) << "stream " << i;
  }
  for (int fd : streams) close(fd);  // the host closes: ember tells the guest

  // First lines ember refuses, and a port nobody listens on in the guest.
  for (const std::string& bad :
       {std::string("HELLO\n"), std::string("CONNECT abc\n"), std::string("CONNECT 99999999999\n"),
        std::string("CONNECT\n"), std::string(40, 'A'), std::string("CONNECT 7777\n")}) {
    int fd = ConnectUnix(uds);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, bad));
    EXPECT_TRUE(ClosedWithin(fd, 10000)) << "first line \"" << bad << "\"";
    close(fd);
  }
  // The echo stream still works after all that.
  ASSERT_TRUE(SendAll(kata, "still here"));
  EXPECT_EQ(ReadBytes(kata, 10), "still here");

  // A guest that stops reading (port 1025 takes nothing for 2 s): ember
  // stops reading the host's socket, so the host's writes block early.
  int slow = ConnectUnix(uds);
  ASSERT_GE(slow, 0);
  int small = 16384;
  ASSERT_EQ(setsockopt(slow, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  ASSERT_EQ(Handshake(slow, 1025).rfind("OK ", 0), 0u);
  std::string stream(256 * 1024, '\0');
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<char>((i * 13) ^ (i >> 9));
  size_t before_block = 0;
  for (int round = 0; round < 20 && before_block < stream.size(); ++round) {
    ssize_t n = send(slow, stream.data() + before_block, stream.size() - before_block,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) before_block += static_cast<size_t>(n);
    usleep(20000);
  }
  EXPECT_LT(before_block, 128u * 1024) << "ember read beyond the guest's credit";
  std::printf("the host wrote %zu bytes before the stalled guest blocked it\n", before_block);
  ASSERT_TRUE(SendAll(slow, stream.substr(before_block)));
  ASSERT_EQ(shutdown(slow, SHUT_WR), 0);
  EXPECT_EQ(ReadLine(slow, 60000),
            "sum " + std::to_string(stream.size()) + " " + std::to_string(ByteSum(stream)) + "\n");
  EXPECT_TRUE(ClosedWithin(slow, 20000));
  close(slow);

  // A host that stops reading: the guest pushes 1 MiB to 5002 and must wait
  // for credit; then everything arrives in order.
  int push = AcceptWithin(push_listener, 20000);
  ASSERT_GE(push, 0);
  EXPECT_EQ(ReadLine(push), "hello from guest port 05002\n");
  EXPECT_TRUE(ember.WaitForOutput("ember-guest: vsock push waits for credit at ", 30000))
      << ember.Stdout();
  const std::string pushed = ReadBytes(push, 1024 * 1024, 60000);
  ASSERT_EQ(pushed.size(), 1024u * 1024);
  size_t mismatches = 0;
  for (size_t i = 0; i < pushed.size(); ++i) {
    const size_t j = i % 4096;
    mismatches += static_cast<uint8_t>(pushed[i]) != static_cast<uint8_t>(j * 7 + j / 251);
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_TRUE(ember.WaitForOutput("ember-guest: vsock push done 1048576 bytes\n"))
      << ember.Stdout();
  close(push);
  close(kata);

  ASSERT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember.WaitForExit(20000), 0) << ember.Stderr();
  const std::string out = ember.Stdout();
  EXPECT_NE(out.find("ember-guest: vsock closed 5000 rst\n"), std::string::npos) << out;
  EXPECT_NE(out.find("overruns=0 bad=0\n"), std::string::npos) << out;
  std::smatch counts;
  ASSERT_TRUE(
      std::regex_search(out, counts,
                        std::regex("vsock done accepted=(\\d+) refused=(\\d+) echoed=(\\d+) "
                                   "host_closed=(\\d+) guest_closed=(\\d+)")))
      << out;
  EXPECT_EQ(std::stoi(counts[1]), 66) << "1 + 64 echo streams and the slow reader";
  EXPECT_EQ(std::stoi(counts[2]), 1) << "CONNECT 7777";
  EXPECT_GE(std::stoi(counts[4]), 64) << "the 64 streams the host closed";
  EXPECT_GE(std::stoi(counts[5]), 2) << "the hello and slow streams the guest closed";
  // ember removes its socket when it ends.
  EXPECT_NE(stat(uds.c_str(), &info), 0);
  close(hello_listener);
  close(push_listener);
}

// PUT /vsock as Firecracker's clients send it, and every refusal (no VM is
// started: this needs no /dev/kvm).
TEST(VsockApiTest, FieldsAndErrors) {
  TempDir dir;
  EmberProcess ember(dir, {});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  auto put = [&](const json& body) { return ember.Request("PUT", "/vsock", body.dump()); };
  const std::string uds = dir.File("v.sock");
  auto refused = [&](const json& body, const std::string& fault) {
    HttpResponse reply = put(body);
    EXPECT_EQ(reply.status, 400) << body.dump();
    EXPECT_NE(Fault(reply).find(fault), std::string::npos) << body.dump() << ": " << Fault(reply);
  };
  refused({{"guest_cid", 4294967296}, {"uds_path", uds}},
          "guest_cid: must be between 0 and 4294967295, got 4294967296");
  refused({{"guest_cid", -1}, {"uds_path", uds}}, "guest_cid: must be an integer");
  refused({{"guest_cid", "3"}, {"uds_path", uds}}, "guest_cid: must be an integer");
  refused({{"uds_path", uds}}, "guest_cid: is required");
  refused({{"guest_cid", 3}}, "uds_path: is required");
  refused({{"guest_cid", 3}, {"uds_path", 7}}, "uds_path: must be a string");
  refused({{"guest_cid", 3}, {"uds_path", uds}, {"cid", 3}}, "cid: unknown field");
  refused({{"guest_cid", 3}, {"uds_path", dir.File("no/such/dir/v.sock")}},
          "uds_path: the directory " + dir.File("no/such/dir") + " of ");
  // Something else lives at the path: a file, or a socket someone accepts on.
  WriteFile(dir.File("file"), "x");
  refused({{"guest_cid", 3}, {"uds_path", dir.File("file")}}, "is not a socket");
  int live = Listen(dir.File("live.sock"));
  ASSERT_GE(live, 0);
  refused({{"guest_cid", 3}, {"uds_path", dir.File("live.sock")}}, "in use");
  close(live);
  EXPECT_EQ(ember.Request("PUT", "/vsock", "{\"guest_cid\": 3,").status, 400);
  // Accepted; a second PUT replaces it; GET /vm/config shows it.
  EXPECT_EQ(put({{"vsock_id", "vsock0"}, {"guest_cid", 3}, {"uds_path", uds}}).status, 204);
  EXPECT_EQ(put({{"guest_cid", 52}, {"uds_path", uds + "2"}}).status, 204);
  json config = json::parse(ember.Request("GET", "/vm/config").body);
  EXPECT_EQ(config["vsock"], json({{"guest_cid", 52}, {"uds_path", uds + "2"}})) << config.dump();
  // Nothing is bound before InstanceStart.
  struct stat info {};
  EXPECT_NE(stat((uds + "2").c_str(), &info), 0);
}

}  // namespace
}  // namespace ember::testing
