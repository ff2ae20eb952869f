#include "config/config_parser.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace ember {
namespace {

std::string ErrorOf(const std::string& text) {
  Result<VmConfig> config = ParseVmConfig(text);
  EXPECT_FALSE(config.ok()) << text;
  return config.ok() ? "" : config.status().message();
}

TEST(ConfigParserTest, ParsesFirecrackerConfigFile) {
  Result<VmConfig> config = ParseVmConfig(R"({
    "boot-source": {"kernel_image_path": "/k", "boot_args": "console=ttyS0", "initrd_path": "/i"},
    "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "smt": false,
                       "track_dirty_pages": false, "cpu_template": "None"},
    "drives": [],
    "serial": {"serial_out_path": "/tmp/console"}})");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->boot_source->kernel_image_path, "/k");
  EXPECT_EQ(config->boot_source->boot_args, "console=ttyS0");
  EXPECT_EQ(config->boot_source->initrd_path, "/i");
  EXPECT_EQ(config->machine.vcpu_count, 2u);
  EXPECT_EQ(config->machine.mem_size_mib, 256u);
  EXPECT_EQ(config->serial.serial_out_path, "/tmp/console");
}

TEST(ConfigParserTest, DefaultsMachineConfigAndTreatsNullAsAbsent) {
  Result<VmConfig> config =
      ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k", "initrd_path": null}})");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->machine.vcpu_count, 1u);
  EXPECT_EQ(config->machine.mem_size_mib, 128u);
  EXPECT_FALSE(config->boot_source->initrd_path.has_value());
  EXPECT_FALSE(config->boot_source->boot_args.has_value());
}

TEST(ConfigParserTest, NamesTheFieldAndReason) {
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "/k", "bogus": 1}})"),
            "boot-source.bogus: unknown field");
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "/k"}, "extra": {}})"),
            "extra: unknown field");
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": 7}})"),
            "boot-source.kernel_image_path: must be a string, got an integer");
  EXPECT_EQ(ErrorOf(R"({"boot-source": {}})"), "boot-source.kernel_image_path: is required");
  EXPECT_EQ(ErrorOf(R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 128}})"),
            "boot-source: is required");
  EXPECT_EQ(ErrorOf(R"({"boot-source": "k"})"), "boot-source: must be an object, got a string");
  EXPECT_EQ(ErrorOf(R"([1, 2])"), "body: must be a JSON object, got an array");
}

TEST(ConfigParserTest, ChecksMachineConfigRanges) {
  auto with_machine = [](const std::string& machine) {
    return R"({"boot-source": {"kernel_image_path": "/k"}, "machine-config": )" + machine + "}";
  };
  EXPECT_EQ(ErrorOf(with_machine(R"({"vcpu_count": 0, "mem_size_mib": 128})")),
            "machine-config.vcpu_count: must be between 1 and 32, got 0");
  EXPECT_EQ(ErrorOf(with_machine(R"({"vcpu_count": 33, "mem_size_mib": 128})")),
            "machine-config.vcpu_count: must be between 1 and 32, got 33");
  EXPECT_EQ(ErrorOf(with_machine(R"({"vcpu_count": -1, "mem_size_mib": 128})")),
            "machine-config.vcpu_count: must be an integer between 1 and 32, got -1");
  EXPECT_EQ(ErrorOf(with_machine(R"({"vcpu_count": 1.5, "mem_size_mib": 128})")),
            "machine-config.vcpu_count: must be an integer between 1 and 32, got a number with a "
            "fraction");
  EXPECT_EQ(ErrorOf(with_machine(R"({"vcpu_count": "2", "mem_size_mib": 128})")),
            "machine-config.vcpu_count: must be an integer between 1 and 32, got a string");
  EXPECT_EQ(ErrorOf(with_machine(R"({"vcpu_count": 1, "mem_size_mib": 0})")),
            "machine-config.mem_size_mib: must be between 1 and 1048576, got 0");
  EXPECT_EQ(ErrorOf(with_machine(R"({"vcpu_count": 1, "mem_size_mib": 4294967296})")),
            "machine-config.mem_size_mib: must be between 1 and 1048576, got 4294967296");
  EXPECT_EQ(ErrorOf(with_machine(R"({"vcpu_count": 1})")),
            "machine-config.mem_size_mib: is required");
  EXPECT_EQ(ErrorOf(with_machine(R"({"vcpu_count": 3, "mem_size_mib": 128, "smt": true})")),
            "machine-config.vcpu_count: must be 1 or even when smt is enabled, got 3");
  EXPECT_NE(
      ErrorOf(with_machine(R"({"vcpu_count": 1, "mem_size_mib": 128, "track_dirty_pages": true})"))
          .find("track_dirty_pages"),
      std::string::npos);
  EXPECT_NE(ErrorOf(with_machine(R"({"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": "T2"})"))
                .find("cpu_template"),
            std::string::npos);
}

