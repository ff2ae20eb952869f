// PATCH /vm Paused and Resumed, proved by the test guest's own counter (its
// "ticks" test, tests/guest/README.md): the count stands still while the VM
// is paused and goes on from there after the resume, and the guest itself
// saw a hole in its run at least as long as the pause. Needs /dev/kvm and
// skips, saying so, without it.
#include <gtest/gtest.h>
#include <unistd.h>
#include <x86intrin.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

constexpr int kTicks = 50;  // TICKS in tests/guest/guest.c

// The guest's counter: the numbers of its complete "tick N" lines, in order.
std::vector<int> Ticks(const std::string& out) {
  static const std::regex kTick("ember-guest: tick ([0-9]+)\n");
  std::vector<int> ticks;
  for (std::sregex_iterator it(out.begin(), out.end(), kTick), end; it != end; ++it) {
    ticks.push_back(std::stoi((*it)[1]));
  }
  return ticks;
}

int LastTick(const std::string& out) {
  std::vector<int> ticks = Ticks(out);
  return ticks.empty() ? -1 : ticks.back();
}

TEST(PauseTest, GuestCounterStandsStillWhilePausedAndAdvancesAfterResume) {
  if (access("/dev/kvm", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "/dev/kvm is absent: InstanceStart needs it";
  }
  TempDir dir;
  EmberProcess ember(dir, {});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  ASSERT_EQ(
      ember
          .Request("PUT", "/boot-source",
                   json{{"kernel_image_path", std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"},
                        {"boot_args", "console=ttyS0 ember.tests=ticks"}}
                       .dump())
          .status,
      204);
  // Two vCPUs: the pause must hold every one.
  ASSERT_EQ(
      ember.Request("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 128})").status,
      204);
  ASSERT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  ASSERT_TRUE(ember.WaitForOutput("ember-guest: tick 0\n")) << ember.Stdout();

  // The reply comes once every vCPU is out of KVM_RUN.
  ASSERT_EQ(ember.Request("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  const uint64_t paused_tsc = __rdtsc();
  EXPECT_EQ(json::parse(ember.Request("GET", "/").body).at("state"), "Paused");
  // Console bytes are written by the vCPU threads themselves, straight to
  // the stdout file: all the guest printed before the pause is there now.
  const std::string at_pause = ember.Stdout();
  const int counter_at_pause = LastTick(at_pause);
  ASSERT_GE(counter_at_pause, 0) << at_pause;
  ASSERT_LE(counter_at_pause, kTicks - 2)
      << "the guest had counted to the end before the pause took effect, so there is no "
         "counting left to stop: "
      << at_pause;
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  const std::string after_sleep = ember.Stdout();
  EXPECT_EQ(LastTick(after_sleep), counter_at_pause)
      << "the paused guest's counter advanced: " << after_sleep;
  EXPECT_EQ(after_sleep.size(), at_pause.size()) << "a paused guest printed more";
  EXPECT_EQ(json::parse(ember.Request("GET", "/").body).at("state"), "Paused");

  const uint64_t resume_tsc = __rdtsc();
  ASSERT_EQ(ember.Request("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  EXPECT_TRUE(
      ember.WaitForOutput("ember-guest: tick " + std::to_string(counter_at_pause + 1) + "\n"))
      << "the counter did not advance after the resume: " << ember.Stdout();
  EXPECT_EQ(ember.WaitForExit(), 0) << ember.Stderr();
  const std::string out = ember.Stdout();

  // It went on from where it stood: every count once, in order, to the end.
  std::vector<int> expected(kTicks);
  for (int i = 0; i < kTicks; ++i) expected[i] = i;
  EXPECT_EQ(Ticks(out), expected) << out;

  // The guest's own account: between two consecutive reads of its TSC (which
  // KVM keeps running while a vCPU is held) at least the time the host held
  // it paused went by, in the tick the pause interrupted: the one whose line
  // was the last printed, or the next one when the pause caught its line
  // half printed. The guest's TSC runs at the host's rate (ember sets no
  // TSC frequency), so a difference of host readings compares; the 1%
  // covers the host's CPUs' TSCs differing by a few cycles. A guest that ran on while "paused"
  // would show at most a tick line's serial exits here, about a millisecond.
  std::smatch stall;
  ASSERT_TRUE(std::regex_search(out, stall,
                                std::regex("ember-guest: ticks stall tsc=([0-9]+) tick=([0-9]+)\n"
                                           "ember-guest: ticks done\nember-guest: done\n")))
      << out;
  const uint64_t held = resume_tsc - paused_tsc;
  std::printf("paused at tick %d; the guest's longest hole: %s TSC cycles in tick %s; held: %llu\n",
              counter_at_pause, stall[1].str().c_str(), stall[2].str().c_str(),
              static_cast<unsigned long long>(held));
  EXPECT_GE(std::stoull(stall[1]), held / 100 * 99)
      << "the guest ran while paused: its longest hole is " << stall[1]
      << " TSC cycles, the pause held it for " << held;
  const int interrupted_tick = counter_at_pause + (at_pause.back() == '\n' ? 0 : 1);
  EXPECT_EQ(std::stoi(stall[2]), interrupted_tick) << at_pause;
}

}  // namespace
}  // namespace ember::testing
