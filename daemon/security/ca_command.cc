#include "daemon/security/ca_command.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/security/ca.h"
#include "daemon/security/credentials.h"

namespace constellation::daemon::security {
namespace {

constexpr char kUsage[] = R"(usage:
  constellation ca init DIR [--days=N] [--force]
      makes a cluster CA: DIR/ca.pem and DIR/ca.key (keep ca.key secret and offline if you can)
  constellation ca issue DIR NAME --role=master|node|client|admin [--host=H]... [--days=N] [--force]
      makes the bundle DIR/NAME/ (ca.pem, cert.pem, key.pem) for --tls=DIR/NAME; masters and
      nodes need every address their peers dial as --host (default: this host's name, localhost,
      127.0.0.1, ::1); --force replaces an existing bundle (rotation)
  constellation ca show BUNDLE_DIR
      checks a bundle and prints whose it is
)";

int Usage(const std::string& error) {
  fprintf(stderr, "constellation ca: %s\n\n%s", error.c_str(), kUsage);
  return 2;
}

int Report(const absl::Status& status, const std::string& done) {
  if (!status.ok()) {
    fprintf(stderr, "constellation ca: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  printf("%s\n", done.c_str());
  return 0;
}

struct Parsed {
  std::vector<std::string> positional;
  std::vector<std::string> hosts;
  std::string role;
  int days = 0;
  bool force = false;
  std::string error;
};

Parsed Parse(const std::vector<std::string>& args) {
  Parsed parsed;
  for (const std::string& arg : args) {
    if (absl::StartsWith(arg, "--host=")) {
      parsed.hosts.push_back(arg.substr(7));
    } else if (absl::StartsWith(arg, "--role=")) {
      parsed.role = arg.substr(7);
    } else if (absl::StartsWith(arg, "--days=")) {
      if (!absl::SimpleAtoi(arg.substr(7), &parsed.days) || parsed.days < 1 || parsed.days > 36500) {
        parsed.error = "--days takes a number of days from 1 to 36500";
      }
    } else if (arg == "--force") {
      parsed.force = true;
    } else if (absl::StartsWith(arg, "-")) {
      parsed.error = "unknown option " + arg;
    } else {
      parsed.positional.push_back(arg);
    }
  }
  return parsed;
}

int Init(const Parsed& parsed) {
  if (parsed.positional.size() != 1) return Usage("ca init takes one directory");
  CaOptions options;
  if (parsed.days > 0) options.days = parsed.days;
  options.force = parsed.force;
  const std::string& dir = parsed.positional[0];
  return Report(InitCa(dir, options), absl::StrCat("made the cluster CA in ", dir, " (ca.pem, ca.key)"));
}

int Issue(const Parsed& parsed) {
  if (parsed.positional.size() != 2) return Usage("ca issue takes the CA directory and a name");
  if (parsed.role.empty()) return Usage("ca issue needs --role=master|node|client|admin");
  absl::StatusOr<Role> role = ParseRole(parsed.role);
  if (!role.ok()) return Usage(std::string(role.status().message()));
  IssueOptions options;
  options.role = *role;
  options.hosts = parsed.hosts;
  if (parsed.days > 0) options.days = parsed.days;
  options.force = parsed.force;
  const std::string& dir = parsed.positional[0];
  const std::string& name = parsed.positional[1];
  return Report(IssueBundle(dir, name, options),
                absl::StrCat("issued ", RoleName(*role), " ", name, ": --tls=", dir, "/", name));
}

int Show(const Parsed& parsed) {
  if (parsed.positional.size() != 1) return Usage("ca show takes a bundle directory");
  absl::StatusOr<Credentials> creds = Credentials::LoadBundle(parsed.positional[0]);
  if (!creds.ok()) return Report(creds.status(), "");
  return Report(absl::OkStatus(), absl::StrCat(parsed.positional[0], ": ", creds->identity().ToString(), " (",
                                               SpiffeUri(creds->identity()), "), issued by its ca.pem"));
}

}  // namespace

int RunCaCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  Parsed parsed = Parse({args.begin() + 1, args.end()});
  if (!parsed.error.empty()) return Usage(parsed.error);
  if (args[0] == "init") return Init(parsed);
  if (args[0] == "issue") return Issue(parsed);
  if (args[0] == "show") return Show(parsed);
  return Usage("unknown ca command " + args[0]);
}

}  // namespace constellation::daemon::security