TEST(ConfigParserTest, HugePagesAreNoneOr2MOfWholePages) {
  auto with_machine = [](const std::string& machine) {
    return R"({"boot-source": {"kernel_image_path": "/k"}, "machine-config": )" + machine + "}";
  };
  Result<VmConfig> huge =
      ParseVmConfig(with_machine(R"({"vcpu_count": 2, "mem_size_mib": 128, "huge_pages": "2M"})"));
  ASSERT_TRUE(huge.ok()) << huge.status().message();
  EXPECT_TRUE(huge->machine.huge_pages_2m);
  Result<VmConfig> none = ParseVmConfig(
      with_machine(R"({"vcpu_count": 2, "mem_size_mib": 127, "huge_pages": "None"})"));
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_FALSE(none->machine.huge_pages_2m);
  EXPECT_EQ(ErrorOf(with_machine(R"({"vcpu_count": 1, "mem_size_mib": 127, "huge_pages": "2M"})")),
            "machine-config.mem_size_mib: The memory size (MiB) is either 0, or not a multiple of "
            "the configured page size (127 MiB on 2 MiB huge pages)");
  EXPECT_EQ(ErrorOf(with_machine(R"({"vcpu_count": 1, "mem_size_mib": 128, "huge_pages": "1G"})")),
            "machine-config.huge_pages: must be \"None\" or \"2M\", got \"1G\"");
}

TEST(ConfigParserTest, LoggerAndMetricsSections) {
  Result<VmConfig> config = ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"},
      "logger": {"log_path": "/tmp/log", "level": "debug", "show_level": true},
      "metrics": {"metrics_path": "/tmp/metrics"}})");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->logger->log_path, "/tmp/log");
  EXPECT_EQ(config->logger->level, "debug");
  EXPECT_TRUE(config->logger->show_level);
  EXPECT_FALSE(config->logger->show_log_origin);
  EXPECT_EQ(config->metrics_path, "/tmp/metrics");
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "/k"}, "logger": {"level": "Loud"}})"),
            "logger.level: unknown log level \"Loud\" (Error, Warning, Info, Debug, Trace or Off)");
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "/k"}, "metrics": {}})"),
            "metrics.metrics_path: is required");
  EXPECT_NE(ErrorOf(R"({"boot-source": {"kernel_image_path": "/k"}, "logger": {"module": "api"}})")
                .find("logger.module"),
            std::string::npos);
}

