#include "cli/args.h"

#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/bazel_build.h"

namespace constellation::cli {

using internal::OutputFormat;
using internal::ParseOutputFormat;

const char kVersion[] = "cdeploy 0.1.0";

const char kUsage[] = R"(usage: cdeploy [ADDR] BINARY|//label [options] [-- args...]
       cdeploy submit [ADDR] [--detach] [--label=K=V]... [--ttl=DUR] BINARY|//label [-- args...]
       cdeploy list [ADDR] [--state=S]... [--label=K=V]... [--format=json]
       cdeploy status [ADDR] JOB [--format=json]
       cdeploy logs [ADDR] [-f] [--from=SEQ] JOB
       cdeploy cancel [ADDR] JOB [--grace=DUR]
       cdeploy delete [ADDR] JOB
       cdeploy nodes [ADDR] [--format=json|table]

Runs Constellation programs as jobs on the cluster whose master serves the job API at ADDR
(host:port; default $CONSTELLATION_MASTER). A bazel label (//pkg:target) is built first, in the
workspace --workspace names, else $BUILD_WORKSPACE_DIRECTORY (under `bazel run`), else the nearest
directory at or above the current one with a WORKSPACE, WORKSPACE.bazel or MODULE.bazel file.

The first form uploads the binary (once: the cluster keeps it by its SHA-256), submits a job,
forwards stdin to its root process and prints every process's output as local mode prints it;
cdeploy exits with the program's exit code (128+n for signal n). Ctrl-C cancels the job (a second
one leaves at once). If the master restarts, cdeploy reconnects and continues where it was.
`submit --detach` prints the job's id and leaves it running; the other commands find it by that id.

options (--name=VALUE or --name VALUE):
  --format=human|json  how output is printed (default: $CONSTELLATION_FORMAT, else human);
                       list, status and nodes print a table or JSON lines (--format=json|table)
  --tls=DIR            your TLS bundle (ca.pem, cert.pem, key.pem from `constellation ca issue
                       --role=client`); default $CONSTELLATION_TLS, else ~/.config/constellation/tls
  --insecure           no TLS: for a cluster whose daemons run with --insecure
  --env=NAME           also forward the environment variable NAME (repeatable)
  --env-all            forward every environment variable
  --label=K=V          submit: label the job (repeatable); list: only jobs with this label
  --ttl=DUR            keep the finished job this long (90s, 10m, 2h; default: the master's, 7 days)
  --detach             submit: print the job's id and exit
  --reconnect-timeout=DUR  how long to keep reconnecting to a master that went away (default 60s)
  --state=S            list: only jobs in state S (pending, running, succeeded, failed, cancelled)
  -f, --follow         logs: keep printing until the job ends, then exit with its exit code
  --from=SEQ           logs: only events after sequence number SEQ
  --grace=DUR          cancel: SIGTERM first, SIGKILL after DUR (default 10s; 0: SIGKILL at once)
  --workspace=DIR      run, submit: build a //label in the Bazel workspace DIR
  --help               this text
  --version            cdeploy's version

The program gets PATH, LANG, LC_*, TZ and CONSTELLATION_* from cdeploy's environment,
and the variables named with --env; nothing else unless --env-all.
Output is coloured on a terminal unless $NO_COLOR is set (and not empty). Upload progress is a bar
on a terminal, else a line every 10% or 2 seconds.
Errors are one line on stderr and exit code 2. docs/jobs.md has the details.
)";

namespace {

constexpr uint32_t Bit(Verb verb) { return 1u << static_cast<int>(verb); }
constexpr uint32_t kRunLike = Bit(Verb::kRun) | Bit(Verb::kSubmit);
constexpr uint32_t kListing = Bit(Verb::kList) | Bit(Verb::kStatus) | Bit(Verb::kNodes);
constexpr uint32_t kAll = ~0u;

struct OptionSpec {
  const char* name;  // "--format"; "-f" for the short one
  bool takes_value;  // --name=VALUE
  uint32_t verbs;    // where it is accepted
};

constexpr OptionSpec kOptions[] = {
    {"--help", false, kAll},
    {"-h", false, kAll},
    {"--version", false, kAll},
    {"--workspace", true, kRunLike},
    {"--tls", true, kAll},
    {"--insecure", false, kAll},
    {"--format", true, kRunLike | Bit(Verb::kLogs) | kListing},
    {"--env", true, kRunLike},
    {"--env-all", false, kRunLike},
    {"--label", true, kRunLike | Bit(Verb::kList)},
    {"--ttl", true, kRunLike},
    {"--detach", false, Bit(Verb::kSubmit)},
    {"--reconnect-timeout", true, kRunLike | Bit(Verb::kLogs)},
    {"--state", true, Bit(Verb::kList)},
    {"-f", false, Bit(Verb::kLogs)},
    {"--follow", false, Bit(Verb::kLogs)},
    {"--from", true, Bit(Verb::kLogs)},
    {"--grace", true, Bit(Verb::kCancel)},
};

struct VerbWord {
  const char* word;
  Verb verb;
};
constexpr VerbWord kVerbs[] = {
    {"submit", Verb::kSubmit}, {"list", Verb::kList},     {"status", Verb::kStatus}, {"logs", Verb::kLogs},
    {"cancel", Verb::kCancel}, {"delete", Verb::kDelete}, {"nodes", Verb::kNodes},   {"help", Verb::kHelp},
};

absl::Status Usage(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(message, " (cdeploy --help shows the usage)"));
}

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view name, absl::string_view value) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d < absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return Usage(absl::StrCat(name, " wants a duration such as 90s, 10m or 2h, not \"", value, "\""));
  }
  return d;
}

