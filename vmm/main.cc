// ember: parse the command line, set up logging, then serve the API and/or
// boot the microVM from a config file, running the VMM on this thread.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "api/action_channel.h"
#include "api/api_loader.h"
#include "base/clock.h"
#include "base/logger.h"
#include "base/metrics.h"
#include "base/output_file.h"
#include "base/version.h"
#include "config/config_parser.h"
#include "config/json_reader.h"
#include "devices/vhost_user/vhost_user_endpoint.h"
#include "jail/seccomp.h"
#include "vmm/cli.h"
#include "vmm/vmm.h"

namespace {

constexpr const char* kDefaultApiSocket = "/run/ember.socket";

int Fail(const std::string& message) {
  std::fprintf(stderr, "ember: error: %s\n", message.c_str());
  return 1;
}

// The API side of ember: the channel and the server that submits to it.
// Whichever way main ends, the channel is closed before the server stops:
// an API worker blocked in Submit (a request that came while the VMM
// thread was not draining, e.g. during a failed config-file boot) gets its
// answer, so the server's shutdown can join it instead of waiting forever.
struct ApiSide {
  std::unique_ptr<ember::ActionChannel> channel;
  std::unique_ptr<ember::LoadedApiServer> server;

  ApiSide() = default;
  ApiSide(const ApiSide&) = delete;
  ApiSide& operator=(const ApiSide&) = delete;
  ~ApiSide() {
    if (channel) channel->Close();
    server.reset();
  }
};

// --metadata: a JSON document for MMDS, read before the VM is configured.
ember::Result<nlohmann::json> LoadMetadataFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return ember::Status::Error("--metadata " + path + ": cannot be opened");
  std::ostringstream text;
  text << file.rdbuf();
  ember::Result<nlohmann::json> document = ember::ParseJsonDocument(text.str());
  if (!document.ok()) return document.status().Context("--metadata " + path);
  return document;
}

uint64_t MicrosSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

// Everything ember does; returns the exit code and sets `stop_signal` to the
// termination signal that ended it, if one did. Every owner (VM, API socket,
// console) is gone by the time it returns.
int RunEmber(int argc, char** argv, int& stop_signal) {
  using namespace ember;
  auto start_time = std::chrono::steady_clock::now();
  uint64_t start_cpu_us = ProcessCpuMicros();

  Result<CliOptions> cli = ParseCli(std::vector<std::string>(argv + 1, argv + argc));
  if (!cli.ok()) return Fail(cli.status().message() + "\n" + CliUsage());
  // Started by a jailer: its start is the process's start (steady_clock is
  // CLOCK_MONOTONIC), and its CPU time counts too.
  if (cli->start_time_us) {
    start_time =
        std::chrono::steady_clock::time_point(std::chrono::microseconds(*cli->start_time_us));
  }
  // (Unsigned: C - P may wrap, and now - (C - P) = now - C + P still holds.)
  if (cli->start_time_cpu_us) start_cpu_us = *cli->start_time_cpu_us - cli->parent_cpu_time_us;
  if (cli->help) {
    std::fputs(CliUsage().c_str(), stdout);
    return 0;
  }
  if (cli->version) {
    std::fputs(VersionText("ember").c_str(), stdout);
    return 0;
  }
  SetOutputFileLimit(cli->output_file_limit);
  LoggerOptions logger{cli->level, cli->log_path, cli->show_level, cli->show_log_origin, cli->id};
  if (Status status = ConfigureLogger(logger); !status.ok()) return Fail(status.message());

  // Termination signals are read by the VMM thread's loop (signalfd): block
  // them before any other thread exists so that every thread inherits that.
  sigset_t signals = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A backend that hangs up must not kill ember: writes report EPIPE instead.
  signal(SIGPIPE, SIG_IGN);
  SetSeccompEnabled(!cli->no_seccomp);
  if (cli->vhost_user_peer_uid) AllowBackendUid(*cli->vhost_user_peer_uid);
  if (Status status = InstallSeccompViolationHandler(); !status.ok()) return Fail(status.message());

  VmmOptions options;
  options.instance_id = cli->id;
  options.boot_timer = cli->boot_timer;
  options.process_start = start_time;
  options.process_start_cpu_us = start_cpu_us;
  if (cli->mmds_size_limit) options.mmds_size_limit = *cli->mmds_size_limit;
  if (cli->metadata) {
    Result<nlohmann::json> metadata = LoadMetadataFile(*cli->metadata);
    if (!metadata.ok()) return Fail(metadata.status().message());
    options.metadata = std::move(*metadata);
  }
  Vmm vmm(options);
  if (cli->metrics_path) {
    if (Status status = vmm.ConfigureMetrics(*cli->metrics_path); !status.ok()) {
      return Fail(status.message());
    }
  }

  // Declared after vmm, so destroyed before it, on every way out of main.
  ApiSide api;
  if (!cli->no_api) {
    Result<std::unique_ptr<ActionChannel>> created = ActionChannel::Create();
    if (!created.ok()) return Fail(created.status().message());
    api.channel = std::move(*created);
    Result<std::unique_ptr<LoadedApiServer>> server =
        LoadedApiServer::Start(cli->api_sock.value_or(kDefaultApiSocket), *api.channel);
    if (!server.ok()) return Fail(server.status().message());
    api.server = std::move(*server);
    GlobalMetrics().process_startup_time_us = MicrosSince(start_time);
    GlobalMetrics().process_startup_time_cpu_us = ProcessCpuMicros() - start_cpu_us;
  }

  if (Status status = vmm.Prepare(api.channel.get()); !status.ok()) return Fail(status.message());
  if (cli->config_file) {
    Result<VmConfig> config = LoadVmConfigFile(*cli->config_file);
    if (!config.ok()) return Fail(config.status().message());
    if (Status status = vmm.Configure(*config); !status.ok()) {
      return Fail("config file " + *cli->config_file + ": " + status.message());
    }
    if (Status status = vmm.StartInstance(/*timed_from_now=*/false); !status.ok()) {
      return Fail("cannot start the VM: " + status.message());
    }
  }

  Result<int> code = vmm.Run();
  stop_signal = vmm.stop_signal();
  if (!code.ok()) return Fail(code.status().message());
  return *code;
}

// The last line of defence: whatever reaches std::terminate is named in the
// log and on stderr before the abort (whose tgkill every filter allows).
[[noreturn]] void Terminate() {
  std::string reason = "std::terminate without an exception";
  if (std::exception_ptr current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const std::exception& error) {
      reason = std::string("uncaught exception: ") + error.what();
    } catch (...) {
      reason = "uncaught exception of unknown type";
    }
  }
  SPDLOG_CRITICAL("ember is aborting: {}", reason);
  spdlog::default_logger_raw()->flush();
  const std::string line = "ember: fatal: " + reason + "\n";
  (void)!write(STDERR_FILENO, line.data(), line.size());
  std::abort();
}

}  // namespace

int main(int argc, char** argv) {
  std::set_terminate(Terminate);
  int stop_signal = 0;
  int code;
  try {
    code = RunEmber(argc, argv, stop_signal);
  } catch (const std::exception& error) {
    code = Fail(std::string("internal error: ") + error.what());
  }
  // Firecracker has no SIGTERM handler, so its launchers see it killed by
  // SIGTERM: ember stops cleanly first, then ends the same way.
  if (stop_signal == SIGTERM) {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    raise(SIGTERM);  // pending while blocked; delivered (default action) at unblock
    pthread_sigmask(SIG_UNBLOCK, &term, nullptr);
  }
  return code;
}
