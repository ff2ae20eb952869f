// The API's one route table: each row is an OpenAPI operation (method and
// path, what the agreement test compares with openapi/ember.yaml), the
// parser of its body into a typed VmmAction, and its request counters in
// the metrics, so that serving, documenting and counting cannot drift
// apart. Runs on API threads; touches no VM state.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "api/vmm_action.h"
#include "base/metrics.h"
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
  std::string path;    // OpenAPI's path: "/machine-config", "/fs/{fs_id}"
  Result<VmmAction> (*parse)(const ApiRequest& request);
  // Counted once per request, e.g. put_api_requests.fs_count; `fails` also
  // when the answer is an error (nullptr for GETs, which have no _fails
  // counter in Firecracker's metrics).
  Counter Metrics::*count;
  Counter Metrics::*fails;
};

const std::vector<ApiRoute>& ApiRoutes();

// The route serving `method` and `path` (nullptr: none), with the path's
// parameters ("fs_id" -> "share") in `params`.
const ApiRoute* FindApiRoute(const std::string& method, const std::string& path,
                             std::map<std::string, std::string>& params);

// Counts a request in GlobalMetrics(): on its route's counters, or as
// api_server.invalid_requests_count when no route serves it.
void CountApiRequest(const std::string& method, const std::string& path, bool failed);

// Serves one request: finds its route, parses the body, hands the action
// to `submit` (the VMM thread) and counts the request. Errors in the
// request itself come back as a 400 whose fault_message says what is wrong.
VmmReply HandleApiRequest(const std::string& method, const std::string& path,
                          const std::string& body,
                          const std::function<VmmReply(VmmAction)>& submit);

}  // namespace ember
