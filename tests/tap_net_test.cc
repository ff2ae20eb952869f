// Network interfaces on TAP devices (Firecracker's host_dev_name) with
// ember's virtio-net: the test guest resolves the host's address with ARP
// and pings it, and the host kernel answers. Each test makes its own
// network namespace with a TAP in it (removed at the end), so no frame
// leaves it; ember runs inside it with `ip netns exec`. Needs /dev/kvm and
// root (CAP_NET_ADMIN); skips, saying which, without them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

class TapNetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0)
      GTEST_SKIP() << "/dev/kvm is absent: the guest needs it";
    if (geteuid() != 0) GTEST_SKIP() << "not root: creating a network namespace and a TAP needs it";
    netns_ = std::make_unique<TapNamespace>("ember-tap", "10.77.0.1/24");
    ASSERT_EQ(netns_->error(), "");
  }
  // ember inside the namespace, with its API socket.
  std::unique_ptr<EmberProcess> StartEmber(const TempDir& dir) {
    auto ember = std::make_unique<EmberProcess>(dir, std::vector<std::string>{}, netns_->Exec());
    EXPECT_TRUE(ember->started()) << ember->Stderr();
    return ember;
  }
  json Iface(const std::string& tap) {
    return {{"iface_id", "eth0"}, {"guest_mac", "06:00:ac:10:00:02"}, {"host_dev_name", tap}};
  }

  TempDir dir_;
  std::unique_ptr<TapNamespace> netns_;
};

