// Drives (virtio-blk emulated by ember), through the real ember binary: the
// test guest reads, writes, flushes and asks for ids on real KVM and the
// host file holds what it wrote; a hostile driver gets errors and a reset,
// never a crash; PATCH after boot moves a placeholder drive to a new file;
// and every field and error of PUT/PATCH /drives over the API socket.
// Booting needs /dev/kvm; those tests skip, saying so, only without it.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

constexpr int kTimeoutMs = 60000;
constexpr size_t kSector = 512;

bool HaveKvm() { return access("/dev/kvm", R_OK | W_OK) == 0; }
std::string GuestPvh() { return std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"; }

bool HasLine(const std::string& output, const std::string& line) {
  return output.find(line + "\n") != std::string::npos;
}

// A file whose byte i is i * multiplier + offset.
std::vector<uint8_t> Pattern(size_t bytes, unsigned multiplier, unsigned offset) {
  std::vector<uint8_t> data(bytes);
  for (size_t i = 0; i < bytes; ++i) data[i] = static_cast<uint8_t>(i * multiplier + offset);
  return data;
}

// The guest's byte_sum: a 32-bit sum of bytes, as 8 hex digits.
std::string Sum(const std::vector<uint8_t>& data, size_t offset, size_t bytes) {
  uint32_t sum = 0;
  for (size_t i = offset; i < offset + bytes; ++i) sum += data[i];
  char text[9];
  snprintf(text, sizeof(text), "%08x", sum);
  return text;
}

json Drive(const std::string& id, const std::string& path, bool root, bool read_only = false) {
  return {{"drive_id", id},
          {"path_on_host", path},
          {"is_root_device", root},
          {"is_read_only", read_only}};
}

ProcessResult BootWithDrives(const TempDir& dir, const std::string& tests, const json& drives) {
  json config{
      {"boot-source",
       {{"kernel_image_path", GuestPvh()}, {"boot_args", "console=ttyS0 ember.tests=" + tests}}},
      {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 64}}},
      {"drives", drives}};
  WriteFile(dir.File("vm.json"), config.dump());
  return RunProcess({EMBER_BINARY, "--no-api", "--config-file", dir.File("vm.json")}, kTimeoutMs);
}

class DriveKvmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: booting the guest needs it";
  }
  TempDir dir_;
};

// What the guest's `blk` test prints for the two drives below, and what
// the files hold afterwards: its writes in the root drive, nothing else.
void ExpectGuestIo(const ProcessResult& result, const TempDir& dir,
                   const std::vector<uint8_t>& root, const std::vector<uint8_t>& data) {
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string& out = result.out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blk drive=0 capacity=2048 ro=0 flush=1")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blk drive=0 id=rootfs status=0")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blk drive=0 read sectors=16 sum=0x" +
                               Sum(root, 0, 16 * kSector) + " status=0"))
      << out;
  const std::vector<uint8_t> written = Pattern(8 * kSector, 7, 0);
  EXPECT_TRUE(HasLine(out, "ember-guest: blk drive=0 wrote sectors=8 sum=0x" +
                               Sum(written, 0, written.size()) + " status=0 flush=0 readback=ok"))
      << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blk drive=0 past-end status=1 unsupported=2")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blk drive=1 capacity=128 ro=1 flush=0")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blk drive=1 id=data status=0")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blk drive=1 read sectors=16 sum=0x" +
                               Sum(data, 0, 16 * kSector) + " status=0"))
      << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blk drive=1 write-ro status=1")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blk drives=2 ok")) << out;
  std::string after = ReadFile(dir.File("root.img"));
  ASSERT_EQ(after.size(), root.size());
  std::vector<uint8_t> expected = root;
  std::copy(written.begin(), written.end(), expected.begin() + 16 * kSector);
  EXPECT_TRUE(
      std::equal(expected.begin(), expected.end(), reinterpret_cast<const uint8_t*>(after.data())));
  EXPECT_EQ(ReadFile(dir.File("data.img")), std::string(data.begin(), data.end()));
}

