#include "api/routes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <string_view>

#include "base/logger.h"
#include "config/json_reader.h"
#include "config/missing_features.h"

namespace ember {
namespace {

// Firecracker's answers for a missing or unexpected body.
constexpr const char* kEmptyPatch = "Empty PATCH request.";

// Refuses what Firecracker's HTTP layer refuses before it looks at the
// path: a GET with a body, a PUT or PATCH without one.
std::optional<std::string> BodyPresenceError(const std::string& method, const std::string& body) {
  if (method == "GET" && !body.empty()) return "GET request cannot have a body.";
  if (method == "PUT" && body.empty()) return "Empty PUT request.";
  if (method == "PATCH" && body.empty()) return kEmptyPatch;
  return std::nullopt;
}

// (HandleApiRequest has refused PUT and PATCH requests without a body.)
Result<nlohmann::json> ParseBody(const std::string& body) { return ParseJsonDocument(body); }

Result<VmmAction> ParsePutBootSource(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  EMBER_ASSIGN_OR_RETURN(BootSourceConfig config, ParseBootSource(body, ""));
  return VmmAction(PutBootSource{std::move(config)});
}

Result<VmmAction> ParseMachineConfigRequest(const ApiRequest& request, UpdateKind kind) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  // A PATCH that changes nothing is refused, as Firecracker does.
  if (kind == UpdateKind::kPatch && body.is_object() &&
      std::all_of(body.begin(), body.end(), [](const nlohmann::json& v) { return v.is_null(); })) {
    return Status::Error(kEmptyPatch);
  }
  EMBER_ASSIGN_OR_RETURN(MachineConfigUpdate update, ParseMachineConfigUpdate(body, "", kind));
  return VmmAction(UpdateMachineConfig{std::move(update)});
}

Result<VmmAction> ParseActions(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  JsonObjectReader reader(body, "");
  auto type = reader.String("action_type", /*required=*/true);
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (*type == "InstanceStart") return VmmAction(StartInstance{});
  if (*type == "SendCtrlAltDel") return VmmAction(SendCtrlAltDel{});
  if (*type == "FlushMetrics") return VmmAction(FlushMetrics{});
  return Status::Error("action_type: unknown action \"" + *type +
                       "\" (InstanceStart, SendCtrlAltDel or FlushMetrics)");
}

Result<VmmAction> ParsePatchVm(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  JsonObjectReader reader(body, "");
  auto state = reader.String("state", /*required=*/true);
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (*state == "Paused") return VmmAction(SetVmState{true});
  if (*state == "Resumed") return VmmAction(SetVmState{false});
  return Status::Error("state: must be \"Paused\" or \"Resumed\", got \"" + *state + "\"");
}

Result<VmmAction> ParsePutLogger(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  EMBER_ASSIGN_OR_RETURN(LoggerConfig config, ParseLogger(body, ""));
  return VmmAction(PutLogger{std::move(config)});
}

Result<VmmAction> ParsePutMetrics(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  EMBER_ASSIGN_OR_RETURN(std::string path, ParseMetrics(body, ""));
  return VmmAction(PutMetrics{std::move(path)});
}

Result<VmmAction> ParsePutSerial(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  EMBER_ASSIGN_OR_RETURN(SerialConfig config, ParseSerial(body, ""));
  return VmmAction(PutSerial{std::move(config)});
}

Result<VmmAction> ParsePutFs(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  EMBER_ASSIGN_OR_RETURN(FsConfig config, ParseFs(body, "", request.path_params.at("fs_id")));
  return VmmAction(PutFs{std::move(config)});
}

Result<VmmAction> ParsePutDrive(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  EMBER_ASSIGN_OR_RETURN(DriveConfig config,
                         ParseDrive(body, "", request.path_params.at("drive_id")));
  return VmmAction(PutDrive{std::move(config)});
}

Result<VmmAction> ParsePatchDrive(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  EMBER_ASSIGN_OR_RETURN(DriveUpdate update,
                         ParseDriveUpdate(body, request.path_params.at("drive_id")));
  return VmmAction(PatchDrive{std::move(update)});
}

Result<VmmAction> ParsePutNetworkInterface(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  EMBER_ASSIGN_OR_RETURN(NetConfig config,
                         ParseNetworkInterface(body, "", request.path_params.at("iface_id")));
  return VmmAction(PutNetworkInterface{std::move(config)});
}

Result<VmmAction> ParsePatchNetworkInterface(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  EMBER_ASSIGN_OR_RETURN(NetUpdate update,
                         ParseNetworkInterfaceUpdate(body, request.path_params.at("iface_id")));
  return VmmAction(PatchNetworkInterface{std::move(update)});
}

Result<VmmAction> ParsePutVsock(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  EMBER_ASSIGN_OR_RETURN(VsockConfig config, ParseVsock(body, ""));
  return VmmAction(PutVsock{std::move(config)});
}

Result<VmmAction> ParsePutEntropy(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  EMBER_ASSIGN_OR_RETURN(EntropyConfig config, ParseEntropy(body, ""));
  return VmmAction(PutEntropy{std::move(config)});
}

// MMDS data is any JSON value (Firecracker's rule); its size limit is the
// store's.
Result<VmmAction> ParsePutMmds(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  return VmmAction(PutMmds{std::move(body)});
}

Result<VmmAction> ParsePatchMmds(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  return VmmAction(PatchMmds{std::move(body)});
}

Result<VmmAction> ParsePutMmdsConfig(const ApiRequest& request) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(request.body));
  EMBER_ASSIGN_OR_RETURN(MmdsConfig config, ParseMmdsConfig(body, ""));
  return VmmAction(PutMmdsConfig{std::move(config)});
}

