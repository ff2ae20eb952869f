// The typed requests the API thread hands to the VMM thread, and the typed
// reply it renders. Plain values: built on the API thread, consumed on the
// VMM thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "config/config_parser.h"
#include "config/vm_config.h"

namespace ember {

struct GetInstanceInfo {};
struct GetVersion {};
struct GetVmConfig {};
struct GetMachineConfig {};
struct PutBootSource {
  BootSourceConfig config;
};
struct UpdateMachineConfig {
  MachineConfigUpdate update;
};
struct PutLogger {
  LoggerConfig config;
};
struct PutMetrics {
  std::string path;
};
struct PutSerial {
  SerialConfig config;
};
struct PutFs {
  FsConfig config;
};
struct PutNetworkInterface {
  NetConfig config;
};
struct PutVsock {
  VsockConfig config;
};
struct PutDrive {
  DriveConfig config;
};
struct PatchDrive {
  DriveUpdate update;
};
struct PatchNetworkInterface {
  NetUpdate update;
};
struct PutEntropy {
  EntropyConfig config;
};
struct GetMmds {};
struct PutMmds {
  nlohmann::json data;
};
struct PatchMmds {
  nlohmann::json patch;
};
struct PutMmdsConfig {
  MmdsConfig config;
};
struct StartInstance {};
struct SendCtrlAltDel {};
struct FlushMetrics {};
struct SetVmState {
  bool paused;
};

using VmmAction =
    std::variant<GetInstanceInfo, GetVersion, GetVmConfig, GetMachineConfig, PutBootSource,
                 UpdateMachineConfig, PutLogger, PutMetrics, PutSerial, PutDrive, PatchDrive, PutFs,
                 PutNetworkInterface, PatchNetworkInterface, PutVsock, PutEntropy, GetMmds, PutMmds,
                 PatchMmds, PutMmdsConfig, StartInstance, SendCtrlAltDel, FlushMetrics, SetVmState>;

// HTTP status and body, Firecracker's conventions: 204 with no body on
// success, 200 with JSON for reads, 400 with {"fault_message": ...} for
// errors (413 for MMDS data over its size limit, as Firecracker).
struct VmmReply {
  int status = 204;
  nlohmann::json body;

  static VmmReply NoContent() { return {204, nullptr}; }
  static VmmReply Json(nlohmann::json body) { return {200, std::move(body)}; }
  static VmmReply Error(const std::string& message, int status = 400) {
    return {status, nlohmann::json{{"fault_message", message}}};
  }
};

}  // namespace ember
