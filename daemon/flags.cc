#include "daemon/flags.h"

#include <algorithm>
#include <cmath>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/binary_cache.h"
#include "daemon/config.h"
#include "lib/core/resources.h"

// Help strings are short: --help prints UsageText(), which explains each flag.
ABSL_FLAG(std::string, tls, "", "this daemon's TLS bundle directory");
ABSL_FLAG(bool, insecure, false, "no TLS and no authentication");
ABSL_FLAG(std::string, cache_dir, "", "where uploaded binaries are kept");
ABSL_FLAG(constellation::daemon::ByteSize, max_binary_size,
          constellation::daemon::ByteSize{constellation::daemon::kDefaultMaxBinarySize},
          "the largest binary accepted for upload");
ABSL_FLAG(constellation::daemon::Directory, state_dir, {}, "the master's jobs and their logs");
ABSL_FLAG(constellation::daemon::ByteSize, event_buffer, constellation::daemon::ByteSize{64 * constellation::kMiB},
          "a node's memory for events not yet stored by the master");
ABSL_FLAG(constellation::daemon::GraceDuration, master_grace, constellation::daemon::GraceDuration{absl::Seconds(60)},
          "how long processes outlive their master");
ABSL_FLAG(constellation::daemon::PeerTimeout, peer_timeout, constellation::daemon::PeerTimeout{absl::Seconds(10)},
          "how long an unanswered keepalive ping may take");
ABSL_FLAG(std::string, run_as, "", "the user to run as when started as root");
ABSL_FLAG(constellation::daemon::HostPort, join, {}, "a node: the master to join");
ABSL_FLAG(constellation::daemon::HostPort, advertise, {}, "with --join: the address the master dials");
ABSL_FLAG(constellation::daemon::MemOffer, mem, {}, "with --join: memory offered");
ABSL_FLAG(constellation::daemon::CpuOffer, cpu, {}, "with --join: cores offered");
ABSL_FLAG(constellation::daemon::GraceDuration, drain_timeout, constellation::daemon::GraceDuration{absl::Seconds(30)},
          "how long SIGTERM lets running processes finish");
ABSL_FLAG(constellation::daemon::HostPort, metrics, {}, "where to serve Prometheus metrics (/metrics)");
ABSL_FLAG(constellation::daemon::LogFormat, log_format, constellation::daemon::LogFormat::kText, "text or json");