absl::Status AddLabel(absl::string_view value, std::map<std::string, std::string>& labels) {
  size_t eq = value.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return Usage(absl::StrCat("--label wants KEY=VALUE, not \"", value, "\""));
  }
  std::string key(value.substr(0, eq));
  if (!labels.emplace(key, std::string(value.substr(eq + 1))).second) {
    return Usage(absl::StrCat("--label ", key, " is given twice"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::JobState> ParseState(absl::string_view value) {
  v1::JobState state;
  std::string upper = absl::AsciiStrToUpper(value);
  if (!absl::StartsWith(upper, "JOB_STATE_")) upper = "JOB_STATE_" + upper;
  if (!v1::JobState_Parse(upper, &state) || state == v1::JOB_STATE_UNSPECIFIED) {
    return Usage(absl::StrCat("--state wants pending, running, succeeded, failed or cancelled, not \"", value, "\""));
  }
  return state;
}

bool IsJobId(absl::string_view text) {
  if (text.empty() || text.size() > 20) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return true;
}

// The options as given, before the verb decides what they mean.
struct Raw {
  std::optional<std::string> format;
};

// Applies one option (already known to be accepted by args.verb).
absl::Status Apply(const OptionSpec& spec, absl::string_view value, Args& args, Raw& raw) {
  absl::string_view name = spec.name;
  if (name == "--tls") {
    args.tls.bundle_dir = std::string(value);
  } else if (name == "--workspace") {
    if (value.empty()) return Usage("--workspace wants a directory");
    args.workspace = std::string(value);
  } else if (name == "--insecure") {
    args.tls.insecure = true;
  } else if (name == "--format") {
    raw.format = std::string(value);
  } else if (name == "--env") {
    absl::Status valid = ValidateEnvName(value);
    if (!valid.ok()) return valid;
    args.env.names.emplace_back(value);
  } else if (name == "--env-all") {
    args.env.all = true;
  } else if (name == "--label") {
    return AddLabel(value, args.labels);
  } else if (name == "--ttl") {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(name, value);
    if (!d.ok()) return d.status();
    args.ttl = *d;
  } else if (name == "--detach") {
    args.detach = true;
  } else if (name == "--reconnect-timeout") {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(name, value);
    if (!d.ok()) return d.status();
    args.reconnect_timeout = *d;
  } else if (name == "--state") {
    absl::StatusOr<v1::JobState> state = ParseState(value);
    if (!state.ok()) return state.status();
    args.states.push_back(*state);
  } else if (name == "-f" || name == "--follow") {
    args.follow = true;
  } else if (name == "--from") {
    if (!absl::SimpleAtoi(value, &args.from_seq)) {
      return Usage(absl::StrCat("--from wants an event sequence number, not \"", value, "\""));
    }
  } else if (name == "--grace") {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(name, value);
    if (!d.ok()) return d.status();
    args.grace = *d;
  }
  return absl::OkStatus();
}

const OptionSpec* FindOption(absl::string_view name) {
  for (const OptionSpec& spec : kOptions) {
    if (name == spec.name) return &spec;
  }
  return nullptr;
}

// Sets the formats from --format or $CONSTELLATION_FORMAT.
absl::Status ResolveFormat(const Raw& raw, const ArgsEnv& env, Args& args) {
  bool listing = (Bit(args.verb) & kListing) != 0;
  if (!listing) {
    if (raw.format.has_value()) {
      absl::StatusOr<OutputFormat> f = ParseOutputFormat(raw.format->c_str());
      if (!f.ok()) return f.status();
      args.output = *f;
      return absl::OkStatus();
    }
    absl::StatusOr<OutputFormat> f = ParseOutputFormat(env.format.c_str());
    if (!f.ok()) return f.status();
    args.output = *f;
    return absl::OkStatus();
  }
  if (raw.format.has_value()) {
    if (*raw.format == "json") {
      args.listing = ListingFormat::kJson;
    } else if (*raw.format == "table" || *raw.format == "human") {
      args.listing = ListingFormat::kTable;
    } else {
      return Usage(
          absl::StrCat("--format of cdeploy ", VerbName(args.verb), " is json or table, not \"", *raw.format, "\""));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<OutputFormat> f = ParseOutputFormat(env.format.c_str());
  if (!f.ok()) return f.status();
  args.listing = *f == OutputFormat::kJson ? ListingFormat::kJson : ListingFormat::kAuto;
  return absl::OkStatus();
}

absl::Status CheckAddr(absl::string_view addr, absl::string_view where) {
  if (addr.find(':') == absl::string_view::npos || addr.front() == ':' || addr.back() == ':') {
    return Usage(absl::StrCat(where, " \"", addr, "\" is not a master address (host:port)"));
  }
  return absl::OkStatus();
}

// Splits the positional arguments into ADDR and the one operand (BINARY or
// JOB) the verb takes, if any.
absl::Status AssignPositionals(const std::vector<std::string>& positional, const ArgsEnv& env, Args& args) {
  bool has_operand = args.verb != Verb::kList && args.verb != Verb::kNodes;
  size_t max = has_operand ? 2 : 1;
  const char* operand = args.verb == Verb::kRun || args.verb == Verb::kSubmit ? "BINARY or //label" : "JOB";
  std::string shape = has_operand ? absl::StrCat("[ADDR] ", operand) : "[ADDR]";
  if (positional.size() > max || (has_operand && positional.empty())) {
    if (args.verb == Verb::kRun && positional.size() > max) {
      return Usage(absl::StrCat("\"", positional[0], "\" is no command, and one binary at most (program arguments go ",
                                "after --)"));
    }
    return Usage(absl::StrCat("cdeploy ", VerbName(args.verb), " takes ", shape, ", got ", positional.size(),
                              " argument", positional.size() == 1 ? "" : "s"));
  }
  if (positional.size() == max) {
    if (args.verb == Verb::kRun && positional[0].find(':') == std::string::npos) {
      return Usage(absl::StrCat("\"", positional[0], "\" is neither a command (submit, list, status, logs, cancel, ",
                                "delete, nodes) nor a master address (host:port)"));
    }
    absl::Status addr = CheckAddr(positional[0], "ADDR");
    if (!addr.ok()) return addr;
    args.addr = positional[0];
  } else {
    if (env.master.empty() && has_operand && positional[0].find(':') != std::string::npos) {
      return Usage(absl::StrCat("cdeploy ", VerbName(args.verb), " takes ", shape, ": ", operand, " is missing"));
    }
    if (env.master.empty()) return Usage("no master address: give ADDR or set CONSTELLATION_MASTER");
    absl::Status addr = CheckAddr(env.master, "CONSTELLATION_MASTER");
    if (!addr.ok()) return addr;
    args.addr = env.master;
  }
  if (!has_operand) return absl::OkStatus();
  const std::string& value = positional.back();
  if (args.verb == Verb::kRun || args.verb == Verb::kSubmit) {
    if (LooksLikeLabel(value)) {  // refused before anything else happens
      absl::Status label = ValidateLabel(value);
      if (!label.ok()) return label;
    }
    args.binary = value;
  } else {
    if (!IsJobId(value)) return Usage(absl::StrCat("\"", value, "\" is not a job id (a decimal number)"));
    args.job = value;
  }
  return absl::OkStatus();
}

}  // namespace

const char* VerbName(Verb verb) {
  switch (verb) {
    case Verb::kRun:
      return "run";
    case Verb::kHelp:
      return "help";
    case Verb::kVersion:
      return "version";
    default:
      for (const VerbWord& w : kVerbs) {
        if (w.verb == verb) return w.word;
      }
  }
  return "?";
}

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv, const ArgsEnv& env) {
  Args args;
  if (argv.empty()) return Usage("nothing to do");
  size_t i = 0;
  args.verb = Verb::kRun;
  for (const VerbWord& w : kVerbs) {
    if (argv[0] == w.word) {
      args.verb = w.verb;
      i = 1;
    }
  }
  if (args.verb == Verb::kHelp) return args;
  std::vector<std::string> positional;
  Raw raw;
  for (; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--") {
      if (args.verb != Verb::kRun && args.verb != Verb::kSubmit) {
        return Usage(absl::StrCat("cdeploy ", VerbName(args.verb), " takes no program arguments"));
      }
      args.program_args.assign(argv.begin() + i + 1, argv.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    size_t eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    const OptionSpec* spec = FindOption(name);
    if (spec == nullptr) return Usage(absl::StrCat("unknown option ", name));
    if (!spec->takes_value && eq != std::string::npos) return Usage(absl::StrCat(name, " takes no value"));
    if (name == "--help" || name == "-h" || name == "--version") {
      args.verb = name == "--version" ? Verb::kVersion : Verb::kHelp;
      return args;
    }
    if ((spec->verbs & Bit(args.verb)) == 0) {
      return Usage(absl::StrCat(name, " is not an option of cdeploy ", VerbName(args.verb)));
    }
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (spec->takes_value) {  // --name VALUE: the next argument, whatever it looks like, but not "--"
      if (i + 1 >= argv.size() || argv[i + 1] == "--") {
        return Usage(absl::StrCat(name, " needs a value: ", name, "=VALUE or ", name, " VALUE"));
      }
      value = argv[++i];
    }
    absl::Status applied = Apply(*spec, value, args, raw);
    if (!applied.ok()) return applied;
  }
  if (args.tls.insecure && !args.tls.bundle_dir.empty()) return Usage("--tls and --insecure exclude each other");
  absl::Status format = ResolveFormat(raw, env, args);
  if (!format.ok()) return format;
  absl::Status positionals = AssignPositionals(positional, env, args);
  if (!positionals.ok()) return positionals;
  return args;
}

}  // namespace constellation::cli
