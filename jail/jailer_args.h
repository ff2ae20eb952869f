// ember-jailer's command line: Firecracker's jailer flags, rules and
// messages ("Failed to parse arguments: ...", "Invalid instance ID: ..."),
// so launch code written for Firecracker's jailer runs unchanged. Parsing
// and validation only (no file system access but the checks of paths);
// jail/jailer.h does the work.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace ember {

struct JailerArgs {
  std::string id;
  std::string exec_file;  // canonical path
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string chroot_base_dir = "/srv/jailer";  // canonical after validation
  std::optional<std::string> netns;
  bool daemonize = false;
  bool new_pid_ns = false;
  int cgroup_version = 1;
  std::optional<std::string> parent_cgroup;                  // default: the exec file's name
  std::vector<std::pair<std::string, std::string>> cgroups;  // file, value
  std::optional<uint64_t> fsize;
  uint64_t no_file = 2048;
  std::vector<std::string> exec_args;  // after "--"
  bool help = false;
  bool version = false;

  std::string exec_name() const;  // the exec file's base name
  // <chroot_base_dir>/<exec name>/<id>/root
  std::string chroot_dir() const;
};

// Parses and validates: the id (1 to 64 bytes of letters, digits and '-'),
// the exec file (exists, a regular file, its name contains "ember" or
// "firecracker"), the base directory (exists), numeric uid and gid, cgroup
// and resource-limit arguments.
Result<JailerArgs> ParseJailerArgs(const std::vector<std::string>& args);
std::string JailerUsage();

}  // namespace ember