TEST(ConfigParserTest, FsDevices) {
  Result<VmConfig> config = ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"},
      "fs": [{"fs_id": "a", "tag": "share", "socket": "/tmp/a.sock"},
             {"fs_id": "b", "tag": "other", "socket": "/tmp/b.sock", "num_queues": 2,
              "queue_size": 512}]})");
  ASSERT_TRUE(config.ok()) << config.status().message();
  ASSERT_EQ(config->fs.size(), 2u);
  EXPECT_EQ(config->fs[0].num_queues, 1u);
  EXPECT_EQ(config->fs[0].queue_size, 1024u);
  EXPECT_EQ(config->fs[1].num_queues, 2u);
  EXPECT_EQ(config->fs[1].queue_size, 512u);
  auto fs = [](const std::string& devices) {
    return ErrorOf(R"({"boot-source": {"kernel_image_path": "/k"}, "fs": [)" + devices + "]}");
  };
  EXPECT_EQ(
      fs(R"({"fs_id": "a", "tag": "x", "socket": "/s"}, {"fs_id": "b", "tag": "x", "socket": "/t"})"),
      "fs: the tag \"x\" is used by both a and b");
  EXPECT_EQ(
      fs(R"({"fs_id": "a", "tag": "x", "socket": "/s"}, {"fs_id": "a", "tag": "y", "socket": "/t"})"),
      "fs: the id \"a\" is used twice");
  EXPECT_EQ(fs(R"({"fs_id": "a", "tag": ")" + std::string(37, 't') + R"(", "socket": "/s"})"),
            "fs[0].tag: must be 1 to 36 bytes, got 37");
  EXPECT_EQ(fs(R"({"fs_id": "a", "tag": "x"})"),
            "fs[0].socket: is required (the vhost-user backend's socket)");
  EXPECT_EQ(fs(R"({"fs_id": "a", "tag": "x", "socket": "/s", "queue_size": 100})"),
            "fs[0].queue_size: must be a power of two, got 100");
  EXPECT_EQ(fs(R"({"fs_id": "a", "tag": "x", "socket": "/s", "num_queues": 0})"),
            "fs[0].num_queues: must be between 1 and 16, got 0");
  Result<FsConfig> mismatch =
      ParseFs(nlohmann::json::parse(R"({"fs_id": "a", "tag": "x", "socket": "/s"})"), "", "b");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().message(),
            "fs_id: The id from the path [b] does not match the id from the body [a]!");
}

// Ids reach the log, the metrics and URLs: Firecracker's rule, 1 to 64 of
// [A-Za-z0-9_], for every device id.
TEST(ConfigParserTest, DeviceIdsAreLettersDigitsAndUnderscores) {
  auto fs_error = [](const std::string& id) {
    Result<FsConfig> parsed =
        ParseFs(nlohmann::json{{"fs_id", id}, {"tag", "x"}, {"socket", "/s"}}, "", "");
    return parsed.ok() ? std::string("ok") : parsed.status().message();
  };
  auto net_error = [](const std::string& id) {
    Result<NetConfig> parsed =
        ParseNetworkInterface(nlohmann::json{{"iface_id", id}, {"socket", "/s"}}, "", "");
    return parsed.ok() ? std::string("ok") : parsed.status().message();
  };
  EXPECT_EQ(fs_error("Share_01"), "ok");
  EXPECT_EQ(net_error(std::string(64, 'e')), "ok");
  EXPECT_EQ(fs_error(""), "fs_id: must be 1 to 64 characters, got 0");
  EXPECT_EQ(net_error(std::string(65, 'e')), "iface_id: must be 1 to 64 characters, got 65");
  for (const char* bad : {"eth-0", "a/b", "../x", "line\nbreak", "caf\xc3\xa9", "a b"}) {
    EXPECT_EQ(fs_error(bad),
              "fs_id: API Resource IDs can only contain alphanumeric characters and underscores.")
        << bad;
    EXPECT_EQ(
        net_error(bad),
        "iface_id: API Resource IDs can only contain alphanumeric characters and underscores.")
        << bad;
  }
}