template <typename Action>
Result<VmmAction> NoBody(const ApiRequest&) {
  return VmmAction(Action{});
}

// Matches "/fs/{fs_id}" against "/fs/abc", collecting the parameters.
bool MatchPath(const std::string& pattern, const std::string& path,
               std::map<std::string, std::string>& params) {
  size_t p = 0, q = 0;
  while (p < pattern.size() && q < path.size()) {
    if (pattern[p] == '{') {
      size_t close = pattern.find('}', p);
      size_t end = path.find('/', q);
      if (end == std::string::npos) end = path.size();
      if (end == q) return false;  // empty parameter
      params[pattern.substr(p + 1, close - p - 1)] = path.substr(q, end - q);
      p = close + 1;
      q = end;
    } else if (pattern[p++] != path[q++]) {
      return false;
    }
  }
  return p == pattern.size() && q == path.size();
}

void Count(const ApiRoute* route, bool failed) {
  Metrics& metrics = GlobalMetrics();
  if (route == nullptr) {
    metrics.invalid_requests.Add();
    return;
  }
  (metrics.*route->count).Add();
  if (failed && route->fails != nullptr) (metrics.*route->fails).Add();
}

}  // namespace

const std::vector<ApiRoute>& ApiRoutes() {
  using M = Metrics;
  static const std::vector<ApiRoute> routes = {
      {"GET", "/", NoBody<GetInstanceInfo>, &M::get_instance_info, nullptr},
      {"GET", "/version", NoBody<GetVersion>, &M::get_version, nullptr},
      {"GET", "/vm/config", NoBody<GetVmConfig>, &M::get_vm_config, nullptr},
      {"GET", "/machine-config", NoBody<GetMachineConfig>, &M::get_machine_cfg, nullptr},
      {"PUT", "/machine-config",
       [](const ApiRequest& r) { return ParseMachineConfigRequest(r, UpdateKind::kReplace); },
       &M::put_machine_cfg, &M::put_machine_cfg_fails},
      {"PATCH", "/machine-config",
       [](const ApiRequest& r) { return ParseMachineConfigRequest(r, UpdateKind::kPatch); },
       &M::patch_machine_cfg, &M::patch_machine_cfg_fails},
      {"PUT", "/boot-source", ParsePutBootSource, &M::put_boot_source, &M::put_boot_source_fails},
      {"PUT", "/actions", ParseActions, &M::put_actions, &M::put_actions_fails},
      {"PATCH", "/vm", ParsePatchVm, &M::patch_vm, &M::patch_vm_fails},
      {"PUT", "/logger", ParsePutLogger, &M::put_logger, &M::put_logger_fails},
      {"PUT", "/metrics", ParsePutMetrics, &M::put_metrics, &M::put_metrics_fails},
      {"PUT", "/serial", ParsePutSerial, &M::put_serial, &M::put_serial_fails},
      {"PUT", "/drives/{drive_id}", ParsePutDrive, &M::put_drive, &M::put_drive_fails},
      {"PATCH", "/drives/{drive_id}", ParsePatchDrive, &M::patch_drive, &M::patch_drive_fails},
      {"PUT", "/fs/{fs_id}", ParsePutFs, &M::put_fs, &M::put_fs_fails},
      {"PUT", "/network-interfaces/{iface_id}", ParsePutNetworkInterface, &M::put_network,
       &M::put_network_fails},
      {"PATCH", "/network-interfaces/{iface_id}", ParsePatchNetworkInterface, &M::patch_network,
       &M::patch_network_fails},
      {"PUT", "/vsock", ParsePutVsock, &M::put_vsock, &M::put_vsock_fails},
      {"PUT", "/entropy", ParsePutEntropy, &M::put_entropy, &M::put_entropy_fails},
      {"GET", "/mmds", NoBody<GetMmds>, &M::get_mmds, nullptr},
      {"PUT", "/mmds", ParsePutMmds, &M::put_mmds, &M::put_mmds_fails},
      {"PATCH", "/mmds", ParsePatchMmds, &M::patch_mmds, &M::patch_mmds_fails},
      {"PUT", "/mmds/config", ParsePutMmdsConfig, &M::put_mmds, &M::put_mmds_fails},
  };
  return routes;
}

