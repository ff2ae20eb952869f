// Backends that restart under a running guest: testpmd (client and server
// socket modes) and virtiofsd are killed and started again several times;
// the guest keeps running and its traffic flows again after each restart,
// without restarting the guest. Needs /dev/kvm; skips, saying so, without it.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/backends.h"
#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

// The last number `pattern` (one capture group) matched in `text`, or -1.
long LastNumber(const std::string& text, const std::string& pattern) {
  long last = -1;
  std::regex re(pattern);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it) {
    last = std::stol((*it)[1]);
  }
  return last;
}

class ReconnectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0)
      GTEST_SKIP() << "/dev/kvm is absent: the guest needs it";
  }
  void TearDown() override {
    backend_.reset();
    for (const std::string& prefix : prefixes_) RemoveDpdkRuntime(prefix);
  }
  json Config(const std::string& tests) {
    return {{"boot-source",
             {{"kernel_image_path", std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"},
              {"boot_args", "console=ttyS0 ember.tests=" + tests}}},
            {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}}}};
  }
  void StartTestpmd(bool client) {
    prefixes_.push_back("emberrc" + std::to_string(getpid()) + "_" +
                        std::to_string(prefixes_.size()));
    backend_ = std::make_unique<BackendProcess>(
        TestpmdCommand(prefixes_.back(), {dir_.File("net.sock")}, "macswap", client),
        client ? "" : dir_.File("net.sock"), dir_.File("testpmd.log"), 30000);
    ASSERT_TRUE(backend_->ready()) << backend_->Log();
  }
  // Frames flow: the guest's received count grows by `frames` within the wait.
  void ExpectTrafficGrows(EmberProcess& ember, long frames) {
    long from = LastNumber(ember.Stdout(), "netloop received=([0-9]+)");
    EXPECT_TRUE(WaitUntil([&] {
      return LastNumber(ember.Stdout(), "netloop received=([0-9]+)") >= from + frames;
    })) << "no traffic after the restart\n"
        << ember.Stderr();
  }
  void RunNetRestarts(bool server_mode) {
    json iface{{"iface_id", "eth0"},
               {"guest_mac", "52:54:00:00:00:02"},
               {"socket", dir_.File("net.sock")},
               {"reconnect_interval_ms", 50}};
    if (server_mode) {
      iface["socket_mode"] = "server";
      iface["connect_timeout_ms"] = 30000;
    }
    json config = Config("netloop");
    config["network-interfaces"] = {iface};
    WriteFile(dir_.File("vm.json"), config.dump());
    if (!server_mode) StartTestpmd(false);
    EmberProcess ember(dir_, {"--config-file", dir_.File("vm.json")});
    if (server_mode) StartTestpmd(true);
    ASSERT_TRUE(ember.started()) << ember.Stderr();
    ExpectTrafficGrows(ember, 200);
    for (size_t round = 1; round <= 3; ++round) {
      backend_->Kill(SIGKILL);
      ASSERT_TRUE(WaitUntil([&] {
        return Occurrences(ember.Stderr(), "backend disconnected") >= round;
      })) << ember.Stderr();
      StartTestpmd(server_mode);
      ASSERT_TRUE(WaitUntil([&] { return Occurrences(ember.Stderr(), "reconnected to") >= round; }))
          << ember.Stderr();
      ExpectTrafficGrows(ember, 100);
    }
    EXPECT_EQ(json::parse(ember.Request("GET", "/").body)["state"], "Running");
    EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
    EXPECT_EQ(ember.WaitForExit(30000), 0) << ember.Stderr();
    EXPECT_NE(ember.Stdout().find("ember-guest: netloop ok\n"), std::string::npos)
        << ember.Stdout();
  }

  TempDir dir_;
  std::vector<std::string> prefixes_;
  std::unique_ptr<BackendProcess> backend_;
};

TEST_F(ReconnectTest, NetTrafficResumesAfterTestpmdRestartsWithEmberAsClient) {
  RunNetRestarts(false);
}

TEST_F(ReconnectTest, NetTrafficResumesAfterTestpmdRestartsWithEmberAsServer) {
  RunNetRestarts(true);
}