// A Writeback root drive and a read-only data drive, on `engine`.
json GuestIoDrives(const TempDir& dir, const std::string& engine) {
  json root = Drive("rootfs", dir.File("root.img"), true);
  root["cache_type"] = "Writeback";
  root["io_engine"] = engine;
  json data = Drive("data", dir.File("data.img"), false, true);
  data["io_engine"] = engine;
  // Given data first: the root drive still becomes vda.
  return json::array({data, root});
}

// The root drive is attached first (vda, drive=0 in the guest) whatever the
// order given, gets root=/dev/vda rw, and its writes reach the host file;
// the read-only drive refuses writes at the device.
TEST_F(DriveKvmTest, GuestReadsWritesFlushesAndGetsIds) {
  const std::vector<uint8_t> root = Pattern(1 << 20, 13, 5);
  const std::vector<uint8_t> data = Pattern(64 * 1024, 3, 1);
  WriteFile(dir_.File("root.img"), root);
  WriteFile(dir_.File("data.img"), data);
  ProcessResult result = BootWithDrives(dir_, "cmdline,blk", GuestIoDrives(dir_, "Sync"));
  EXPECT_NE(result.out.find(" root=/dev/vda rw "), std::string::npos) << result.out;
  ExpectGuestIo(result, dir_, root, data);
}

// The same guest I/O and hostile driver with io_engine Async: requests go
// through an io_uring, and a reset waits for those in the kernel.
TEST_F(DriveKvmTest, AsyncEngineServesTheSameRequestsThroughIoUring) {
  const std::vector<uint8_t> root = Pattern(1 << 20, 13, 5);
  const std::vector<uint8_t> data = Pattern(64 * 1024, 3, 1);
  WriteFile(dir_.File("root.img"), root);
  WriteFile(dir_.File("data.img"), data);
  ProcessResult result = BootWithDrives(dir_, "blk,blkbad", GuestIoDrives(dir_, "Async"));
  EXPECT_TRUE(HasLine(result.out, "ember-guest: blkbad ok")) << result.out;
  ExpectGuestIo(result, dir_, root, data);
}

TEST_F(DriveKvmTest, PartuuidAndReadOnlyRootGoOnTheCommandLine) {
  WriteFile(dir_.File("root.img"), Pattern(64 * 1024, 1, 0));
  json root = Drive("rootfs", dir_.File("root.img"), true, true);
  root["partuuid"] = "0eaa91a0-01";
  ProcessResult result = BootWithDrives(dir_, "cmdline", json::array({root}));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find(" root=PARTUUID=0eaa91a0-01 ro "), std::string::npos) << result.out;
}

// Each malformed chain is answered as the spec says and the device keeps
// serving; a ring that makes no sense gets DEVICE_NEEDS_RESET, and after
// the reset the drive works again. ember itself ends normally.
TEST_F(DriveKvmTest, HostileDriverGetsErrorsAndAResetNotACrash) {
  WriteFile(dir_.File("root.img"), Pattern(1 << 20, 13, 5));
  ProcessResult result =
      BootWithDrives(dir_, "blkbad", json::array({Drive("rootfs", dir_.File("root.img"), true)}));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string& out = result.out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blkbad outside-ram used_len=0 status=238")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blkbad loop used_len=0 status=238")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blkbad wrong-direction used_len=1 status=1")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blkbad short-header used_len=1 status=1")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blkbad next-out-of-range used_len=0 status=238")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blkbad needs-reset=1 isr=0x3")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blkbad recovered status=0")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blkbad ok")) << out;
  EXPECT_NE(result.err.find("the device needs a reset"), std::string::npos) << result.err;
}