const ApiRoute* FindApiRoute(const std::string& method, const std::string& path,
                             std::map<std::string, std::string>& params) {
  for (const ApiRoute& route : ApiRoutes()) {
    params.clear();
    if (route.method == method && MatchPath(route.path, path, params)) return &route;
  }
  params.clear();
  return nullptr;
}

void CountApiRequest(const std::string& method, const std::string& path, bool failed) {
  std::map<std::string, std::string> params;
  Count(FindApiRoute(method, path, params), failed);
}

namespace {
// A Firecracker resource ember lacks: the answer stays Firecracker's
// unknown-path one (tooling matches its start) and says what is missing,
// so that a platform's log names it.
std::string MissingFeatureNote(std::string_view path) {
  if (path.empty() || path[0] != '/') return "";
  const std::string_view resource = path.substr(1, path.find('/', 1) - 1);
  const MissingFeature* missing = FindMissingFeature(resource);
  return missing ? " ember does not implement " + std::string(missing->what) + " yet." : "";
}
}  // namespace

VmmReply HandleApiRequest(const std::string& method, const std::string& path,
                          const std::string& body,
                          const std::function<VmmReply(VmmAction)>& submit) {
  // Firecracker logs every request (at Info; ember at Debug, off the fast
  // path). Never the body: it may carry secrets such as MMDS data.
  if (spdlog::should_log(spdlog::level::debug)) {  // the arguments cost even when filtered
    SPDLOG_DEBUG("The API server received a {} request on \"{}\".", LogSafe(method, 16),
                 LogSafe(path));
  }
  std::map<std::string, std::string> params;
  const ApiRoute* route = FindApiRoute(method, path, params);
  if (std::optional<std::string> refused = BodyPresenceError(method, body)) {
    Count(route, /*failed=*/true);
    return VmmReply::Error(*refused);
  }
  if (route == nullptr) {
    Count(nullptr, /*failed=*/true);
    return VmmReply::Error("Invalid request method and/or path: " + method + " " + path + "." +
                           MissingFeatureNote(path));
  }
  Result<VmmAction> action = route->parse(ApiRequest{std::move(params), body});
  if (!action.ok()) {
    Count(route, /*failed=*/true);
    return VmmReply::Error(action.status().message());
  }
  VmmReply reply = submit(std::move(*action));
  Count(route, reply.status >= 400);
  return reply;
}

}  // namespace ember