namespace constellation::daemon {
namespace {

constexpr char kVersion[] = "constellation 0.1.0";

constexpr char kUsage[] = R"(usage: constellation <bind-addr> [nodes.toml] [options]
       constellation ca init|issue|show ...     (constellation ca --help)

Runs a Constellation daemon.
  constellation 10.0.0.2:9999              a node: runs the processes the master places here
  constellation 10.0.0.1:9999 nodes.toml   the master: places processes on the nodes listed in
                                           nodes.toml and serves the job API (constellation.v1.Jobs)
                                           that cdeploy talks to, at the bridge_bind of its entry

options (--opt=value or --opt value):
  --tls=DIR         this daemon's TLS bundle: ca.pem, cert.pem, key.pem from `constellation ca issue`
                    with --role=node (a node) or --role=master (the master) (default /etc/constellation/tls)
  --insecure        no TLS and no authentication: anyone who can reach the ports can run code here;
                    only for a private, trusted network (prints a warning)
  --cache-dir=DIR   where uploaded binaries are kept (default $CACHE_DIRECTORY under systemd, else
                    /var/tmp/constellation/<port>);
                    created 0700, refused if it exists with another owner or group/world write
  --max-binary-size=SIZE
                    the largest binary accepted for upload, e.g. "512 MiB" (default 4 GiB)
  --state-dir=DIR   the master's jobs and their logs (SQLite), kept across restarts
                    (default $STATE_DIRECTORY under systemd, else /var/lib/constellation); created 0700
  --event-buffer=SIZE
                    a node: memory for its processes' events until the master has stored them, e.g.
                    "64 MiB" (the default); when full, output is dropped (and the loss reported)
  --master-grace=DURATION
                    a node: how long it keeps its processes when its master goes away, for a master
                    that comes back, e.g. "60s" (the default), "500ms", "2m"; 0 kills them at once.
                    The master: how long, after it restarts, it waits for the nodes that ran its jobs
  --peer-timeout=DURATION
                    how long a peer's connection (master to node, node to master) may leave a
                    keepalive ping unanswered before it is taken as broken: a node then counts as
                    lost, a master as gone; e.g. "10s" (the default), at least 1s
  --run-as=USER     required when started as root: make the directories and the cgroup base, hand them
                    to USER, then run as USER (and so does everything it launches); the TLS
                    bundle is read before. --run-as=root keeps root: deployments run as root
  --join=ADDR       a node: join the master whose daemon listens at ADDR (not in its nodes.toml);
                    joins again by itself whenever the master comes back, leaves on SIGTERM
  --advertise=HOST:PORT
                    with --join: the address the master dials (needed when binding 0.0.0.0; a port of
                    0 means the one listened on); default: the address the node listens on
  --mem=SIZE        with --join: memory offered to processes, e.g. "8 GiB" (default: the cgroup's
                    memory limit, or the machine's memory)
  --cpu=N           with --join: cores offered (default: the CPUs this daemon may run on, lowered
                    to the cgroup's CPU quota, rounded down)
  --drain-timeout=DURATION
                    on SIGTERM or SIGINT (systemctl stop): take no new work (health NOT_SERVING; new
                    processes and jobs refused with UNAVAILABLE), let the processes running here finish
                    for this long, e.g. "30s" (the default), then kill them and exit 0; 0 kills at once.
                    A second signal kills at once
  --log-format=FORMAT
                    "text" (the default: one line per event with time and level; under systemd the
                    journal's <N> priority instead of the time) or "json" (one object per line)
  --metrics=HOST:PORT
                    serve Prometheus metrics at http://HOST:PORT/metrics (port 0 takes a free port,
                    printed); docs/metrics.md lists them. Off by default
  --help            this text
  --version         the version

A bind address with port 0 takes a free port; the daemon prints the address it listens on.
)";

// A flag this program defines (not one of Abseil's own, such as --flagfile).
absl::CommandLineFlag* FindDaemonFlag(absl::string_view name) {
  std::string flag_name(name);
  std::replace(flag_name.begin(), flag_name.end(), '-', '_');
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(flag_name);
  if (flag == nullptr || flag->IsRetired() || !absl::StartsWith(flag->Filename(), "daemon/")) return nullptr;
  return flag;
}

}  // namespace

bool AbslParseFlag(absl::string_view text, ByteSize* size, std::string* error) {
  absl::StatusOr<uint64_t> bytes = parse_mem(text);
  if (!bytes.ok()) {
    *error = std::string(bytes.status().message());
    return false;
  }
  size->bytes = *bytes;
  return true;
}

bool AbslParseFlag(absl::string_view text, Directory* directory, std::string* error) {
  if (text.empty()) {
    *error = "needs a directory";
    return false;
  }
  directory->path = std::string(text);
  return true;
}

std::string AbslUnparseFlag(const Directory& directory) { return directory.path; }

std::string AbslUnparseFlag(ByteSize size) { return absl::StrCat(size.bytes, "B"); }

bool AbslParseFlag(absl::string_view text, GraceDuration* duration, std::string* error) {
  absl::Duration value;
  if (!absl::ParseDuration(text, &value) || value < absl::ZeroDuration() || value == absl::InfiniteDuration()) {
    *error = absl::StrCat("expected a duration such as \"60s\", \"500ms\", \"2m\" or 0, got \"", text, "\"");
    return false;
  }
  duration->value = value;
  return true;
}

std::string AbslUnparseFlag(GraceDuration duration) { return absl::FormatDuration(duration.value); }

bool AbslParseFlag(absl::string_view text, PeerTimeout* timeout, std::string* error) {
  absl::Duration value;
  if (!absl::ParseDuration(text, &value) || value < absl::Seconds(1) || value > absl::Hours(1)) {
    *error = absl::StrCat("expected a duration from 1s to 1h such as \"10s\", got \"", text, "\"");
    return false;
  }
  timeout->value = value;
  return true;
}

std::string AbslUnparseFlag(PeerTimeout timeout) { return absl::FormatDuration(timeout.value); }

bool AbslParseFlag(absl::string_view text, HostPort* address, std::string* error) {
  if (absl::Status valid = ValidateHostPort(text); !valid.ok()) {
    *error = std::string(valid.message());
    return false;
  }
  address->value = std::string(text);
  return true;
}

std::string AbslUnparseFlag(const HostPort& address) { return address.value; }

bool AbslParseFlag(absl::string_view text, MemOffer* mem, std::string* error) {
  absl::StatusOr<uint64_t> bytes = parse_mem(text);
  if (!bytes.ok() || *bytes == 0) {
    *error = absl::StrCat("expected a size such as \"8 GiB\", got \"", text, "\"");
    return false;
  }
  mem->bytes = *bytes;
  return true;
}

std::string AbslUnparseFlag(const MemOffer& mem) { return mem.bytes ? absl::StrCat(*mem.bytes, "B") : ""; }

bool AbslParseFlag(absl::string_view text, CpuOffer* cpu, std::string* error) {
  double cores = 0;
  if (!absl::SimpleAtod(text, &cores) || !std::isfinite(cores) || cores < 0.01 || cores > 4096) {
    *error = absl::StrCat("expected a number of cores from 0.01 to 4096, got \"", text, "\"");
    return false;
  }
  cpu->cores = cores;
  return true;
}

std::string AbslUnparseFlag(const CpuOffer& cpu) { return cpu.cores ? absl::StrCat(*cpu.cores) : ""; }

absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args) {
  CommandLine line;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") return CommandLine{CommandLine::Action::kHelp, {}};
    if (arg == "--version") return CommandLine{CommandLine::Action::kVersion, {}};
    if (arg == "--") {
      line.positional.insert(line.positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg.empty() || arg[0] != '-') {
      line.positional.push_back(arg);
      continue;
    }
    size_t eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    absl::CommandLineFlag* flag = absl::StartsWith(name, "--") ? FindDaemonFlag(name.substr(2)) : nullptr;
    if (flag == nullptr) return absl::InvalidArgumentError("unknown option " + arg);
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (flag->IsOfType<bool>()) {
      value = "true";
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(name + " needs a value");
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      // Abseil prefixes "Illegal value 'V' specified for flag 'F'; ": ours names both already.
      std::string prefix = absl::StrCat("specified for flag '", flag->Name(), "'; ");
      size_t at = error.find(prefix);
      if (at != std::string::npos) error = error.substr(at + prefix.size());
      return absl::InvalidArgumentError(name + ": " + error);
    }
  }
  return line;
}

absl::string_view UsageText() { return kUsage; }
absl::string_view VersionText() { return kVersion; }

}  // namespace constellation::daemon
