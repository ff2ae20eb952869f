// ember-jailer: Firecracker's jailer for ember (see jail/jailer.h).
// Exit status 1 with one line on stderr naming the failed step.
#include <linux/close_range.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/version.h"
#include "jail/jailer.h"

int main(int argc, char** argv) {
  using namespace ember;
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  timespec cpu{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  const JailerClock clock{
      static_cast<uint64_t>(now.tv_sec) * 1000000 + static_cast<uint64_t>(now.tv_nsec) / 1000,
      static_cast<uint64_t>(cpu.tv_sec) * 1000000 + static_cast<uint64_t>(cpu.tv_nsec) / 1000};
  // Nothing inherited reaches the VMM: no fd but stdio, no environment.
  if (close_range(3, ~0U, CLOSE_RANGE_UNSHARE) != 0) {
    std::perror("ember-jailer: close_range");
    return 1;
  }
  clearenv();
  Result<JailerArgs> args = ParseJailerArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!args.ok()) {
    std::fprintf(stderr, "%s\n", args.status().message().c_str());
    return 1;
  }
  if (args->help) {
    std::fputs(JailerUsage().c_str(), stdout);
    return 0;
  }
  if (args->version) {
    std::fputs(VersionText("ember-jailer").c_str(), stdout);
    return 0;
  }
  Status failed = RunJailer(*args, clock);
  std::fprintf(stderr, "%s\n", failed.message().c_str());
  return 1;
}
