// The jailed VMM's cgroup, as Firecracker's jailer makes it:
// <hierarchy>/<parent>/<id>, with the given files written and the process
// moved in. v1: one hierarchy per controller, found in /proc/mounts (empty
// values such as cpuset.cpus are first copied down from the parent, or the
// kernel refuses tasks). v2: the unified hierarchy, each controller enabled
// in cgroup.subtree_control from the root down to the parent.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace ember {

struct CgroupRequest {
  int version = 1;
  std::string parent;  // relative, no '.' or '..'
  std::string id;
  std::vector<std::pair<std::string, std::string>> files;  // e.g. {"memory.max", "512M"}
};

// The directories it made or used, one per hierarchy, in `dirs`.
Status JoinCgroups(const CgroupRequest& request, pid_t pid, std::vector<std::string>& dirs);

}  // namespace ember
