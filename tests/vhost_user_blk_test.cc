// vhost-user-blk drives against qemu-storage-daemon (Debian's
// qemu-system-common): the test guest's reads, writes and flushes reach the
// image through the backend; the backend is killed and started again under
// a guest that keeps writing, and every write the guest saw flushed is in
// the image afterwards. Needs /dev/kvm; skips, saying so, without it.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/backends.h"
#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

std::vector<long> Numbers(const std::string& text, const std::string& pattern) {
  std::vector<long> numbers;
  std::regex re(pattern);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it) {
    numbers.push_back(std::stol((*it)[1]));
  }
  return numbers;
}

class VhostUserBlkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0)
      GTEST_SKIP() << "/dev/kvm is absent: the guest needs it";
    image_.resize(1 << 20);
    for (size_t i = 0; i < image_.size(); ++i) image_[i] = static_cast<char>(i * 13 + 5);
    WriteFile(dir_.File("disk.img"), image_);
  }
  void StartDaemon() {
    backend_ = std::make_unique<BackendProcess>(
        StorageDaemonCommand(dir_.File("blk.sock"), dir_.File("disk.img")), dir_.File("blk.sock"),
        dir_.File("qsd.log"));
    ASSERT_TRUE(backend_->ready()) << backend_->Log();
  }
  json Config(const std::string& tests, const json& drive) {
    return {{"boot-source",
             {{"kernel_image_path", std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"},
              {"boot_args", "console=ttyS0 ember.tests=" + tests}}},
            {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 64}}},
            {"drives", {drive}}};
  }

  TempDir dir_;
  std::string image_;
  std::unique_ptr<BackendProcess> backend_;
};

