// ember: parse the command line, set up logging, build the microVM from the
// configuration and run it on this (the VMM) thread.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "api/config_parser.h"
#include "devices/boot_timer.h"
#include "vmm/builder.h"
#include "vmm/cli.h"
#include "vmm/logger.h"
#include "vmm/version.h"
#include "vmm/vmm.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "ember: error: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ember;
  const auto start_time = std::chrono::steady_clock::now();
  const uint64_t start_cpu_us = ProcessCpuMicros();

  Result<CliOptions> cli = ParseCli(std::vector<std::string>(argv + 1, argv + argc));
  if (!cli.ok()) return Fail(cli.status().message() + "\n" + CliUsage());
  if (cli->help) {
    std::fputs(CliUsage().c_str(), stdout);
    return 0;
  }
  if (cli->version) {
    std::printf("ember v%s\n", kEmberVersion);
    return 0;
  }
  LoggerOptions logger{cli->level, cli->log_path, cli->show_level, cli->show_log_origin, cli->id};
  if (Status status = ConfigureLogger(logger); !status.ok()) return Fail(status.message());
  if (!cli->no_api) {
    return Fail(
        "the API server is not available in this build yet: use --no-api --config-file FILE");
  }

  Result<VmConfig> config = LoadVmConfigFile(*cli->config_file);
  if (!config.ok()) return Fail(config.status().message());

  BuildOptions options;
  options.boot_timer = cli->boot_timer;
  options.start_time = start_time;
  options.start_cpu_us = start_cpu_us;
  options.console_fd = STDOUT_FILENO;
  Result<std::unique_ptr<Machine>> machine = BuildMachine(*config, options);
  if (!machine.ok()) return Fail("cannot start the VM: " + machine.status().message());
  if (Status status = StartVcpus(**machine); !status.ok()) {
    return Fail("cannot start the VM: " + status.message());
  }
  Result<int> code = RunMachine(**machine, STDIN_FILENO);
  if (!code.ok()) return Fail(code.status().message());
  return *code;
}
