// Integrators' launch sequences replayed against a real ember booting the
// test guest: the command line, config file or request order, bodies,
// readiness polling and the way each stops the VM, as read from their
// sources (the revision is named in each test). Every answer is checked.
// Each test makes its own network namespace with a TAP (removed at the end)
// for the network interface these integrators attach. Needs /dev/kvm and
// root; skips, saying which, without them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

constexpr char kGuestMac[] = "06:00:ac:10:00:02";

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0)
      GTEST_SKIP() << "/dev/kvm is absent: the guest needs it";
    if (geteuid() != 0) GTEST_SKIP() << "not root: creating a network namespace and a TAP needs it";
    netns_ = std::make_unique<TapNamespace>("ember-replay");
    ASSERT_EQ(netns_->error(), "");
  }
  std::vector<std::string> InNetns() const { return netns_->Exec(); }
  std::string Guest() const { return std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"; }
  // An empty backing file, as integrators create for placeholder drives.
  std::string EmptyFile(const std::string& name) {
    WriteFile(dir_.File(name), std::string());
    return dir_.File(name);
  }
  std::string Disk(const std::string& name) {
    WriteFile(dir_.File(name), std::string(1 << 20, '\0'));
    return dir_.File(name);
  }
  // Polls GET / every 10 ms, as Kata's Go runtime does, until state is
  // Running; false after `timeout_ms`.
  static bool PollUntilRunning(const EmberProcess& ember, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      HttpResponse info = ember.Request("GET", "/");
      if (info.status == 200) {
        json body = json::parse(info.body, nullptr, /*allow_exceptions=*/false);
        EXPECT_TRUE(body.is_object()) << info.body;
        if (body.is_object() && body.value("state", "") == "Running") {
          EXPECT_TRUE(body["id"].is_string()) << info.body;
          EXPECT_TRUE(body["vmm_version"].is_string()) << info.body;
          return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  TempDir dir_;
  std::unique_ptr<TapNamespace> netns_;
};

// Kata Containers' Go runtime, src/runtime/virtcontainers/fc.go at
// kata-containers/kata-containers 65edfee565a3: `--version` checked
// (>= 0.21.1, covered by CliTest.VersionReadsAsFirecrackerToolingReadsIt),
// then `--api-sock S --config-file F` with the file written tab-indented:
// boot-source with Kata's boot arguments, machine-config with SMT off, a
// read-only rootfs that is not the root device, eight empty placeholder
// drives, logger and metrics on FIFOs, vsock "root" with CID 3, a TAP
// interface with Kata's bandwidth limiters; GET / every 10 ms until Running
// (10 s); a later PATCH /drives/{id} of a placeholder with
// {drive_id, path_on_host}; stop by SIGTERM with 15 s to go.
TEST_F(ReplayTest, KataGoRuntime) {
  const std::string log_fifo = dir_.File("logs.fifo"), metrics_fifo = dir_.File("metrics.fifo");
  ASSERT_EQ(mkfifo(log_fifo.c_str(), 0600), 0);
  ASSERT_EQ(mkfifo(metrics_fifo.c_str(), 0600), 0);
  // Kata reads both pipes from its own goroutines.
  int log_reader = open(log_fifo.c_str(), O_RDONLY | O_NONBLOCK);
  int metrics_reader = open(metrics_fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(log_reader, 0);
  ASSERT_GE(metrics_reader, 0);
  json drives = json::array({{{"drive_id", "rootfs"},
                              {"path_on_host", Disk("rootfs.img")},
                              {"is_root_device", false},
                              {"is_read_only", true}}});
  for (int i = 0; i < 8; ++i) {
    const std::string id = "drive_" + std::to_string(i);
    drives.push_back({{"drive_id", id},
                      {"path_on_host", EmptyFile(id)},
                      {"is_root_device", false},
                      {"is_read_only", false}});
  }
  json limiter{{"bandwidth", {{"size", 1250000}, {"refill_time", 1000}}}};
  json config{
      {"boot-source",
       {{"kernel_image_path", Guest()},
        {"boot_args",
         "pci=off reboot=k panic=1 iommu=off net.ifnames=0 random.trust_cpu=on acpi=off "
         "console=ttyS0 ember.tests=ctrlaltdel"}}},
      {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}, {"smt", false}}},
      {"drives", drives},
      {"vsock", {{"guest_cid", 3}, {"uds_path", dir_.File("kata.hvsock")}, {"vsock_id", "root"}}},
      {"network-interfaces", json::array({{{"iface_id", "eth0"},
                                           {"host_dev_name", "tap0"},
                                           {"guest_mac", kGuestMac},
                                           {"rx_rate_limiter", limiter},
                                           {"tx_rate_limiter", limiter}}})},
      {"logger", {{"log_path", log_fifo}, {"level", "Debug"}}},
      {"metrics", {{"metrics_path", metrics_fifo}}}};
  WriteFile(dir_.File("fcConfig.json"), config.dump(1, '\t'));

  EmberProcess ember(dir_, {"--config-file", dir_.File("fcConfig.json")}, InNetns());
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  ASSERT_TRUE(PollUntilRunning(ember, 10000)) << ember.Stderr();
  ASSERT_TRUE(ember.WaitForOutput("ember-guest: waiting for ctrl-alt-del\n", 30000))
      << ember.Stdout() << ember.Stderr();
  struct stat hvsock {};
  EXPECT_EQ(stat(dir_.File("kata.hvsock").c_str(), &hvsock), 0) << "the vsock socket exists";

  // Hot-plug: a placeholder's backing file swapped for a real disk.
  HttpResponse patch =
      ember.Request("PATCH", "/drives/drive_0",
                    json{{"drive_id", "drive_0"}, {"path_on_host", Disk("hotplug.img")}}.dump());
  EXPECT_EQ(patch.status, 204) << patch.body;
  json vm = json::parse(ember.Request("GET", "/vm/config").body);
  ASSERT_EQ(vm["drives"].size(), 9u) << vm.dump();
  EXPECT_EQ(vm["drives"][1]["path_on_host"], dir_.File("hotplug.img")) << vm.dump();
  EXPECT_EQ(vm["machine-config"]["smt"], false) << vm.dump();
  EXPECT_EQ(vm["network-interfaces"][0]["rx_rate_limiter"]["bandwidth"]["size"], 1250000)
      << vm.dump();
  EXPECT_EQ(vm["vsock"]["guest_cid"], 3) << vm.dump();

  ember.Signal(SIGTERM);
  EXPECT_EQ(ember.WaitForExit(15000), -1);
  EXPECT_EQ(ember.killed_by(), SIGTERM) << ember.Stderr();
  char buffer[4096];
  ssize_t n = read(log_reader, buffer, sizeof(buffer));
  EXPECT_GT(n, 0) << "the log FIFO carried lines";
  n = read(metrics_reader, buffer, sizeof(buffer));
  ASSERT_GT(n, 0) << "the metrics FIFO carried lines";
  EXPECT_TRUE(
      json::parse(
          std::string(buffer, buffer + n).substr(0, std::string(buffer, buffer + n).find('\n')),
          nullptr, false)
          .is_object());
  close(log_reader);
  close(metrics_reader);
}

// Kata Containers' Rust runtime (runtime-rs, crates/hypervisor/src/firecracker/fc_api.rs
// at the same revision): everything over the API, one PUT per resource in
// this order, then InstanceStart, later PATCH /drives for a hot-plugged
// block device.
TEST_F(ReplayTest, KataRustRuntime) {
  EmberProcess ember(dir_, {}, InNetns());
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  auto put = [&](const std::string& path, const json& body) {
    HttpResponse answer = ember.Request("PUT", path, body.dump());
    EXPECT_EQ(answer.status, 204) << path << ": " << answer.body;
  };
  put("/boot-source",
      {{"kernel_image_path", Guest()}, {"boot_args", "console=ttyS0 ember.tests=ctrlaltdel"}});
  put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}, {"smt", false}});
  put("/drives/rootfs", {{"drive_id", "rootfs"},
                         {"path_on_host", Disk("rootfs.img")},
                         {"is_root_device", false},
                         {"is_read_only", true}});
  for (int i = 1; i <= 5; ++i) {
    const std::string id = "drive" + std::to_string(i);
    put("/drives/" + id, {{"drive_id", id},
                          {"path_on_host", EmptyFile(id)},
                          {"is_root_device", false},
                          {"is_read_only", false}});
  }
  put("/vsock", {{"guest_cid", 3}, {"uds_path", dir_.File("kata.hvsock")}});
  put("/network-interfaces/eth0",
      {{"iface_id", "eth0"}, {"host_dev_name", "tap0"}, {"guest_mac", kGuestMac}});
  put("/actions", {{"action_type", "InstanceStart"}});
  ASSERT_TRUE(ember.WaitForOutput("ember-guest: waiting for ctrl-alt-del\n", 30000))
      << ember.Stdout() << ember.Stderr();
  HttpResponse patch =
      ember.Request("PATCH", "/drives/drive1",
                    json{{"drive_id", "drive1"}, {"path_on_host", Disk("hotplug.img")}}.dump());
  EXPECT_EQ(patch.status, 204) << patch.body;
  ember.Signal(SIGTERM);
  EXPECT_EQ(ember.WaitForExit(15000), -1);
  EXPECT_EQ(ember.killed_by(), SIGTERM) << ember.Stderr();
}

