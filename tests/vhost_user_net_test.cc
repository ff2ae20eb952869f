// virtio-net end to end: the test guest's driver sends and receives frames
// through ember's vhost-user-net device and a real DPDK testpmd. Needs
// /dev/kvm; skips, saying so, only without it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/backends.h"
#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

// A listening Unix socket at `path` (a backend stand-in), or -1.
int ListenUnix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || listen(fd, 1) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

class VhostUserNetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0)
      GTEST_SKIP() << "/dev/kvm is absent: the guest needs it";
    // testpmd's runtime directory must be new for every test.
    static int test_number = 0;
    prefix_ = "embertest" + std::to_string(getpid()) + "_" + std::to_string(++test_number);
  }
  void TearDown() override {
    if (testpmd_) testpmd_->Kill(SIGINT);
    RemoveDpdkRuntime(prefix_);
  }
  void StartTestpmd(const std::vector<std::string>& sockets, const std::string& mode,
                    bool client = false) {
    testpmd_ = std::make_unique<BackendProcess>(TestpmdCommand(prefix_, sockets, mode, client),
                                                client ? "" : sockets.back(),
                                                dir_.File("testpmd.log"), 30000);
    ASSERT_TRUE(testpmd_->ready()) << testpmd_->Log();
  }
  // Stops testpmd (SIGINT makes it print port statistics) and returns the
  // packets it received on its ports.
  uint64_t StopTestpmdAndCountRx() {
    testpmd_->Kill(SIGINT);
    std::string log = testpmd_->Log();
    uint64_t total = 0;
    std::regex rx("RX-packets: +([0-9]+)");
    // The last block ("Accumulated forward statistics for all ports") sums them.
    for (auto it = std::sregex_iterator(log.begin(), log.end(), rx); it != std::sregex_iterator();
         ++it) {
      total = std::stoull((*it)[1]);
    }
    return total;
  }
  json Config(const std::string& tests, uint32_t vcpus, const json& iface) {
    return {{"boot-source",
             {{"kernel_image_path", std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"},
              {"boot_args", "console=ttyS0 ember.tests=" + tests}}},
            {"machine-config", {{"vcpu_count", vcpus}, {"mem_size_mib", 128}}},
            {"network-interfaces", {iface}}};
  }

  TempDir dir_;
  std::string prefix_;
  std::unique_ptr<BackendProcess> testpmd_;
};