TEST(ConfigParserTest, NetworkInterfaces) {
  auto net = [](const std::string& devices) {
    return R"({"boot-source": {"kernel_image_path": "/k"}, "network-interfaces": [)" + devices +
           "]}";
  };
  Result<VmConfig> config = ParseVmConfig(net(
      R"({"iface_id": "eth0", "guest_mac": "52:54:00:AB:cd:01", "socket": "/tmp/n.sock", "mtu": 1500},
         {"iface_id": "eth1", "socket": "/tmp/m.sock"})"));
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(FormatMac(config->net[0].guest_mac), "52:54:00:ab:cd:01");
  EXPECT_EQ(config->net[0].mtu, 1500);
  EXPECT_EQ(config->net[1].queue_size, 256u);
  // No MAC given: a stable, locally administered unicast one.
  std::array<uint8_t, 6> generated = config->net[1].guest_mac;
  EXPECT_EQ(generated[0], 0x06);
  EXPECT_EQ(ParseVmConfig(net(R"({"iface_id": "eth1", "socket": "/x"})"))->net[0].guest_mac,
            generated);
  EXPECT_NE(ParseVmConfig(net(R"({"iface_id": "eth2", "socket": "/x"})"))->net[0].guest_mac,
            generated);

  Result<VmConfig> tap = ParseVmConfig(net(R"({"iface_id": "eth0", "host_dev_name": "tap0",
      "rx_rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 10}}})"));
  ASSERT_TRUE(tap.ok()) << tap.status().message();
  EXPECT_EQ(tap->net[0].host_dev_name, "tap0");
  EXPECT_EQ(tap->net[0].rx_rate_limiter->bandwidth->size, 1000u);
  EXPECT_FALSE(tap->net[0].tx_rate_limiter);
  EXPECT_EQ(ErrorOf(net(R"({"iface_id": "eth0"})")),
            "network-interfaces[0].host_dev_name: is required (a TAP device), or \"socket\" for "
            "a vhost-user backend");
  EXPECT_EQ(
      ErrorOf(net(R"({"iface_id": "eth0", "host_dev_name": "tap0", "socket_mode": "server"})")),
      "network-interfaces[0].socket_mode: only for vhost-user interfaces (give \"socket\")");
  EXPECT_EQ(ErrorOf(net(R"({"iface_id": "eth0", "host_dev_name": "a-name-longer-than-15"})")),
            "network-interfaces[0].host_dev_name: must be 1 to 15 bytes, got 21");
  EXPECT_EQ(ErrorOf(net(R"({"iface_id": "eth0", "socket": "/s",
      "tx_rate_limiter": {"ops": {"size": 1, "refill_time": 1}}})")),
            "network-interfaces[0].tx_rate_limiter: not for vhost-user interfaces (the backend "
            "switches the packets)");
  EXPECT_EQ(ErrorOf(net(R"({"iface_id": "eth0", "socket": "/s", "guest_mac": "52:54:00:12:34"})")),
            "network-interfaces[0].guest_mac: \"52:54:00:12:34\" is not a MAC address like "
            "52:54:00:12:34:56");
  EXPECT_EQ(
      ErrorOf(net(R"({"iface_id": "eth0", "socket": "/s", "guest_mac": "zz:54:00:12:34:56"})")),
      "network-interfaces[0].guest_mac: \"zz:54:00:12:34:56\" is not a MAC address like "
      "52:54:00:12:34:56");
  EXPECT_NE(
      ErrorOf(net(R"({"iface_id": "eth0", "socket": "/s", "guest_mac": "01:00:5e:00:00:01"})"))
          .find("multicast"),
      std::string::npos);
  EXPECT_EQ(ErrorOf(net(R"({"iface_id": "a", "socket": "/s", "guest_mac": "52:54:00:00:00:01"},
                          {"iface_id": "b", "socket": "/t", "guest_mac": "52:54:00:00:00:01"})")),
            "network-interfaces: the MAC 52:54:00:00:00:01 is used by both a and b");
  EXPECT_NE(ErrorOf(net(R"({"iface_id": "a", "socket": "/s", "rx_rate_limiter": {}})"))
                .find("not for vhost-user interfaces"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(net(R"({"iface_id": "a", "host_dev_name": "tap0"},
                          {"iface_id": "b", "host_dev_name": "tap0"})")),
            "network-interfaces: the TAP tap0 is used by both a and b");
}

TEST(ConfigParserTest, PatchKeepsFieldsThatAreAbsent) {
  MachineConfig base{4, 512, false, false};
  Result<MachineConfig> patched =
      ParseMachineConfig(nlohmann::json::parse(R"({"mem_size_mib": 1024})"), "machine-config",
                         UpdateKind::kPatch, base);
  ASSERT_TRUE(patched.ok());
  EXPECT_EQ(patched->vcpu_count, 4u);
  EXPECT_EQ(patched->mem_size_mib, 1024u);
  EXPECT_TRUE(patched->acpi) << "ACPI is on unless turned off";
  Result<MachineConfig> no_acpi = ParseMachineConfig(nlohmann::json::parse(R"({"acpi": false})"),
                                                     "machine-config", UpdateKind::kPatch, base);
  ASSERT_TRUE(no_acpi.ok());
  EXPECT_FALSE(no_acpi->acpi);
}

TEST(ConfigParserTest, RefusesWhatEmberDoesNotProvide) {
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "/k"}, "balloon": {}})"),
            "balloon: not supported by ember yet");
}

