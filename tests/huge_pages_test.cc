// machine-config's huge_pages "2M" (Firecracker's, as E2B sends it): the
// guest's memory comes from the host's 2 MiB hugetlb pool, reserved whole
// at InstanceStart, and a pool too small is refused there with the reason
// (never a SIGBUS later). Needs /dev/kvm and root (it resizes the pool).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/ember_process.h"

namespace ember::testing {
namespace {

constexpr int kGuestMib = 64;
constexpr long kGuestPages = kGuestMib / 2;

// The kernel page size of ember's guest RAM mapping, from /proc/PID/smaps
// ("" if there is no such mapping).
std::string GuestRamPageSize(pid_t pid) {
  std::istringstream smaps(ReadFile("/proc/" + std::to_string(pid) + "/smaps"));
  bool in_guest_ram = false;
  for (std::string line; std::getline(smaps, line);) {
    if (line.find("ember-guest-ram") != std::string::npos) in_guest_ram = true;
    if (in_guest_ram && line.rfind("KernelPageSize:", 0) == 0) {
      std::istringstream fields(line.substr(sizeof("KernelPageSize:") - 1));
      std::string size, unit;
      fields >> size >> unit;
      return size + " " + unit;
    }
  }
  return "";
}

TEST(HugePagesTest, GuestMemoryComesFromTheHugePagePoolOrIsRefusedWithTheReason) {
  if (access("/dev/kvm", R_OK | W_OK) != 0)
    GTEST_SKIP() << "/dev/kvm is absent: the guest needs it";
  if (geteuid() != 0) GTEST_SKIP() << "not root: resizing the huge page pool needs it";
  HugePagePool pool;
  TempDir dir;
  EmberProcess ember(dir, {});
  ASSERT_TRUE(ember.started()) << ember.Stderr();

  // Whole huge pages only, in Firecracker's words.
  HttpResponse odd = ember.Request("PUT", "/machine-config",
                                   R"({"vcpu_count": 1, "mem_size_mib": 65, "huge_pages": "2M"})");
  EXPECT_EQ(odd.status, 400);
  EXPECT_NE(Fault(odd).find("mem_size_mib: The memory size (MiB) is either 0, or not a multiple "
                            "of the configured page size"),
            std::string::npos)
      << odd.body;
  HttpResponse bad_size = ember.Request("PATCH", "/machine-config", R"({"huge_pages": "1G"})");
  EXPECT_EQ(bad_size.status, 400);
  EXPECT_NE(Fault(bad_size).find("huge_pages: must be \"None\" or \"2M\", got \"1G\""),
            std::string::npos)
      << bad_size.body;

  ASSERT_EQ(ember
                .Request("PUT", "/machine-config",
                         R"({"vcpu_count": 1, "mem_size_mib": )" + std::to_string(kGuestMib) +
                             R"(, "smt": false, "huge_pages": "2M"})")
                .status,
            204);
  HttpResponse machine = ember.Request("GET", "/machine-config");
  EXPECT_EQ(nlohmann::json::parse(machine.body).value("huge_pages", ""), "2M") << machine.body;
  ASSERT_EQ(
      ember
          .Request("PUT", "/boot-source",
                   R"({"kernel_image_path": ")" + std::string(EMBER_GUEST_DIR) +
                       R"(/guest-pvh.elf", "boot_args": "console=ttyS0 ember.tests=ctrlaltdel"})")
          .status,
      204);

  // An empty pool: refused at InstanceStart, naming the field and the pool.
  ASSERT_EQ(pool.Resize(0), 0);
  HttpResponse refused = ember.Request("PUT", "/actions", R"({"action_type": "InstanceStart"})");
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(Fault(refused).find("machine-config.huge_pages: reserving 32 huge pages of 2 MiB: the "
                                "host's pool has too few free"),
            std::string::npos)
      << refused.body;

  // A pool that holds the guest: the same request now boots it there.
  ASSERT_GE(pool.Resize(kGuestPages), kGuestPages) << "the kernel gave fewer huge pages";
  HttpResponse started = ember.Request("PUT", "/actions", R"({"action_type": "InstanceStart"})");
  ASSERT_EQ(started.status, 204) << started.body << ember.Stderr();
  ASSERT_TRUE(ember.WaitForOutput("ember-guest: waiting for ctrl-alt-del\n", 30000))
      << ember.Stdout() << ember.Stderr();
  EXPECT_EQ(GuestRamPageSize(ember.pid()), "2048 kB");
  // Reserved whole: none of the 32 is free for anyone else while it runs.
  EXPECT_EQ(MeminfoValue("HugePages_Free") - MeminfoValue("HugePages_Rsvd"), 0);
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember.WaitForExit(30000), 0) << ember.Stderr();
}

}  // namespace
}  // namespace ember::testing
