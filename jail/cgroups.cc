#include "jail/cgroups.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace ember {
namespace {

Status WriteFile(const std::string& path, const std::string& value) {
  std::ofstream file(path);
  file << value << "\n";
  file.close();
  if (!file) {
    return Status::Error("Failed to write to " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);
  return line;
}

Status MakeDirs(const std::string& path) {
  for (size_t at = 1; at <= path.size(); ++at) {
    if (at != path.size() && path[at] != '/') continue;
    const std::string prefix = path.substr(0, at);
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::Error("Failed to create cgroup folder " + prefix + ": " +
                           std::strerror(errno));
    }
  }
  return Status::Ok();
}

// `root`, then root/a, root/a/b, ... for relative path "a/b".
std::vector<std::string> PathsDown(const std::string& root, const std::string& relative) {
  std::vector<std::string> paths = {root};
  std::string at = root;
  std::stringstream parts(relative);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part.empty()) continue;
    at += "/" + part;
    paths.push_back(at);
  }
  return paths;
}

// Mount points by controller (v1) or "" for the unified hierarchy (v2).
std::map<std::string, std::string> Hierarchies(int version) {
  std::map<std::string, std::string> found;
  std::ifstream mounts("/proc/mounts");
  std::string device, point, type, options, rest;
  while (mounts >> device >> point >> type >> options && std::getline(mounts, rest)) {
    if (version == 2 && type == "cgroup2") found.emplace("", point);
    if (version != 1 || type != "cgroup") continue;
    std::stringstream list(options);
    std::string option;
    while (std::getline(list, option, ',')) found.emplace(option, point);
  }
  return found;
}

}  // namespace

Status JoinCgroups(const CgroupRequest& request, pid_t pid, std::vector<std::string>& dirs) {
  const std::map<std::string, std::string> hierarchies = Hierarchies(request.version);
  if (hierarchies.empty()) {
    return Status::Error("Hierarchy not found: No hierarchy found for this cgroup version.");
  }
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> by_dir;
  for (const auto& [file, value] : request.files) {
    const std::string controller = file.substr(0, file.find('.'));
    std::string root;
    if (request.version == 1) {
      auto mount = hierarchies.find(controller);
      if (mount == hierarchies.end())
        return Status::Error("Controller " + controller + " is unavailable");
      root = mount->second;
    } else {
      root = hierarchies.at("");
      const std::string available = " " + ReadFirstLine(root + "/cgroup.controllers") + " ";
      if (available.find(" " + controller + " ") == std::string::npos) {
        return Status::Error("Controller " + controller + " is unavailable");
      }
      // Enabled from the root down to the parent, so the leaf has the files.
      for (const std::string& at : PathsDown(root, request.parent)) {
        EMBER_RETURN_IF_ERROR(MakeDirs(at));
        EMBER_RETURN_IF_ERROR(WriteFile(at + "/cgroup.subtree_control", "+" + controller));
      }
    }
    const std::string dir = root + "/" + request.parent + "/" + request.id;
    EMBER_RETURN_IF_ERROR(MakeDirs(dir));
    if (request.version == 1) {
      // A v1 value left empty below its parent (cpuset.cpus) is copied down.
      std::string inherited;
      for (const std::string& at : PathsDown(root, request.parent + "/" + request.id)) {
        const std::string here = ReadFirstLine(at + "/" + file);
        if (here.empty() && !inherited.empty()) {
          EMBER_RETURN_IF_ERROR(WriteFile(at + "/" + file, inherited));
        } else {
          inherited = here;
        }
      }
    }
    by_dir[dir].emplace_back(file, value);
  }
  // Every value first, then the process: it never runs unlimited inside.
  for (const auto& [dir, files] : by_dir) {
    for (const auto& [file, value] : files)
      EMBER_RETURN_IF_ERROR(WriteFile(dir + "/" + file, value));
  }
  for (const auto& [dir, files] : by_dir) {
    EMBER_RETURN_IF_ERROR(
        WriteFile(dir + (request.version == 1 ? "/tasks" : "/cgroup.procs"), std::to_string(pid)));
    dirs.push_back(dir);
  }
  return Status::Ok();
}

}  // namespace ember
