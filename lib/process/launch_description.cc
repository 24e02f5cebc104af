#include "lib/process/launch_description.h"

#include <unistd.h>

#include <utility>

#include "lib/process/proto_convert.h"

namespace constellation::process_internal {

using internal::ToProto;

LaunchDescription::LaunchDescription(LaunchDescription&& other) noexcept
    : port(std::exchange(other.port, DataPort{})), info(std::move(other.info)), options(std::move(other.options)) {}

LaunchDescription& LaunchDescription::operator=(LaunchDescription&& other) noexcept {
  if (this == &other) return *this;
  if (port.fd >= 0) close(port.fd);
  port = std::exchange(other.port, DataPort{});
  info = std::move(other.info);
  options = std::move(other.options);
  return *this;
}

LaunchDescription::~LaunchDescription() {
  if (port.fd >= 0) close(port.fd);
}

absl::StatusOr<LaunchDescription> DescribeLaunch(const LaunchSite& site, LaunchWhat what) {
  absl::StatusOr<DataPort> port = BindDataPort(site.ipv4);
  if (!port.ok()) return port.status();
  LaunchDescription d;
  d.port = *port;
  pb::SpawnInfo& info = d.info;
  *info.mutable_self() = ToProto(port->pid);
  if (what.parent) *info.mutable_parent() = *what.parent;
  *info.mutable_resources() = what.resources;
  if (what.call) *info.mutable_call() = *std::move(what.call);
  info.set_listen_fd(port->fd);
  info.set_bridge(site.bridge);
  info.set_fabric(site.fabric);
  *info.mutable_cgroups() = site.cgroups;
  info.set_secret(std::move(what.secret));

  LaunchOptions& options = d.options;
  options.path = std::move(what.path);
  options.argv = what.argv.empty() ? std::move(what.default_argv) : std::move(what.argv);
  if (options.argv.empty()) options.argv.push_back(options.path);
  options.env = std::move(what.env);
  if (site.fabric) {
    // Once, whatever the environment held: a spawned process's comes from
    // its parent's, which has it already, and getenv() reads the first.
    std::erase_if(options.env, [](const std::string& e) { return e.rfind("CONSTELLATION=", 0) == 0; });
    options.env.push_back("CONSTELLATION=fabric");
  }
  options.stdin_fd = what.stdin_fd;
  return d;
}

absl::StatusOr<pid_t> Launch(LaunchDescription& description) {
  absl::StatusOr<pid_t> os_pid = LaunchWithHandOff(description.options, description.info);
  close(description.port.fd);
  description.port.fd = -1;
  return os_pid;
}

}  // namespace constellation::process_internal
