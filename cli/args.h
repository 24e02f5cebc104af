#pragma once

// cdeploy's command line: which subcommand, against which master, with which
// options. Pure parsing with no I/O: the environment variables it reads come
// in as values, so every rule is tested without a process.
//
//   cdeploy [ADDR] BINARY|//label [options] [-- args]      attached run
//   cdeploy submit [ADDR] [--detach] ... BINARY [-- args]
//   cdeploy list|nodes [ADDR] [options]
//   cdeploy status|logs|cancel|delete [ADDR] JOB [options]
//
// The first argument being a subcommand word selects the subcommand; else it
// is the attached run. ADDR (host:port) may be left out when
// $CONSTELLATION_MASTER names the master. Options may stand anywhere before
// "--"; an option another subcommand takes is an error that says so. An
// option's value follows it as "--name=VALUE" or as the next argument
// ("--name VALUE").

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/env_filter.h"
#include "daemon/security/credentials.h"
#include "lib/process/output_format.h"
#include "proto/jobs.pb.h"

namespace constellation::cli {

enum class Verb { kHelp, kVersion, kRun, kSubmit, kList, kStatus, kLogs, kCancel, kDelete, kNodes };

// How list, status and nodes print: a table for people, or one JSON object a
// line. kAuto: a table when stdout is a terminal (nodes) or always (list,
// status), unless $CONSTELLATION_FORMAT=json.
enum class ListingFormat { kAuto, kTable, kJson };

struct Args {
  Verb verb = Verb::kHelp;
  std::string addr;  // the master's Jobs service, host:port
  daemon::security::TlsFlags tls;

  // run, submit
  std::string binary;     // a path, or a validated Bazel label
  std::string workspace;  // --workspace: where a label is built ("": found, cli/workspace.h)
  std::vector<std::string> program_args;
  EnvPolicy env;
  bool detach = false;
  absl::Duration ttl = absl::ZeroDuration();  // 0: the master's default
  absl::Duration reconnect_timeout = absl::Seconds(60);
  // submit: the job's labels; list: every one must match.
  std::map<std::string, std::string> labels;

  // run, submit, logs: how process events print.
  internal::OutputFormat output = internal::OutputFormat::kHuman;
  // list, status, nodes
  ListingFormat listing = ListingFormat::kAuto;

  // list
  std::vector<v1::JobState> states;
  // status, logs, cancel, delete
  std::string job;
  // logs
  bool follow = false;
  uint64_t from_seq = 0;
  // cancel: SIGTERM, then SIGKILL after this long.
  absl::Duration grace = absl::Seconds(10);
};

// What ParseArgs reads from the environment ("" when unset).
struct ArgsEnv {
  std::string master;  // $CONSTELLATION_MASTER
  std::string format;  // $CONSTELLATION_FORMAT
};

// `argv` without the program name. An error (InvalidArgument) is one line
// that says what is wrong.
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv, const ArgsEnv& env);

// "run", "submit", ...: the word on the command line.
const char* VerbName(Verb verb);

// The --help text.
extern const char kUsage[];

// The --version line.
extern const char kVersion[];

}  // namespace constellation::cli