TEST_F(ReconnectTest, FsFilesSurviveVirtiofsdRestarts) {
  const std::string share = dir_.File("share");
  std::filesystem::create_directories(share);
  json config = Config("fsloop");
  config["fs"] = {{{"fs_id", "share"},
                   {"tag", "share"},
                   {"socket", dir_.File("vfs.sock")},
                   {"reconnect_interval_ms", 50}}};
  WriteFile(dir_.File("vm.json"), config.dump());
  auto start_virtiofsd = [&] {
    backend_ = std::make_unique<BackendProcess>(VirtiofsdCommand(dir_.File("vfs.sock"), share),
                                                dir_.File("vfs.sock"), dir_.File("virtiofsd.log"));
    ASSERT_TRUE(backend_->ready()) << backend_->Log();
  };
  start_virtiofsd();
  EmberProcess ember(dir_, {"--config-file", dir_.File("vm.json")});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  auto synced = [&] { return LastNumber(ember.Stdout(), "fsloop synced loop-([0-9]+)\\.txt"); };
  ASSERT_TRUE(WaitUntil([&] { return synced() >= 5; })) << ember.Stdout();
  for (size_t round = 1; round <= 3; ++round) {
    backend_->Kill(SIGKILL);
    ASSERT_TRUE(
        WaitUntil([&] { return Occurrences(ember.Stderr(), "backend disconnected") >= round; }));
    long before = synced();
    start_virtiofsd();
    ASSERT_TRUE(WaitUntil([&] { return Occurrences(ember.Stderr(), "reconnected to") >= round; }))
        << ember.Stderr();
    EXPECT_TRUE(WaitUntil([&] { return synced() >= before + 5; })) << ember.Stdout();
  }
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember.WaitForExit(30000), 0) << ember.Stderr();
  const std::string out = ember.Stdout();
  EXPECT_NE(out.find("ember-guest: fsloop ok\n"), std::string::npos) << out;
  EXPECT_GE(LastNumber(out, "fsloop files=[0-9]+ reinits=([0-9]+)"), 3)
      << "a new FUSE session per restart";
  // Every file the guest reported synced is on the host with its content.
  long last = synced();
  ASSERT_GE(last, 20);
  for (long i = 0; i <= last; ++i) {
    std::string name = "loop-" + std::to_string(i) + ".txt";
    EXPECT_EQ(ReadFile(share + "/" + name), "file " + std::to_string(i) + "\n") << name;
  }
}

// A backend that stalls in the middle of a negotiation (3 s before it
// answers the SET_MEM_TABLE of the device's activation, which the guest's
// DRIVER_OK starts) holds only the device-control thread: the API keeps
// answering, a pause and a resume take effect meanwhile, and the device
// starts once the backend answers.
TEST_F(ReconnectTest, BackendStalledMidNegotiationHoldsNeitherTheApiNorTheVcpus) {
  using Clock = std::chrono::steady_clock;
  const std::string socket = dir_.File("net.sock");
  BackendProcess backend({EMBER_FAKE_NET_BACKEND, socket, "--slow-mem-table", "3000"}, socket,
                         dir_.File("fake_backend.log"));
  ASSERT_TRUE(backend.ready()) << backend.Log();
  json config = Config("netloop");
  config["network-interfaces"] = {
      {{"iface_id", "eth0"}, {"guest_mac", "52:54:00:00:00:02"}, {"socket", socket}}};
  WriteFile(dir_.File("vm.json"), config.dump());
  EmberProcess ember(dir_, {"--config-file", dir_.File("vm.json")});
  ASSERT_TRUE(WaitUntil([&] { return backend.Log().find("stalling") != std::string::npos; }))
      << "the guest never started the device\n"
      << backend.Log() << ember.Stderr();

  const auto stall_seen = Clock::now();
  auto millis_since = [](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
  };
  long slowest_get_ms = 0, pause_ms = -1, resume_ms = -1;
  int gets = 0;
  while (backend.Log().find("answering") == std::string::npos && millis_since(stall_seen) < 10000) {
    auto asked = Clock::now();
    EXPECT_EQ(ember.Request("GET", "/").status, 200);
    slowest_get_ms = std::max<long>(slowest_get_ms, millis_since(asked));
    ++gets;
    if (pause_ms < 0 && millis_since(stall_seen) > 500) {
      asked = Clock::now();
      EXPECT_EQ(ember.Request("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
      pause_ms = millis_since(asked);
    } else if (pause_ms >= 0 && resume_ms < 0 && millis_since(stall_seen) > 1500) {
      asked = Clock::now();
      EXPECT_EQ(ember.Request("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
      resume_ms = millis_since(asked);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("during the 3 s stall: %d GETs, slowest %ld ms; pause %ld ms, resume %ld ms\n", gets,
              slowest_get_ms, pause_ms, resume_ms);
  ASSERT_GE(resume_ms, 0) << "the stall ended before the pause and the resume were tried";
  // Each would take the whole stall (3 s) if the conversation held the VMM
  // thread or a vCPU; the bound leaves room for a loaded machine.
  EXPECT_LT(slowest_get_ms, 500);
  EXPECT_LT(pause_ms, 500);
  EXPECT_LT(resume_ms, 500);
  EXPECT_TRUE(WaitUntil(
      [&] { return ember.Stderr().find("net device eth0: started with") != std::string::npos; },
      10))
      << "the device did not start once the backend answered\n"
      << ember.Stderr();
}

}  // namespace
}  // namespace ember::testing