TEST_F(TapNetTest, GuestResolvesAndPingsTheHostThroughTheTap) {
  std::unique_ptr<EmberProcess> ember = StartEmber(dir_);
  ASSERT_TRUE(ember->started());
  json boot{{"kernel_image_path", std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"},
            {"boot_args", "console=ttyS0 ember.tests=nettap,ctrlaltdel"}};
  ASSERT_EQ(ember->Request("PUT", "/boot-source", boot.dump()).status, 204);
  HttpResponse put = ember->Request("PUT", "/network-interfaces/eth0", Iface("tap0").dump());
  ASSERT_EQ(put.status, 204) << put.body;
  ASSERT_EQ(ember->Request("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  ASSERT_TRUE(ember->WaitForOutput("ember-guest: waiting for ctrl-alt-del\n", 30000))
      << ember->Stdout() << ember->Stderr();
  // While this VM holds the TAP, another VMM cannot have it.
  TempDir other_dir;
  std::unique_ptr<EmberProcess> other = StartEmber(other_dir);
  HttpResponse busy = other->Request("PUT", "/network-interfaces/eth0", Iface("tap0").dump());
  EXPECT_EQ(busy.status, 400);
  EXPECT_NE(Fault(busy).find("host_dev_name tap0: busy"), std::string::npos) << Fault(busy);
  ASSERT_EQ(ember->Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember->WaitForExit(20000), 0) << ember->Stderr();
  const std::string out = ember->Stdout();
  EXPECT_NE(out.find("ember-guest: nettap mac=06:00:ac:10:00:02 status=1\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("ember-guest: nettap arp host-mac="), std::string::npos) << out;
  for (int seq = 1; seq <= 3; ++seq) {
    EXPECT_NE(out.find("ember-guest: nettap icmp seq=" + std::to_string(seq) + " reply ok\n"),
              std::string::npos)
        << out;
  }
  EXPECT_NE(out.find("ember-guest: nettap ok\n"), std::string::npos) << out;
  // The host's side saw the frames too.
  ProcessResult link =
      RunProcess({"/usr/sbin/ip", "-n", netns_->name(), "-s", "-j", "link", "show", "tap0"}, 10000);
  json stats = json::parse(link.out)[0]["stats64"];
  EXPECT_GE(stats["rx"]["packets"].get<int>(), 4) << link.out;  // ARP + 3 echo requests
  EXPECT_GE(stats["tx"]["packets"].get<int>(), 4) << link.out;
}

TEST_F(TapNetTest, FieldsAndErrorsAsFirecrackerAnswersThem) {
  std::unique_ptr<EmberProcess> ember = StartEmber(dir_);
  ASSERT_TRUE(ember->started());
  auto put = [&](const json& body) {
    return ember->Request("PUT", "/network-interfaces/eth0", body.dump());
  };
  HttpResponse missing = put(Iface("tap9"));
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(Fault(missing).find("host_dev_name tap9: no such network interface (create it first"),
            std::string::npos)
      << Fault(missing);
  HttpResponse not_tap = put(Iface("lo"));
  EXPECT_EQ(not_tap.status, 400);
  EXPECT_NE(Fault(not_tap).find("host_dev_name lo: is not a TAP device"), std::string::npos)
      << Fault(not_tap);
  json both = Iface("tap0");
  both["socket"] = dir_.File("x.sock");
  EXPECT_NE(Fault(put(both)).find("give either \"host_dev_name\""), std::string::npos);
  json neither = Iface("tap0");
  neither.erase("host_dev_name");
  EXPECT_NE(Fault(put(neither)).find("host_dev_name: is required"), std::string::npos);
  json limited = Iface("tap0");
  limited["rx_rate_limiter"] = {{"bandwidth", {{"size", 1000000}, {"refill_time", 100}}}};
  limited["tx_rate_limiter"] = {{"ops", {{"size", 100}, {"refill_time", 1000}}}};
  HttpResponse ok = put(limited);
  ASSERT_EQ(ok.status, 204) << ok.body;
  json config = json::parse(ember->Request("GET", "/vm/config").body);
  EXPECT_EQ(config["network-interfaces"][0]["host_dev_name"], "tap0") << config.dump();
  EXPECT_EQ(config["network-interfaces"][0]["rx_rate_limiter"]["bandwidth"]["size"], 1000000);
  EXPECT_EQ(config["network-interfaces"][0]["tx_rate_limiter"]["ops"]["refill_time"], 1000);
  HttpResponse patch = ember->Request(
      "PATCH", "/network-interfaces/eth0",
      json{{"iface_id", "eth0"}, {"rx_rate_limiter", {{"ops", {{"size", 5}, {"refill_time", 10}}}}}}
          .dump());
  EXPECT_EQ(patch.status, 204) << patch.body;
  HttpResponse nothing =
      ember->Request("PATCH", "/network-interfaces/eth0", json{{"iface_id", "eth0"}}.dump());
  EXPECT_NE(Fault(nothing).find("the request changes nothing"), std::string::npos);
  // One TAP, one interface.
  json second = Iface("tap0");
  second["iface_id"] = "eth1";
  second["guest_mac"] = "06:00:ac:10:00:03";
  HttpResponse twice = ember->Request("PUT", "/network-interfaces/eth1", second.dump());
  EXPECT_NE(Fault(twice).find("the TAP tap0 is used by both eth0 and eth1"), std::string::npos)
      << Fault(twice);
}

// MMDS on the TAP interface: the guest resolves 169.254.169.254 (ember
// answers with MMDS's MAC, the host never sees the request), opens TCP to
// port 80 and GETs a key. V1 answers; V2 without a session token is 401.
TEST_F(TapNetTest, GuestReadsMmdsOverTheTapInterface) {
  for (const std::string version : {"V1", "V2"}) {
    TempDir dir;
    std::unique_ptr<EmberProcess> ember = StartEmber(dir);
    ASSERT_TRUE(ember->started());
    json boot{{"kernel_image_path", std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"},
              {"boot_args", "console=ttyS0 ember.tests=mmds"}};
    ASSERT_EQ(ember->Request("PUT", "/boot-source", boot.dump()).status, 204);
    ASSERT_EQ(ember->Request("PUT", "/network-interfaces/eth0", Iface("tap0").dump()).status, 204);
    HttpResponse config = ember->Request(
        "PUT", "/mmds/config", json{{"network_interfaces", {"eth0"}}, {"version", version}}.dump());
    ASSERT_EQ(config.status, 204) << config.body;
    ASSERT_EQ(ember
                  ->Request("PUT", "/mmds",
                            json{{"latest", {{"meta-data", {{"ami-id", "ami-123"}}}}}}.dump())
                  .status,
              204);
    ASSERT_EQ(ember->Request("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    ASSERT_TRUE(ember->WaitForOutput("ember-guest: done", 60000))
        << ember->Stdout() << ember->Stderr();
    const std::string out = ember->Stdout();
    EXPECT_NE(out.find("ember-guest: mmds arp mac=06:01:23:45:67:01\n"), std::string::npos) << out;
    if (version == "V1") {
      EXPECT_NE(out.find("ember-guest: mmds http status=200 body=ami-123 closed\n"),
                std::string::npos)
          << out;
    } else {
      EXPECT_NE(out.find("ember-guest: mmds http status=401 "), std::string::npos) << out;
    }
    EXPECT_EQ(ember->WaitForExit(), 0) << ember->Stderr();
  }
}

}  // namespace
}  // namespace ember::testing