TEST_F(DriveKvmTest, ConfigFileDrivesAreChecked) {
  WriteFile(dir_.File("a.img"), Pattern(4096, 1, 0));
  ProcessResult two_roots = BootWithDrives(
      dir_, "cmdline",
      json::array({Drive("a", dir_.File("a.img"), true), Drive("b", dir_.File("a.img"), true)}));
  EXPECT_NE(two_roots.exit_code, 0);
  EXPECT_NE(two_roots.err.find("A root block device already exists!"), std::string::npos)
      << two_roots.err;
  ProcessResult missing =
      BootWithDrives(dir_, "cmdline", json::array({Drive("a", dir_.File("missing.img"), false)}));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("drive a: path_on_host: " + dir_.File("missing.img") +
                             ": No such file or directory"),
            std::string::npos)
      << missing.err;
}

// 8 MiB through a 1 MiB/s bucket (full at the start): about 7 s by the
// guest's clock; without a limiter a fraction of that. A generous bound:
// the point is the order of magnitude, not the timing.
TEST_F(DriveKvmTest, RateLimiterSlowsTheGuestToTheBucketsRate) {
  WriteFile(dir_.File("disk.img"), Pattern(1 << 20, 1, 0));
  json drive = Drive("data", dir_.File("disk.img"), false, true);
  const auto started = std::chrono::steady_clock::now();
  ProcessResult free = BootWithDrives(dir_, "blkrate", json::array({drive}));
  const double free_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(free.exit_code, 0) << free.err;
  drive["rate_limiter"] = {{"bandwidth", {{"size", 1 << 20}, {"refill_time", 1000}}}};
  const auto limited_start = std::chrono::steady_clock::now();
  ProcessResult limited = BootWithDrives(dir_, "blkrate", json::array({drive}));
  const double limited_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - limited_start).count();
  ASSERT_EQ(limited.exit_code, 0) << limited.err;
  std::smatch free_ms, limited_ms;
  const std::regex line("blkrate bytes=8388608 ms=([0-9]+) failed=0");
  ASSERT_TRUE(std::regex_search(free.out, free_ms, line)) << free.out;
  ASSERT_TRUE(std::regex_search(limited.out, limited_ms, line)) << limited.out;
  std::printf(
      "8 MiB of reads: %s ms unlimited, %s ms at 1 MiB/s (guest TSC); %.2f s and %.2f s "
      "wall for the whole boot\n",
      free_ms[1].str().c_str(), limited_ms[1].str().c_str(), free_s, limited_s);
  EXPECT_GE(std::stol(limited_ms[1]), 3500) << "expected about 7000";
  EXPECT_LT(std::stol(limited_ms[1]), 60000);
  EXPECT_GE(limited_s, 3.5);
}

class DriveApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ember_ = std::make_unique<EmberProcess>(dir_, std::vector<std::string>{});
    ASSERT_TRUE(ember_->started()) << ember_->Stderr();
    WriteFile(dir_.File("root.img"), Pattern(1 << 20, 13, 5));
  }
  HttpResponse Put(const std::string& id, const json& body) {
    return ember_->Request("PUT", "/drives/" + id, body.dump());
  }
  void ExpectFault(const HttpResponse& response, const std::string& fragment) {
    EXPECT_EQ(response.status, 400) << response.body;
    EXPECT_NE(Fault(response).find(fragment), std::string::npos) << Fault(response);
  }
  HttpResponse Boot(const std::string& tests) {
    json boot{{"kernel_image_path", GuestPvh()},
              {"boot_args", "console=ttyS0 ember.tests=" + tests}};
    EXPECT_EQ(ember_->Request("PUT", "/boot-source", boot.dump()).status, 204);
    return ember_->Request("PUT", "/actions", R"({"action_type": "InstanceStart"})");
  }

  TempDir dir_;
  std::unique_ptr<EmberProcess> ember_;
};

