#include "jail/jailer_args.h"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "base/instance_id.h"
#include "base/sys_error.h"

namespace ember {
namespace {

Status ParseError(const std::string& what) {
  return Status::Error("Failed to parse arguments: " + what);
}

Result<std::string> Canonical(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) {
    return Status::Error("Failed to canonicalize path " + path + ": " + IoErrorText());
  }
  return std::string(resolved);
}

Result<uint32_t> ParseId32(const std::string& value, const std::string& what) {
  if (value.empty() || value.size() > 10 ||
      value.find_first_not_of("0123456789") != std::string::npos) {
    return Status::Error("Invalid " + what + ": " + value);
  }
  const uint64_t number = std::stoull(value);
  if (number > 0xffffffffu) return Status::Error("Invalid " + what + ": " + value);
  return static_cast<uint32_t>(number);
}

// "no '/' and no '.' or '..' component": a name that stays where it is put.
bool IsPlainPath(const std::string& path, bool allow_slash) {
  if (path.empty() || path[0] == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (end < path.size() && !allow_slash) return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

std::string JailerArgs::exec_name() const {
  const size_t slash = exec_file.rfind('/');
  return slash == std::string::npos ? exec_file : exec_file.substr(slash + 1);
}

std::string JailerArgs::chroot_dir() const {
  return chroot_base_dir + "/" + exec_name() + "/" + id + "/root";
}

std::string JailerUsage() {
  return "Usage: ember-jailer --id ID --exec-file FILE --uid UID --gid GID [options] [-- ember "
         "args]\n"
         "\n"
         "  --id ID                   the microVM's id: 1 to 64 letters, digits and '-'\n"
         "  --exec-file FILE          the VMM binary (its name contains ember or firecracker)\n"
         "  --uid UID, --gid GID      who the VMM runs as\n"
         "  --chroot-base-dir DIR     jails go to DIR/<exec name>/<id>/root (default "
         "/srv/jailer)\n"
         "  --netns PATH              join this network namespace\n"
         "  --daemonize               detach: new session, stdio to /dev/null\n"
         "  --new-pid-ns              run the VMM in a new PID namespace\n"
         "  --cgroup FILE=VALUE       write VALUE to the cgroup file (repeatable), e.g. "
         "cpu.max=50000\n"
         "  --cgroup-version 1|2      cgroup hierarchy (default 1)\n"
         "  --parent-cgroup PATH      cgroup parent (default: the exec file's name)\n"
         "  --resource-limit R=VALUE  fsize or no-file (default no-file=2048), repeatable\n"
         "  --version, --help\n";
}

Result<JailerArgs> ParseJailerArgs(const std::vector<std::string>& args) {
  static const std::set<std::string> kValued = {
      "id",    "exec-file",      "uid",           "gid",    "chroot-base-dir",
      "netns", "cgroup-version", "parent-cgroup", "cgroup", "resource-limit"};
  static const std::set<std::string> kRepeatable = {"cgroup", "resource-limit"};
  static const std::set<std::string> kFlags = {"daemonize", "new-pid-ns", "version", "help"};
  JailerArgs parsed;
  std::map<std::string, std::vector<std::string>> values;
  std::set<std::string> flags;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      parsed.exec_args.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (arg == "-h") {
      flags.insert("help");
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return ParseError("Found argument '" + arg +
                        "' which wasn't expected, or isn't valid in this context.");
    }
    const std::string name = arg.substr(2);
    if (kFlags.count(name) != 0) {
      if (!flags.insert(name).second) {
        return ParseError("The argument '" + name + "' was provided more than once.");
      }
      continue;
    }
    if (kValued.count(name) == 0) {
      return ParseError("Found argument '" + name +
                        "' which wasn't expected, or isn't valid in this context.");
    }
    if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0) {
      return ParseError("The argument '" + name + "' requires a value, but none was supplied.");
    }
    std::vector<std::string>& list = values[name];
    if (!list.empty() && kRepeatable.count(name) == 0) {
      return ParseError("The argument '" + name + "' was provided more than once.");
    }
    list.push_back(args[++i]);
  }
  parsed.help = flags.count("help") != 0;
  parsed.version = flags.count("version") != 0;
  if (parsed.help || parsed.version) return parsed;
  // Required ones, in Firecracker's (alphabetical) order.
  for (const char* required : {"exec-file", "gid", "id", "uid"}) {
    if (values.count(required) == 0) {
      return ParseError(std::string("Argument '") + required + "' required, but not found.");
    }
  }
  auto one = [&](const char* name) { return values.at(name).front(); };
  parsed.daemonize = flags.count("daemonize") != 0;
  parsed.new_pid_ns = flags.count("new-pid-ns") != 0;

  // The id names a directory and the VMM's instance: nothing else gets in.
  const std::string id = one("id");
  if (Status valid = ValidateInstanceId(id); !valid.ok()) {
    return Status::Error("Invalid instance ID: " + valid.message());
  }
  parsed.id = id;

  EMBER_ASSIGN_OR_RETURN(parsed.exec_file, Canonical(one("exec-file")));
  struct stat info {};
  if (stat(parsed.exec_file.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return Status::Error(parsed.exec_file + " is not a file");
  }
  const std::string name = parsed.exec_name();
  if (name.find("ember") == std::string::npos && name.find("firecracker") == std::string::npos) {
    return Status::Error(
        "Invalid filename. The filename of `--exec-file` option must contain \"ember\" or "
        "\"firecracker\": " +
        name);
  }
  EMBER_ASSIGN_OR_RETURN(parsed.uid, ParseId32(one("uid"), "uid"));
  EMBER_ASSIGN_OR_RETURN(parsed.gid, ParseId32(one("gid"), "gid"));
  if (values.count("chroot-base-dir") != 0) parsed.chroot_base_dir = one("chroot-base-dir");
  EMBER_ASSIGN_OR_RETURN(parsed.chroot_base_dir, Canonical(parsed.chroot_base_dir));
  if (stat(parsed.chroot_base_dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    return Status::Error(parsed.chroot_base_dir + " is not a directory");
  }
  if (values.count("netns") != 0) parsed.netns = one("netns");
  if (values.count("cgroup-version") != 0) {
    const std::string version = one("cgroup-version");
    if (version != "1" && version != "2") {
      return Status::Error("Invalid cgroup version: " + version + " (1 or 2)");
    }
    parsed.cgroup_version = version == "1" ? 1 : 2;
  }
  if (values.count("parent-cgroup") != 0) {
    const std::string parent = one("parent-cgroup");
    if (!IsPlainPath(parent, /*allow_slash=*/true)) {
      return Status::Error(
          "Parent cgroup path is invalid. Path should not be absolute or contain '..' or '.'");
    }
    parsed.parent_cgroup = parent;
  }
  for (const std::string& cgroup : values["cgroup"]) {
    const size_t equals = cgroup.find('=');
    if (equals == std::string::npos || equals + 1 == cgroup.size() ||
        cgroup.find('=', equals + 1) != std::string::npos) {
      return Status::Error("Invalid format for cgroups: " + cgroup);
    }
    const std::string file = cgroup.substr(0, equals);
    const size_t dot = file.find('.');
    if (!IsPlainPath(file, /*allow_slash=*/false) || dot == std::string::npos || dot == 0 ||
        dot + 1 == file.size()) {
      return Status::Error("Cgroup invalid file: " + cgroup);
    }
    parsed.cgroups.emplace_back(file, cgroup.substr(equals + 1));
  }
  for (const std::string& limit : values["resource-limit"]) {
    const size_t equals = limit.find('=');
    if (equals == std::string::npos || limit.find('=', equals + 1) != std::string::npos) {
      return Status::Error("Invalid format for resources limits: " + limit);
    }
    const std::string resource = limit.substr(0, equals);
    const std::string value = limit.substr(equals + 1);
    if (resource != "fsize" && resource != "no-file") {
      return Status::Error("Invalid resource argument: " + resource);
    }
    if (value.empty() || value.size() > 20 ||
        value.find_first_not_of("0123456789") != std::string::npos) {
      return Status::Error("Invalid limit value for resource: " + value + ": not a decimal number");
    }
    const uint64_t number = std::strtoull(value.c_str(), nullptr, 10);
    if (resource == "fsize") {
      parsed.fsize = number;
    } else {
      parsed.no_file = number;
    }
  }
  return parsed;
}

}  // namespace ember