TEST(ConfigParserTest, ParsesVsockAsFirecrackerWritesIt) {
  Result<VmConfig> config = ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"},
      "vsock": {"vsock_id": "vsock0", "guest_cid": 3, "uds_path": "/run/v.sock"}})");
  ASSERT_TRUE(config.ok()) << config.status().message();
  ASSERT_TRUE(config->vsock.has_value());
  EXPECT_EQ(config->vsock->guest_cid, 3u);
  EXPECT_EQ(config->vsock->uds_path, "/run/v.sock");
  EXPECT_EQ(config->vsock->vsock_id, "vsock0");
  // vsock_id is optional (Firecracker deprecated it).
  config = ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"},
      "vsock": {"guest_cid": 42, "uds_path": "v.sock"}})");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_FALSE(config->vsock->vsock_id.has_value());
}

TEST(ConfigParserTest, RefusesBadVsock) {
  auto vsock_error = [](const std::string& vsock) {
    return ErrorOf(R"({"boot-source": {"kernel_image_path": "/k"}, "vsock": )" + vsock + "}");
  };
  EXPECT_EQ(vsock_error(R"({"guest_cid": 4294967296, "uds_path": "/v"})"),
            "vsock.guest_cid: must be between 0 and 4294967295, got 4294967296");
  EXPECT_EQ(vsock_error(R"({"guest_cid": "3", "uds_path": "/v"})"),
            "vsock.guest_cid: must be an integer between 0 and 4294967295, got a string");
  EXPECT_EQ(vsock_error(R"({"uds_path": "/v"})"), "vsock.guest_cid: is required");
  EXPECT_EQ(vsock_error(R"({"guest_cid": 3})"), "vsock.uds_path: is required");
  EXPECT_EQ(vsock_error(R"({"guest_cid": 3, "uds_path": ""})"),
            "vsock.uds_path: must be 1 to 107 bytes (a Unix socket path), got 0");
  EXPECT_EQ(vsock_error(R"({"guest_cid": 3, "uds_path": ")" + std::string(108, 'a') + R"("})"),
            "vsock.uds_path: must be 1 to 107 bytes (a Unix socket path), got 108");
  EXPECT_EQ(vsock_error(R"({"guest_cid": 3, "uds_path": "/v", "cid": 3})"),
            "vsock.cid: unknown field");
  EXPECT_EQ(
      vsock_error(R"({"guest_cid": 3, "uds_path": "/v", "vsock_id": "a/b"})"),
      "vsock.vsock_id: API Resource IDs can only contain alphanumeric characters and underscores.");
  EXPECT_EQ(vsock_error("[]"), "vsock: must be an object, got an array");
}

TEST(ConfigParserTest, ParsesDrivesRootFirst) {
  Result<VmConfig> config = ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"},
      "drives": [{"drive_id": "data", "path_on_host": "/d", "is_root_device": false},
                 {"drive_id": "rootfs", "path_on_host": "/r", "is_root_device": true,
                  "is_read_only": true, "cache_type": "Writeback", "io_engine": "Sync",
                  "partuuid": "abc-01", "rate_limiter": null}]})");
  ASSERT_TRUE(config.ok()) << config.status().message();
  ASSERT_EQ(config->drives.size(), 2u);
  EXPECT_EQ(config->drives[0].drive_id, "rootfs");
  EXPECT_TRUE(config->drives[0].is_read_only);
  EXPECT_EQ(config->drives[0].cache_type, CacheType::kWriteback);
  EXPECT_EQ(config->drives[0].partuuid, "abc-01");
  EXPECT_EQ(config->drives[1].drive_id, "data");
  EXPECT_EQ(config->drives[1].cache_type, CacheType::kUnsafe);
  EXPECT_FALSE(config->drives[1].is_read_only);
}