class NetVcpusTest : public VhostUserNetTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(NetVcpusTest, FramesComeBackFromTestpmdWithMacsSwapped) {
  StartTestpmd({dir_.File("net.sock")}, "macswap");
  json iface{
      {"iface_id", "eth0"}, {"guest_mac", "52:54:00:00:00:02"}, {"socket", dir_.File("net.sock")}};
  WriteFile(dir_.File("vm.json"), Config("virtio,net", GetParam(), iface).dump());
  ProcessResult result =
      RunProcess({EMBER_BINARY, "--no-api", "--config-file", dir_.File("vm.json")}, 60000);
  ASSERT_FALSE(result.timed_out) << result.out << result.err;
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("ember-guest: virtio base=0xc0001000 size=0x1000 irq=5 id=1\n"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("ember-guest: net mac=52:54:00:00:00:02 status=1\n"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("ember-guest: net sent=64 received=64 good=64\n"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("ember-guest: net ok\n"), std::string::npos) << result.out;
  EXPECT_GE(StopTestpmdAndCountRx(), 64u) << testpmd_->Log();
}

INSTANTIATE_TEST_SUITE_P(Vcpus, NetVcpusTest, ::testing::Values(1u, 2u),
                         [](const auto& info) { return std::to_string(info.param) + "vcpu"; });

TEST_F(VhostUserNetTest, TwoVmsExchangeFramesThroughTestpmd) {
  StartTestpmd({dir_.File("a.sock"), dir_.File("b.sock")}, "io");
  TempDir dir_a, dir_b;
  WriteFile(dir_a.File("vm.json"), Config("netpeer", 1,
                                          {{"iface_id", "eth0"},
                                           {"guest_mac", "52:54:00:00:00:0a"},
                                           {"socket", dir_.File("a.sock")}})
                                       .dump());
  WriteFile(dir_b.File("vm.json"), Config("netpeer", 1,
                                          {{"iface_id", "eth0"},
                                           {"guest_mac", "52:54:00:00:00:0b"},
                                           {"socket", dir_.File("b.sock")}})
                                       .dump());
  EmberProcess a(dir_a, {"--config-file", dir_a.File("vm.json")});
  EmberProcess b(dir_b, {"--config-file", dir_b.File("vm.json")});
  ASSERT_TRUE(a.started()) << a.Stderr();
  ASSERT_TRUE(b.started()) << b.Stderr();
  EXPECT_EQ(a.WaitForExit(60000), 0) << a.Stderr();
  EXPECT_EQ(b.WaitForExit(60000), 0) << b.Stderr();
  EXPECT_NE(a.Stdout().find("peer=52:54:00:00:00:0b\n"), std::string::npos) << a.Stdout();
  EXPECT_NE(b.Stdout().find("peer=52:54:00:00:00:0a\n"), std::string::npos) << b.Stdout();
  EXPECT_NE(a.Stdout().find("ember-guest: netpeer ok\n"), std::string::npos) << a.Stdout();
  EXPECT_NE(b.Stdout().find("ember-guest: netpeer ok\n"), std::string::npos) << b.Stdout();
}

TEST_F(VhostUserNetTest, ServerModeWaitsForTestpmdToConnect) {
  json iface{{"iface_id", "eth0"},
             {"guest_mac", "52:54:00:00:00:02"},
             {"socket", dir_.File("net.sock")},
             {"socket_mode", "server"},
             {"connect_timeout_ms", 20000}};
  WriteFile(dir_.File("vm.json"), Config("net", 1, iface).dump());
  EmberProcess ember(dir_, {"--config-file", dir_.File("vm.json")});
  // ember is waiting for its backend; testpmd connects as a client.
  StartTestpmd({dir_.File("net.sock")}, "macswap", /*client=*/true);
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  EXPECT_EQ(ember.WaitForExit(60000), 0) << ember.Stderr();
  EXPECT_NE(ember.Stdout().find("ember-guest: net ok\n"), std::string::npos) << ember.Stdout();
}

// The socket ember listens on hands all guest memory to whoever connects:
// it is created 0600, and a socket some live process accepts on is never
// taken over (a stale one is).
TEST_F(VhostUserNetTest, ServerModeSocketIsPrivateAndALiveOneIsNotTaken) {
  const std::string path = dir_.File("net.sock");
  json iface{{"iface_id", "eth0"},
             {"socket", path},
             {"socket_mode", "server"},
             {"connect_timeout_ms", 3000}};
  WriteFile(dir_.File("vm.json"), Config("net", 1, iface).dump());
  int live = ListenUnix(path);
  ASSERT_GE(live, 0);
  ProcessResult refused =
      RunProcess({EMBER_BINARY, "--no-api", "--config-file", dir_.File("vm.json")}, 20000);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find(path + " is in use by another process"), std::string::npos)
      << refused.err;
  close(live);  // now a stale socket file: ember replaces it
  ProcessResult waited;
  std::thread run([&] {
    waited = RunProcess({EMBER_BINARY, "--no-api", "--config-file", dir_.File("vm.json")}, 20000);
  });
  mode_t mode = 0;
  for (int i = 0; i < 2000 && mode != 0600; ++i) {
    struct stat info {};
    if (stat(path.c_str(), &info) == 0) mode = info.st_mode & 0777;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  run.join();
  EXPECT_EQ(mode, 0600u) << "the socket ember listened on";
  EXPECT_EQ(waited.exit_code, 1);
  EXPECT_NE(waited.err.find("no vhost-user backend connected"), std::string::npos) << waited.err;
}

// A backend gets all of guest memory: one that runs as another user (here
// nobody, who bound the path first) is refused before anything is sent,
// unless --vhost-user-peer-uid allows that user.
TEST_F(VhostUserNetTest, ABackendRunningAsAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (to run the squatter as nobody)";
  constexpr uid_t kNobody = 65534;
  const std::string path = dir_.File("net.sock");
  ASSERT_EQ(chmod(dir_.path().c_str(), 0777), 0);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t squatter = fork();
  if (squatter == 0) {
    close(ready[0]);
    if (setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(2);
    int fd = ListenUnix(path);
    if (fd < 0) _exit(3);
    (void)!write(ready[1], "x", 1);
    // Accepts and hangs up: what the allowed run sees.
    while (true) {
      int client = accept(fd, nullptr, nullptr);
      if (client >= 0) close(client);
    }
  }
  close(ready[1]);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1) << "the squatter did not listen";
  close(ready[0]);
  json iface{{"iface_id", "eth0"}, {"socket", path}};
  WriteFile(dir_.File("vm.json"), Config("net", 1, iface).dump());
  ProcessResult refused =
      RunProcess({EMBER_BINARY, "--no-api", "--config-file", dir_.File("vm.json")}, 20000);
  ProcessResult allowed = RunProcess({EMBER_BINARY, "--no-api", "--config-file",
                                      dir_.File("vm.json"), "--vhost-user-peer-uid", "65534"},
                                     20000);
  kill(squatter, SIGKILL);
  waitpid(squatter, nullptr, 0);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(
      refused.err.find("net device eth0: the vhost-user backend at " + path + " runs as uid 65534"),
      std::string::npos)
      << refused.err;
  EXPECT_EQ(refused.out, "") << "the guest never ran";
  EXPECT_EQ(allowed.err.find("runs as uid"), std::string::npos) << allowed.err;
  EXPECT_EQ(allowed.exit_code, 1) << "this backend hangs up: " << allowed.err;
}

TEST_F(VhostUserNetTest, ServerModeGivesUpWhenNoBackendComes) {
  json iface{{"iface_id", "eth0"},
             {"socket", dir_.File("net.sock")},
             {"socket_mode", "server"},
             {"connect_timeout_ms", 300}};
  WriteFile(dir_.File("vm.json"), Config("net", 1, iface).dump());
  ProcessResult result =
      RunProcess({EMBER_BINARY, "--no-api", "--config-file", dir_.File("vm.json")}, 20000);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("net device eth0: no vhost-user backend connected to " +
                            dir_.File("net.sock") + " within 300 ms"),
            std::string::npos)
      << result.err;
  EXPECT_EQ(result.out, "");
}

TEST_F(VhostUserNetTest, ApiRefusesWhatCannotWork) {
  EmberProcess ember(dir_, {});
  ASSERT_TRUE(ember.started());
  auto fault = [](const HttpResponse& r) { return json::parse(r.body).value("fault_message", ""); };
  auto put = [&](const json& body) {
    return ember.Request("PUT", "/network-interfaces/eth0", body.dump());
  };
  EXPECT_NE(fault(put({{"iface_id", "eth0"}, {"host_dev_name", "tap0"}, {"socket", "/s"}}))
                .find("give either \"host_dev_name\" (a TAP) or \"socket\""),
            std::string::npos);
  EXPECT_NE(fault(put({{"iface_id", "eth0"}, {"socket", dir_.File("none")}}))
                .find("net device eth0: socket"),
            std::string::npos);
  EXPECT_NE(fault(put({{"iface_id", "eth0"}, {"socket", "/s"}, {"guest_mac", "nonsense"}}))
                .find("guest_mac"),
            std::string::npos);
  StartTestpmd({dir_.File("net.sock")}, "macswap");
  ASSERT_EQ(put({{"iface_id", "eth0"},
                 {"guest_mac", "52:54:00:00:00:02"},
                 {"socket", dir_.File("net.sock")}})
                .status,
            204);
  HttpResponse twin = ember.Request("PUT", "/network-interfaces/eth1",
                                    json{{"iface_id", "eth1"},
                                         {"guest_mac", "52:54:00:00:00:02"},
                                         {"socket", dir_.File("net.sock")}}
                                        .dump());
  EXPECT_NE(fault(twin).find("the MAC 52:54:00:00:00:02 is used by both eth0 and eth1"),
            std::string::npos)
      << fault(twin);
  json shown = json::parse(ember.Request("GET", "/vm/config").body);
  EXPECT_EQ(shown["network-interfaces"][0]["guest_mac"], "52:54:00:00:00:02");
  EXPECT_EQ(shown["network-interfaces"][0]["socket_mode"], "client");
}

// A backend whose features lack VIRTIO_F_VERSION_1 (here: none at all) is
// refused at InstanceStart with the device named, and nothing runs.
TEST_F(VhostUserNetTest, BackendWithoutNeededFeaturesIsAClearError) {
  const std::string path = dir_.File("legacy.sock");
  int listener = ListenUnix(path);
  ASSERT_GE(listener, 0);
  std::thread backend([listener] {
    int client = accept(listener, nullptr, nullptr);
    uint32_t header[3];
    // GET_FEATURES: answer 0; then swallow whatever follows until ember hangs up.
    if (recv(client, header, sizeof(header), MSG_WAITALL) == sizeof(header)) {
      uint32_t reply[3] = {header[0], 0x1 | 0x4, 8};
      uint64_t features = 0;
      (void)!write(client, reply, sizeof(reply));
      (void)!write(client, &features, sizeof(features));
    }
    char sink[256];
    while (read(client, sink, sizeof(sink)) > 0) {
    }
    close(client);
  });
  json iface{{"iface_id", "eth0"}, {"socket", path}};
  WriteFile(dir_.File("vm.json"), Config("net", 1, iface).dump());
  ProcessResult result =
      RunProcess({EMBER_BINARY, "--no-api", "--config-file", dir_.File("vm.json")}, 20000);
  backend.join();
  close(listener);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("net device eth0: the backend does not offer VIRTIO_F_VERSION_1"),
            std::string::npos)
      << result.err;
  EXPECT_EQ(result.out, "");
}

}  // namespace
}  // namespace ember::testing