TEST_F(DriveApiTest, FieldsAndErrorsAsFirecrackerAnswersThem) {
  const std::string root = dir_.File("root.img");
  ASSERT_EQ(Put("rootfs", Drive("rootfs", root, true)).status, 204);
  ASSERT_EQ(Put("drive_1", Drive("drive_1", root, false, true)).status, 204);
  ExpectFault(Put("drive_2", Drive("drive_2", root, true)), "A root block device already exists!");
  ExpectFault(
      Put("other", Drive("drive_2", root, false)),
      "drive_id: The id from the path [other] does not match the id from the body [drive_2]!");
  ExpectFault(Put("drive_2", Drive("drive_2", dir_.File("missing"), false)),
              "path_on_host: " + dir_.File("missing") + ": No such file or directory");
  ExpectFault(Put("drive_2", Drive("drive_2", dir_.path(), false)), "Is a directory");
  ExpectFault(Put("drive_2", Drive("drive_2", dir_.path(), false, true)),
              "is not a regular file or a block device");
  json body = Drive("drive_2", root, false);
  body["cache"] = "x";
  ExpectFault(Put("drive_2", body), "cache: unknown field");
  body = Drive("drive_2", root, false);
  body["is_read_only"] = "yes";
  ExpectFault(Put("drive_2", body), "is_read_only: must be a boolean");
  body = Drive("drive_2", root, false);
  body.erase("is_root_device");
  ExpectFault(Put("drive_2", body), "is_root_device: is required");
  body = Drive("drive_2", root, false);
  body["cache_type"] = "Always";
  ExpectFault(Put("drive_2", body), "cache_type: must be \"Unsafe\" or \"Writeback\"");
  body = Drive("drive_2", root, false);
  body["io_engine"] = "Fast";
  ExpectFault(Put("drive_2", body), "io_engine: must be \"Sync\" or \"Async\", got \"Fast\"");
  body = Drive("drive_2", root, false);
  body["rate_limiter"] = {{"bandwidth", {{"size", 1}}}};
  ExpectFault(Put("drive_2", body), "rate_limiter.bandwidth.refill_time: is required");
  body["rate_limiter"] = {{"ops", {{"size", -1}, {"refill_time", 1}}}};
  ExpectFault(Put("drive_2", body), "rate_limiter.ops.size: must be");
  body["rate_limiter"] = {{"iops", {}}};
  ExpectFault(Put("drive_2", body), "rate_limiter.iops: unknown field");
  body = json{{"drive_id", "drive_2"}, {"is_root_device", false}, {"socket", dir_.File("none")}};
  ExpectFault(Put("drive_2", body),
              "drive drive_2: socket " + dir_.File("none") + ": No such file");
  body = Drive("drive_2", root, false);
  body["socket_mode"] = "server";
  ExpectFault(Put("drive_2", body), "socket_mode: only for vhost-user drives");
  ExpectFault(Put("a-b", Drive("a-b", root, false)),
              "API Resource IDs can only contain alphanumeric characters and underscores.");
  // A failed PUT keeps the drive it would have replaced.
  ExpectFault(Put("drive_1", Drive("drive_1", dir_.File("missing"), false)), "No such file");

  json config = json::parse(ember_->Request("GET", "/vm/config").body);
  ASSERT_EQ(config["drives"].size(), 2u) << config.dump();
  EXPECT_EQ(config["drives"][0]["drive_id"], "rootfs");
  EXPECT_EQ(config["drives"][0]["is_root_device"], true);
  EXPECT_EQ(config["drives"][0]["cache_type"], "Unsafe");
  EXPECT_EQ(config["drives"][0]["io_engine"], "Sync");
  EXPECT_EQ(config["drives"][1]["drive_id"], "drive_1");
  EXPECT_EQ(config["drives"][1]["path_on_host"], root);
  EXPECT_EQ(config["drives"][1]["is_read_only"], true);

  // Replacing the root drive by a non-root one frees the root slot.
  ASSERT_EQ(Put("rootfs", Drive("rootfs", root, false)).status, 204);
  ASSERT_EQ(Put("drive_2", Drive("drive_2", root, true)).status, 204);
  config = json::parse(ember_->Request("GET", "/vm/config").body);
  EXPECT_EQ(config["drives"][0]["drive_id"], "drive_2");

  // PATCH before boot: a new file, checked as PUT checks it.
  ExpectFault(ember_->Request("PATCH", "/drives/nope",
                              json{{"drive_id", "nope"}, {"path_on_host", root}}.dump()),
              "drive_id: no drive \"nope\" is configured");
  ExpectFault(
      ember_->Request("PATCH", "/drives/drive_1",
                      json{{"drive_id", "drive_1"}, {"path_on_host", dir_.File("gone")}}.dump()),
      "No such file or directory");
  ExpectFault(ember_->Request("PATCH", "/drives/drive_1", json{{"drive_id", "drive_1"}}.dump()),
              "the request changes nothing: give path_on_host or rate_limiter");
  WriteFile(dir_.File("other.img"), Pattern(4096, 1, 0));
  EXPECT_EQ(
      ember_
          ->Request("PATCH", "/drives/drive_1",
                    json{{"drive_id", "drive_1"}, {"path_on_host", dir_.File("other.img")}}.dump())
          .status,
      204);
  config = json::parse(ember_->Request("GET", "/vm/config").body);
  EXPECT_EQ(config["drives"][2]["path_on_host"], dir_.File("other.img")) << config.dump();
}