TEST(ConfigParserTest, RefusesBadDrives) {
  auto drive_error = [](const std::string& drive) {
    return ErrorOf(R"({"boot-source": {"kernel_image_path": "/k"}, "drives": [)" + drive + "]}");
  };
  EXPECT_EQ(drive_error(R"({"drive_id": "a", "path_on_host": "/a"})"),
            "drives[0].is_root_device: is required");
  EXPECT_EQ(drive_error(R"({"drive_id": "a", "is_root_device": false})"),
            "drives[0].path_on_host: is required (or \"socket\" for a vhost-user drive)");
  EXPECT_EQ(drive_error(R"({"drive_id": "a", "path_on_host": "", "is_root_device": false})"),
            "drives[0].path_on_host: is empty");
  EXPECT_EQ(drive_error(R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": 1})"),
            "drives[0].is_root_device: must be a boolean, got an integer");
  EXPECT_NE(drive_error(R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": true},
                           {"drive_id": "b", "path_on_host": "/b", "is_root_device": true})")
                .find("A root block device already exists!"),
            std::string::npos);
  EXPECT_EQ(drive_error(R"({"drive_id": "a/b", "path_on_host": "/a", "is_root_device": true})"),
            "drives[0].drive_id: API Resource IDs can only contain alphanumeric characters and "
            "underscores.");
}

TEST(ConfigParserTest, DriveUpdatesNeedAPath) {
  Result<DriveUpdate> update =
      ParseDriveUpdate(nlohmann::json::parse(R"({"drive_id": "d", "path_on_host": "/p"})"), "d");
  ASSERT_TRUE(update.ok());
  EXPECT_EQ(update->path_on_host, "/p");
  EXPECT_EQ(ParseDriveUpdate(nlohmann::json::parse(R"({"drive_id": "d"})"), "d").status().message(),
            "the request changes nothing: give path_on_host or rate_limiter");
  EXPECT_EQ(ParseDriveUpdate(nlohmann::json::parse(R"({"drive_id": "d", "size": 1})"), "d")
                .status()
                .message(),
            "size: unknown field");
}

TEST(ConfigParserTest, ReportsInvalidJsonAndOverlongCmdline) {
  EXPECT_NE(ErrorOf(R"({"boot-source": )").find("invalid JSON"), std::string::npos);
  EXPECT_NE(ErrorOf("").find("invalid JSON"), std::string::npos);
  // A number too big for a double: nlohmann throws out_of_range, not
  // parse_error (found by fuzz_config; it ended ember).
  EXPECT_NE(ErrorOf(R"({"machine-config": {"vcpu_count": 1e999999}})")
                .find("invalid JSON: [json.exception.out_of_range.406] number overflow"),
            std::string::npos);
  std::string long_args(3000, 'a');
  EXPECT_NE(
      ErrorOf(R"({"boot-source": {"kernel_image_path": "/k", "boot_args": ")" + long_args + "\"}}")
          .find("boot-source.boot_args: is 3000 bytes"),
      std::string::npos);
}

TEST(ConfigParserTest, LoadsFromFileAndNamesTheFile) {
  testing::TempDir dir;
  EXPECT_NE(LoadVmConfigFile(dir.File("missing.json")).status().message().find("cannot be opened"),
            std::string::npos);
  testing::WriteFile(dir.File("bad.json"), std::string(R"({"boot-source": 1})"));
  Result<VmConfig> bad = LoadVmConfigFile(dir.File("bad.json"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(dir.File("bad.json")), std::string::npos);
  testing::WriteFile(dir.File("good.json"),
                     std::string(R"({"boot-source": {"kernel_image_path": "/k"}})"));
  EXPECT_TRUE(LoadVmConfigFile(dir.File("good.json")).ok());
}

}  // namespace
}  // namespace ember