// firecracker-go-sdk's default handlers (handlers.go, machine.go): the
// readiness probe GET /machine-config until it answers, then PUT /logger
// and /metrics (FIFOs made by the SDK), /machine-config, /boot-source,
// /drives, /network-interfaces, /vsock, InstanceStart; Shutdown sends
// SendCtrlAltDel and waits for the process.
TEST_F(ReplayTest, FirecrackerGoSdkDefaults) {
  const std::string log_fifo = dir_.File("log.fifo"), metrics_fifo = dir_.File("metrics.fifo");
  ASSERT_EQ(mkfifo(log_fifo.c_str(), 0600), 0);
  ASSERT_EQ(mkfifo(metrics_fifo.c_str(), 0600), 0);
  EmberProcess ember(dir_, {}, InNetns());
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  HttpResponse probe = ember.Request("GET", "/machine-config");
  ASSERT_EQ(probe.status, 200) << probe.body;
  EXPECT_TRUE(json::parse(probe.body)["vcpu_count"].is_number()) << probe.body;
  auto put = [&](const std::string& path, const json& body) {
    HttpResponse answer = ember.Request("PUT", path, body.dump());
    EXPECT_EQ(answer.status, 204) << path << ": " << answer.body;
  };
  put("/logger", {{"log_path", log_fifo},
                  {"level", "Debug"},
                  {"show_level", true},
                  {"show_log_origin", true}});
  put("/metrics", {{"metrics_path", metrics_fifo}});
  put("/machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 128}, {"smt", false}});
  put("/boot-source",
      {{"kernel_image_path", Guest()}, {"boot_args", "console=ttyS0 ember.tests=ctrlaltdel"}});
  put("/drives/1", {{"drive_id", "1"},
                    {"path_on_host", Disk("root.img")},
                    {"is_root_device", true},
                    {"is_read_only", false}});
  put("/network-interfaces/1",
      {{"iface_id", "1"}, {"host_dev_name", "tap0"}, {"guest_mac", kGuestMac}});
  put("/vsock", {{"guest_cid", 3}, {"uds_path", dir_.File("v.sock")}});
  put("/actions", {{"action_type", "InstanceStart"}});
  ASSERT_TRUE(ember.WaitForOutput("ember-guest: waiting for ctrl-alt-del\n", 30000))
      << ember.Stdout() << ember.Stderr();
  json info = json::parse(ember.Request("GET", "/").body);
  EXPECT_EQ(info["state"], "Running") << info.dump();
  put("/actions", {{"action_type", "SendCtrlAltDel"}});
  EXPECT_EQ(ember.WaitForExit(20000), 0) << ember.Stderr();
}

// flintlock's Firecracker provider (infrastructure/microvm/firecracker):
// `--api-sock --log-path --metrics-path --level --show-level
// --show-log-origin --boot-timer --config-file`, then stops the VM with
// SIGHUP; Firecracker exits with 156.
TEST_F(ReplayTest, Flintlock) {
  json config{
      {"boot-source",
       {{"kernel_image_path", Guest()}, {"boot_args", "console=ttyS0 ember.tests=ctrlaltdel"}}},
      {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}}},
      {"drives", json::array({{{"drive_id", "root"},
                               {"path_on_host", Disk("root.img")},
                               {"is_root_device", true},
                               {"is_read_only", false}}})},
      {"network-interfaces",
       json::array({{{"iface_id", "eth0"}, {"host_dev_name", "tap0"}, {"guest_mac", kGuestMac}}})}};
  WriteFile(dir_.File("config.json"), config.dump());
  WriteFile(dir_.File("log"), std::string());
  WriteFile(dir_.File("metrics"), std::string());
  EmberProcess ember(dir_,
                     {"--log-path", dir_.File("log"), "--metrics-path", dir_.File("metrics"),
                      "--level", "Debug", "--show-level", "--show-log-origin", "--boot-timer",
                      "--config-file", dir_.File("config.json")},
                     InNetns());
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  ASSERT_TRUE(ember.WaitForOutput("ember-guest: waiting for ctrl-alt-del\n", 30000))
      << ember.Stdout() << ember.Stderr();
  EXPECT_EQ(json::parse(ember.Request("GET", "/").body)["state"], "Running");
  ember.Signal(SIGHUP);
  EXPECT_EQ(ember.WaitForExit(15000), 156) << ember.Stderr();
  EXPECT_NE(ReadFile(dir_.File("log")).find("debug routes.cc:"), std::string::npos)
      << "log lines carry level and origin (file:line): " << ReadFile(dir_.File("log"));
  EXPECT_FALSE(ReadFile(dir_.File("metrics")).empty());
}

