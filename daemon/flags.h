#pragma once
// The daemon's command line: every flag (ABSL_FLAG, defined in flags.cc, the
// one place to add one), the usage text, and the parser.
//
// Flags are written --name=value or --name value (a boolean: --name, or
// --name=true|false); a dash in a name is an underscore in its ABSL_FLAG
// (--cache-dir is FLAGS_cache_dir). Anything not starting with "-" is a
// positional argument; after "--" everything is. Read a flag with
// absl::GetFlag(FLAGS_name) after ParseCommandLine() succeeded.
//
// Threading: ParseCommandLine() once, in main(), before other threads start.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/log/log.h"

namespace constellation::daemon {

// A size such as "512 MiB" (parse_mem's syntax).
struct ByteSize {
  uint64_t bytes = 0;
};
bool AbslParseFlag(absl::string_view text, ByteSize* size, std::string* error);
std::string AbslUnparseFlag(ByteSize size);

// A finite duration of 0 or more, such as "60s", "500ms", "2m" or 0.
struct GraceDuration {
  absl::Duration value;
};
bool AbslParseFlag(absl::string_view text, GraceDuration* duration, std::string* error);
std::string AbslUnparseFlag(GraceDuration duration);

// A duration from 1s to 1h.
struct PeerTimeout {
  absl::Duration value;
};
bool AbslParseFlag(absl::string_view text, PeerTimeout* timeout, std::string* error);
std::string AbslUnparseFlag(PeerTimeout timeout);

// A directory that, when given, is not "" (unset: the program's default).
struct Directory {
  std::string path;
};
bool AbslParseFlag(absl::string_view text, Directory* directory, std::string* error);
std::string AbslUnparseFlag(const Directory& directory);

// A host:port (ValidateHostPort's rules), or "" when not given.
struct HostPort {
  std::string value;
};
bool AbslParseFlag(absl::string_view text, HostPort* address, std::string* error);
std::string AbslUnparseFlag(const HostPort& address);

// --mem: a size over 0; not given: detected.
struct MemOffer {
  std::optional<uint64_t> bytes;
};
bool AbslParseFlag(absl::string_view text, MemOffer* mem, std::string* error);
std::string AbslUnparseFlag(const MemOffer& mem);

// --cpu: cores from 0.01 to 4096; not given: detected.
struct CpuOffer {
  std::optional<double> cores;
};
bool AbslParseFlag(absl::string_view text, CpuOffer* cpu, std::string* error);
std::string AbslUnparseFlag(const CpuOffer& cpu);

struct CommandLine {
  enum class Action { kRun, kHelp, kVersion };
  Action action = Action::kRun;
  std::vector<std::string> positional;
};

// Sets the flags from `args` (argv without the program name). The error's
// message is the one line to print before the usage (exit code 2): an unknown
// option, a missing or bad value, naming the flag.
absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args);

// --help's text, and --version's line.
absl::string_view UsageText();
absl::string_view VersionText();

}  // namespace constellation::daemon

ABSL_DECLARE_FLAG(std::string, tls);
ABSL_DECLARE_FLAG(bool, insecure);
ABSL_DECLARE_FLAG(std::string, cache_dir);
ABSL_DECLARE_FLAG(constellation::daemon::ByteSize, max_binary_size);
ABSL_DECLARE_FLAG(constellation::daemon::Directory, state_dir);
ABSL_DECLARE_FLAG(constellation::daemon::ByteSize, event_buffer);
ABSL_DECLARE_FLAG(constellation::daemon::GraceDuration, master_grace);
ABSL_DECLARE_FLAG(constellation::daemon::PeerTimeout, peer_timeout);
ABSL_DECLARE_FLAG(std::string, run_as);
ABSL_DECLARE_FLAG(constellation::daemon::HostPort, join);
ABSL_DECLARE_FLAG(constellation::daemon::HostPort, advertise);
ABSL_DECLARE_FLAG(constellation::daemon::MemOffer, mem);
ABSL_DECLARE_FLAG(constellation::daemon::CpuOffer, cpu);
ABSL_DECLARE_FLAG(constellation::daemon::LogFormat, log_format);
ABSL_DECLARE_FLAG(constellation::daemon::GraceDuration, drain_timeout);
ABSL_DECLARE_FLAG(constellation::daemon::HostPort, metrics);