TEST_F(VhostUserBlkTest, GuestIoReachesTheImageThroughTheDaemon) {
  StartDaemon();
  json drive{{"drive_id", "rootfs"},
             {"socket", dir_.File("blk.sock")},
             {"is_root_device", true},
             {"cache_type", "Writeback"}};
  WriteFile(dir_.File("vm.json"), Config("cmdline,blk", drive).dump());
  ProcessResult result =
      RunProcess({EMBER_BINARY, "--no-api", "--config-file", dir_.File("vm.json")}, 60000);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string& out = result.out;
  EXPECT_NE(out.find(" root=/dev/vda rw "), std::string::npos) << out;
  // capacity from the daemon's config space (GET_CONFIG), FLUSH forwarded.
  EXPECT_NE(out.find("ember-guest: blk drive=0 capacity=2048 ro=0 flush=1\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("ember-guest: blk drive=0 read sectors=16 sum=0x000ff000 status=0\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("ember-guest: blk drive=0 wrote sectors=8 sum=0x0007f800 status=0 flush=0 "
                     "readback=ok\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("ember-guest: blk drive=0 past-end status=1"), std::string::npos) << out;
  EXPECT_NE(out.find("ember-guest: blk drives=1 ok\n"), std::string::npos) << out;
  const std::string after = ReadFile(dir_.File("disk.img"));
  ASSERT_EQ(after.size(), image_.size());
  for (size_t i = 0; i < 4096; ++i) {
    ASSERT_EQ(static_cast<uint8_t>(after[16 * 512 + i]), static_cast<uint8_t>(i * 7)) << i;
  }
  EXPECT_EQ(after.substr(0, 16 * 512), image_.substr(0, 16 * 512));
}

// Three restarts of the daemon under a guest that writes and flushes in a
// loop: ember (the client) reconnects, resumes the ring from the guest's
// used index, and the request the dead daemon never answered is served by
// the new one. Every write the guest saw flushed is in the image.
TEST_F(VhostUserBlkTest, FlushedWritesSurviveDaemonRestarts) {
  StartDaemon();
  json drive{{"drive_id", "data"},
             {"socket", dir_.File("blk.sock")},
             {"is_root_device", false},
             {"cache_type", "Writeback"},
             {"reconnect_interval_ms", 50}};
  WriteFile(dir_.File("vm.json"), Config("blkloop", drive).dump());
  EmberProcess ember(dir_, {"--config-file", dir_.File("vm.json")});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  auto synced = [&] {
    std::vector<long> all = Numbers(ember.Stdout(), "blkloop synced ([0-9]+)\n");
    return all.empty() ? -1 : all.back();
  };
  ASSERT_TRUE(WaitUntil([&] { return synced() >= 5; })) << ember.Stdout() << ember.Stderr();
  for (size_t round = 1; round <= 3; ++round) {
    backend_->Kill(SIGKILL);
    ASSERT_TRUE(WaitUntil([&] {
      return Occurrences(ember.Stderr(), "backend disconnected") >= round;
    })) << ember.Stderr();
    long before = synced();
    StartDaemon();
    ASSERT_TRUE(WaitUntil([&] { return Occurrences(ember.Stderr(), "reconnected to") >= round; }))
        << ember.Stderr();
    EXPECT_TRUE(WaitUntil([&] { return synced() >= before + 5; })) << ember.Stdout();
  }
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember.WaitForExit(60000), 0) << ember.Stderr();
  const std::string out = ember.Stdout();
  EXPECT_NE(out.find("ember-guest: blkloop ok\n"), std::string::npos) << out;
  backend_.reset();

  // The last flushed write of each slot, word by word.
  const std::string image = ReadFile(dir_.File("disk.img"));
  std::map<long, long> last_in_slot;
  for (long i : Numbers(out, "blkloop synced ([0-9]+)\n")) last_in_slot[i % 200] = i;
  ASSERT_GE(last_in_slot.size(), 20u);
  for (const auto& [slot, i] : last_in_slot) {
    for (uint64_t w = 0; w < 128; ++w) {
      uint64_t word;
      std::memcpy(&word, image.data() + (64 + 2 * slot) * 512 + 8 * w, 8);
      ASSERT_EQ(word, static_cast<uint64_t>(i) * 0x100000001ull + w) << "write " << i;
    }
  }
}

TEST_F(VhostUserBlkTest, ApiRulesForVhostUserDrives) {
  EmberProcess ember(dir_, {});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  auto fault = [&](const json& body) {
    HttpResponse response = ember.Request("PUT", "/drives/d", body.dump());
    EXPECT_EQ(response.status, 400) << response.body;
    return response.body;
  };
  json drive{{"drive_id", "d"}, {"socket", dir_.File("blk.sock")}, {"is_root_device", false}};
  EXPECT_NE(fault(drive).find("blk.sock: No such file or directory"), std::string::npos);
  json with_path = drive;
  with_path["path_on_host"] = dir_.File("disk.img");
  EXPECT_NE(fault(with_path).find("path_on_host: not allowed with \\\"socket\\\""),
            std::string::npos);
  json read_only = drive;
  read_only["is_read_only"] = true;
  EXPECT_NE(fault(read_only).find("is_read_only: not allowed"), std::string::npos);
  json limited = drive;
  limited["rate_limiter"] = {{"ops", {{"size", 1}, {"refill_time", 1}}}};
  EXPECT_NE(fault(limited).find("the backend moves the data"), std::string::npos);
  StartDaemon();
  ASSERT_EQ(ember.Request("PUT", "/drives/d", drive.dump()).status, 204);
  json config = json::parse(ember.Request("GET", "/vm/config").body);
  EXPECT_EQ(config["drives"][0]["socket"], dir_.File("blk.sock"));
  EXPECT_EQ(config["drives"][0]["socket_mode"], "client");
  EXPECT_FALSE(config["drives"][0].contains("path_on_host"));
  HttpResponse patch =
      ember.Request("PATCH", "/drives/d",
                    json{{"drive_id", "d"}, {"path_on_host", dir_.File("disk.img")}}.dump());
  EXPECT_EQ(patch.status, 400);
  EXPECT_NE(patch.body.find("is a vhost-user drive"), std::string::npos) << patch.body;
}

}  // namespace
}  // namespace ember::testing