// firecracker-containerd (runtime/service.go, noop_jailer.go at
// firecracker-microvm/firecracker-containerd be68640a5d22, with
// firecracker-go-sdk ed6ff32aa924 as its go.mod pins): ember started as
// `--api-sock firecracker.sock --id <vmID>` from the shim directory (so the
// vsock and stub drive paths are relative to it); GET /machine-config every
// 10 ms until it answers; PUT /logger and /metrics on FIFOs that nobody
// reads; machine-config (no cpu_template on AMD, the SDK sends "T2" only on
// Intel), GET /machine-config again; boot-source with its default arguments;
// a read-only root drive and one 512-byte container stub drive named by
// base32 of "ctrstub0"; interface "1"; vsock "agent_api" with guest_cid 0
// (the runtime never sets one); InstanceStart. A container's rootfs is
// PATCHed over the stub and back; PauseVM/ResumeVM are PATCH /vm; StopVM
// reads GET / (Paused is force-killed) and waits 5 s for the guest's reboot
// to end the VMM, for which SendCtrlAltDel stands in here (the agent's
// ttrpc Shutdown needs the real agent).
TEST_F(ReplayTest, FirecrackerContainerd) {
  const std::string log_fifo = dir_.File("fc-logs.fifo"),
                    metrics_fifo = dir_.File("fc-metrics.fifo");
  ASSERT_EQ(mkfifo(log_fifo.c_str(), 0600), 0);
  ASSERT_EQ(mkfifo(metrics_fifo.c_str(), 0600), 0);
  WriteFile(dir_.File("ctrstub0"), std::string(512, '\0'));
  std::vector<std::string> wrapper = InNetns();
  for (const char* arg : {"/usr/bin/env", "--chdir"}) wrapper.push_back(arg);
  wrapper.push_back(dir_.path());
  EmberProcess ember(dir_, {"--id", "ctrd-vm-1"}, wrapper);
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  // The SDK's readiness probe.
  HttpResponse probe;
  for (int i = 0; i < 300 && probe.status != 200; ++i) {
    probe = ember.Request("GET", "/machine-config");
    if (probe.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(probe.status, 200) << probe.body;
  auto put = [&](const std::string& method, const std::string& path, const json& body) {
    HttpResponse answer = ember.Request(method, path, body.dump());
    // The SDK's client takes only 204 as success for a PUT or PATCH.
    EXPECT_EQ(answer.status, 204) << method << " " << path << ": " << answer.body;
  };
  put("PUT", "/logger",
      {{"level", "Debug"},
       {"log_path", log_fifo},
       {"show_level", true},
       {"show_log_origin", false}});
  put("PUT", "/metrics", {{"metrics_path", metrics_fifo}});
  put("PUT", "/machine-config", {{"mem_size_mib", 128}, {"smt", false}, {"vcpu_count", 1}});
  json machine = json::parse(ember.Request("GET", "/machine-config").body);
  EXPECT_EQ(machine["vcpu_count"], 1) << machine.dump();
  EXPECT_EQ(machine["mem_size_mib"], 128) << machine.dump();
  put("PUT", "/boot-source",
      {{"boot_args",
        "console=ttyS0 noapic reboot=k panic=1 pci=off nomodules rw "
        "ember.tests=ctrlaltdel"},
       {"kernel_image_path", Guest()}});
  put("PUT", "/drives/root_drive",
      {{"drive_id", "root_drive"},
       {"is_read_only", true},
       {"is_root_device", true},
       {"path_on_host", Disk("default-rootfs.img")}});
  put("PUT", "/drives/MN2HE43UOVRDA",
      {{"drive_id", "MN2HE43UOVRDA"},
       {"is_read_only", false},
       {"is_root_device", false},
       {"path_on_host", "ctrstub0"}});
  put("PUT", "/network-interfaces/1",
      {{"guest_mac", kGuestMac}, {"host_dev_name", "tap0"}, {"iface_id", "1"}});
  put("PUT", "/vsock",
      {{"guest_cid", 0}, {"uds_path", "firecracker.vsock"}, {"vsock_id", "agent_api"}});
  put("PUT", "/actions", {{"action_type", "InstanceStart"}});
  ASSERT_TRUE(ember.WaitForOutput("ember-guest: waiting for ctrl-alt-del\n", 30000))
      << ember.Stdout() << ember.Stderr();
  struct stat vsock_socket {};
  EXPECT_EQ(stat(dir_.File("firecracker.vsock").c_str(), &vsock_socket), 0)
      << "the relative uds_path is bound in the shim directory";
  // A task's rootfs over the stub, and back when the task is deleted.
  put("PATCH", "/drives/MN2HE43UOVRDA",
      {{"drive_id", "MN2HE43UOVRDA"}, {"path_on_host", Disk("container-rootfs.img")}});
  put("PATCH", "/drives/MN2HE43UOVRDA",
      {{"drive_id", "MN2HE43UOVRDA"}, {"path_on_host", "ctrstub0"}});
  put("PATCH", "/vm", {{"state", "Paused"}});
  EXPECT_EQ(json::parse(ember.Request("GET", "/").body)["state"], "Paused");
  put("PATCH", "/vm", {{"state", "Resumed"}});
  // StopVM: not Paused, so the guest is asked to shut down and the VMM
  // must end within 5 s.
  json info = json::parse(ember.Request("GET", "/").body);
  EXPECT_EQ(info["state"], "Running") << info.dump();
  put("PUT", "/actions", {{"action_type", "SendCtrlAltDel"}});
  EXPECT_EQ(ember.WaitForExit(5000), 0) << ember.Stderr();
}

// E2B's orchestrator (packages/orchestrator/pkg/sandbox/fc/process.go and
// client.go at e2b-dev/infra 54693ff353d2): ember started with only
// `--api-sock`, its metrics on a FIFO the orchestrator reads; a template
// build's cold boot sends metrics, boot-source with E2B's arguments, the
// rootfs drive (Sync engine), eth0 with E2B's MAC in capitals, MMDS V2 on
// it, machine-config with SMT, huge_pages 2M and no dirty tracking, entropy
// with E2B's limiter, MMDS data, InstanceStart; FlushMetrics every 5 s
// (twice here); a resume's rate-limiter resets (PATCH eth0 and rootfs with
// empty limiters); then pause and PUT /snapshot/create, which needs
// ember's snapshots (issue 18): until they exist, the answer must be a 400
// that names them. Its resume path, PUT /snapshot/load with a Uffd
// backend, is checked the same way in a second ember. Stop: SIGTERM, 10 s,
// then SIGKILL.
TEST_F(ReplayTest, E2bOrchestrator) {
  HugePagePool pool;
  ASSERT_GE(pool.Resize(64), 64) << "the kernel gave fewer huge pages";
  const std::string metrics_fifo = dir_.File("fc-metrics.fifo");
  ASSERT_EQ(mkfifo(metrics_fifo.c_str(), 0600), 0);
  int metrics_reader = open(metrics_fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(metrics_reader, 0);
  EmberProcess ember(dir_, {}, InNetns());
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  auto send = [&](const std::string& method, const std::string& path, const json& body) {
    return ember.Request(method, path, body.dump());
  };
  auto put = [&](const std::string& method, const std::string& path, const json& body) {
    HttpResponse answer = send(method, path, body);
    EXPECT_EQ(answer.status, 204) << method << " " << path << ": " << answer.body;
  };
  put("PUT", "/metrics", {{"metrics_path", metrics_fifo}});
  put("PUT", "/boot-source",
      {{"kernel_image_path", Guest()},
       {"boot_args",
        "i8042.noaux i8042.nokbd init=/sbin/init "
        "ip=169.254.0.21::10.12.0.1:255.255.255.252:instance:eth0:off:tap0 ipv6.autoconf=1 "
        "ipv6.disable=0 loglevel=1 panic=1 pci=off quiet random.trust_cpu=on reboot=k "
        "rootflags=discard clocksource=kvm-clock console=ttyS0 ember.tests=ctrlaltdel"}});
  put("PUT", "/drives/rootfs",
      {{"drive_id", "rootfs"},
       {"path_on_host", Disk("rootfs.ext4")},
       {"is_root_device", true},
       {"io_engine", "Sync"}});
  put("PUT", "/network-interfaces/eth0",
      {{"iface_id", "eth0"}, {"host_dev_name", "tap0"}, {"guest_mac", "02:FC:00:00:00:05"}});
  put("PUT", "/mmds/config", {{"version", "V2"}, {"network_interfaces", {"eth0"}}});
  put("PUT", "/machine-config",
      {{"vcpu_count", 2},
       {"mem_size_mib", 128},
       {"smt", true},
       {"track_dirty_pages", false},
       {"huge_pages", "2M"}});
  put("PUT", "/entropy",
      {{"rate_limiter",
        {{"bandwidth", {{"size", 1024}, {"one_time_burst", 0}, {"refill_time", 100}}}}}});
  put("PUT", "/mmds",
      {{"instanceID", "i7m1xq2nbd4zt0dj0e4o5"},
       {"envID", "base"},
       {"address", "http://10.12.0.1/logs"},
       {"accessTokenHash", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}});
  put("PUT", "/actions", {{"action_type", "InstanceStart"}});
  ASSERT_TRUE(ember.WaitForOutput("ember-guest: waiting for ctrl-alt-del\n", 30000))
      << ember.Stdout() << ember.Stderr();
  json vm = json::parse(ember.Request("GET", "/vm/config").body);
  EXPECT_EQ(vm["machine-config"]["huge_pages"], "2M") << vm.dump();
  EXPECT_EQ(vm["network-interfaces"][0]["guest_mac"], "02:fc:00:00:00:05") << vm.dump();
  EXPECT_EQ(json::parse(ember.Request("GET", "/mmds").body)["envID"], "base");

  // FlushMetrics, as E2B's 5 s ticker sends it: each flush is a JSON line
  // with the net and block groups it reads.
  put("PUT", "/actions", {{"action_type", "FlushMetrics"}});
  put("PUT", "/actions", {{"action_type", "FlushMetrics"}});
  std::string lines;
  char buffer[65536];
  for (ssize_t n; (n = read(metrics_reader, buffer, sizeof(buffer))) > 0;) lines.append(buffer, n);
  close(metrics_reader);
  ASSERT_GE(Occurrences(lines, "\n"), 2u) << lines;
  json last = json::parse(lines.substr(0, lines.find('\n')), nullptr, false);
  ASSERT_TRUE(last.is_object()) << lines;
  EXPECT_TRUE(last["net"]["tx_bytes_count"].is_number()) << last.dump();
  EXPECT_TRUE(last["net"]["rx_bytes_count"].is_number()) << last.dump();
  EXPECT_TRUE(last["block"]["read_bytes"].is_number()) << last.dump();

  // The resume path's limiter resets, valid on a running VM.
  put("PATCH", "/network-interfaces/eth0",
      {{"iface_id", "eth0"}, {"tx_rate_limiter", json::object()}});
  put("PATCH", "/drives/rootfs", {{"drive_id", "rootfs"}, {"rate_limiter", json::object()}});

  // Pause and snapshot: the snapshot step needs issue 18.
  put("PATCH", "/vm", {{"state", "Paused"}});
  HttpResponse snapshot =
      send("PUT", "/snapshot/create",
           {{"snapshot_type", "Full"}, {"snapshot_path", dir_.File("snapfile")}});
  EXPECT_EQ(snapshot.status, 400);
  EXPECT_EQ(Fault(snapshot),
            "Invalid request method and/or path: PUT /snapshot/create. ember does not implement "
            "snapshots yet.");
  put("PATCH", "/vm", {{"state", "Resumed"}});
  ember.Signal(SIGTERM);
  EXPECT_EQ(ember.WaitForExit(10000), -1);
  EXPECT_EQ(ember.killed_by(), SIGTERM) << ember.Stderr();

  // A sandbox resume in a fresh ember: metrics, then the snapshot load.
  TempDir resume_dir;
  EmberProcess resumed(resume_dir, {}, InNetns());
  ASSERT_TRUE(resumed.started()) << resumed.Stderr();
  const std::string resume_metrics = resume_dir.File("fc-metrics.fifo");
  ASSERT_EQ(mkfifo(resume_metrics.c_str(), 0600), 0);
  HttpResponse metrics =
      resumed.Request("PUT", "/metrics", json{{"metrics_path", resume_metrics}}.dump());
  EXPECT_EQ(metrics.status, 204) << metrics.body;
  HttpResponse load = resumed.Request(
      "PUT", "/snapshot/load",
      json{{"snapshot_path", dir_.File("snapfile")},
           {"mem_backend",
            {{"backend_type", "Uffd"}, {"backend_path", resume_dir.File("uffd.sock")}}}}
          .dump());
  EXPECT_EQ(load.status, 400);
  EXPECT_EQ(Fault(load),
            "Invalid request method and/or path: PUT /snapshot/load. ember does not implement "
            "snapshots yet.");
  resumed.Signal(SIGTERM);
  EXPECT_EQ(resumed.WaitForExit(10000), -1);
  EXPECT_EQ(resumed.killed_by(), SIGTERM) << resumed.Stderr();
}

}  // namespace
}  // namespace ember::testing
