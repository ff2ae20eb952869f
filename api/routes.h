// The API's route table and the parsing of one HTTP request into a typed
// VmmAction. Runs on API threads; touches no VM state. The table is also
// what the OpenAPI agreement test compares with openapi/ember.yaml.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "api/vmm_action.h"
#include "base/status.h"

namespace ember {

// Firecracker's limit on request bodies.
constexpr size_t kMaxRequestBodyBytes = 51200;

struct ApiRequest {
  std::map<std::string, std::string> path_params;  // "{iface_id}" -> value
  const std::string& body;
};

struct ApiRoute {
  std::string method;  // GET, PUT, PATCH
  std::string path;    // "/machine-config", "/fs/{fs_id}"
  Result<VmmAction> (*parse)(const ApiRequest& request);
};

const std::vector<ApiRoute>& ApiRoutes();

// Finds the route and parses the body; the error says what is wrong with
// the request, for a 400 fault_message.
Result<VmmAction> ParseApiRequest(const std::string& method, const std::string& path,
                                  const std::string& body);

}  // namespace ember