// Kata Containers' hot-plug: a placeholder drive on an empty file, moved
// after boot with PATCH to a file with content; the guest gets the
// config-change interrupt, reads the new capacity and the new bytes.
TEST_F(DriveApiTest, PatchAfterBootMovesAPlaceholderToANewFile) {
  if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: InstanceStart needs it";
  WriteFile(dir_.File("empty.img"), std::string());
  ASSERT_EQ(Put("rootfs", Drive("rootfs", dir_.File("root.img"), true)).status, 204);
  ASSERT_EQ(Put("drive_0", Drive("drive_0", dir_.File("empty.img"), false)).status, 204);
  ASSERT_EQ(Boot("blkswap").status, 204);
  ASSERT_TRUE(ember_->WaitForOutput("ember-guest: blkswap waiting capacity=0\n"))
      << ember_->Stdout();
  // PUT after boot is Firecracker's refusal; PATCH is the way.
  HttpResponse put = Put("drive_0", Drive("drive_0", dir_.File("root.img"), false));
  EXPECT_EQ(put.status, 400);
  EXPECT_NE(Fault(put).find("not supported after starting the microVM"), std::string::npos);
  const std::vector<uint8_t> content = Pattern(256 * 1024, 5, 9);
  WriteFile(dir_.File("new.img"), content);
  HttpResponse patch =
      ember_->Request("PATCH", "/drives/drive_0",
                      json{{"drive_id", "drive_0"}, {"path_on_host", dir_.File("new.img")}}.dump());
  ASSERT_EQ(patch.status, 204) << patch.body;
  // New buckets for the running drive.
  HttpResponse limit = ember_->Request(
      "PATCH", "/drives/drive_0",
      json{{"drive_id", "drive_0"},
           {"rate_limiter",
            {{"ops", {{"size", 100}, {"one_time_burst", 10}, {"refill_time", 1000}}}}}}
          .dump());
  EXPECT_EQ(limit.status, 204) << limit.body;
  json config = json::parse(ember_->Request("GET", "/vm/config").body);
  EXPECT_EQ(config["drives"][1]["path_on_host"], dir_.File("new.img")) << config.dump();
  EXPECT_EQ(config["drives"][1]["rate_limiter"]["ops"]["size"], 100) << config.dump();
  EXPECT_EQ(config["drives"][1]["rate_limiter"]["ops"]["one_time_burst"], 10) << config.dump();
  ASSERT_TRUE(ember_->WaitForOutput("ember-guest: done\n")) << ember_->Stdout();
  const std::string out = ember_->Stdout();
  EXPECT_TRUE(HasLine(out, "ember-guest: blkswap capacity=512 isr=0x3")) << out;
  EXPECT_TRUE(HasLine(
      out, "ember-guest: blkswap read sum=0x" + Sum(content, 0, 16 * kSector) + " status=0"))
      << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: blkswap ok")) << out;
}

}  // namespace
}  // namespace ember::testing
