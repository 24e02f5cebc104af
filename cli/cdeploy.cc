// cdeploy: runs Constellation programs as jobs on a cluster, through the
// master's job API (constellation.v1.Jobs, proto/jobs.proto). `cdeploy --help`
// (cli/args.cc) lists the commands; docs/jobs.md explains them.
//
// This file only wires the parts together: the command line (args.h), the TLS
// bundle, the label build, the client (jobs_client.h) and the commands
// (run_command.h, job_commands.h).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/bazel_build.h"
#include "cli/job_commands.h"
#include "cli/jobs_client.h"
#include "cli/run_command.h"
#include "cli/workspace.h"
#include "daemon/security/credentials.h"

namespace constellation::cli {
namespace {

// How long cdeploy waits for the first connection to the master.
constexpr absl::Duration kConnectTimeout = absl::Seconds(5);

std::string Env(const char* name) {
  const char* value = getenv(name);
  return value == nullptr ? "" : value;
}

// Where the client bundle is when --tls does not say: $CONSTELLATION_TLS, then
// ~/.config/constellation/tls.
std::string DefaultBundleDir() {
  std::string env = Env("CONSTELLATION_TLS");
  if (!env.empty()) return env;
  return Env("HOME") + "/.config/constellation/tls";
}

std::string CurrentDirectory() {
  char buf[PATH_MAX];
  return getcwd(buf, sizeof(buf)) == nullptr ? "/" : buf;
}

// The executable to upload: `binary` itself, or what bazel built for it in
// the workspace cli/workspace.h finds. Under `bazel run` cdeploy runs in its
// runfiles; a relative path or --workspace means the directory bazel run was
// started in ($BUILD_WORKING_DIRECTORY).
absl::StatusOr<std::string> ResolveBinary(const Args& args) {
  const std::string& binary = args.binary;
  std::string started_in = Env("BUILD_WORKING_DIRECTORY");  // under bazel run
  std::string path = binary;
  if (!started_in.empty() && !LooksLikeLabel(binary) && !binary.empty() && binary[0] != '/') {
    path = started_in + "/" + binary;
  }
  if (LooksLikeLabel(binary)) {
    std::string cwd = started_in.empty() ? CurrentDirectory() : started_in;
    absl::StatusOr<std::string> workspace = FindWorkspace(args.workspace, Env("BUILD_WORKSPACE_DIRECTORY"), cwd);
    if (!workspace.ok()) return workspace.status();
    fprintf(stderr, "cdeploy: building %s in %s\n", binary.c_str(), workspace->c_str());
    absl::StatusOr<std::string> built = BuildLabel(binary, *workspace);
    if (absl::IsInvalidArgument(built.status())) return built.status();
    if (!built.ok()) {
      return absl::FailedPreconditionError("cannot build " + binary + ": " + std::string(built.status().message()));
    }
    path = *built;
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || access(path.c_str(), X_OK) != 0) {
    return absl::InvalidArgumentError(path + " is not an executable file");
  }
  return path;
}

int Dispatch(const Args& args, JobsClient& client, const std::string& binary, const v1::BinaryRef& ref) {
  switch (args.verb) {
    case Verb::kRun:
    case Verb::kSubmit:
      return RunOrSubmit(args, client, binary, ref);
    case Verb::kList:
      return ListJobs(args, client);
    case Verb::kStatus:
      return JobStatus(args, client);
    case Verb::kLogs:
      return JobLogs(args, client);
    case Verb::kCancel:
      return CancelJob(args, client);
    case Verb::kDelete:
      return DeleteJob(args, client);
    case Verb::kNodes:
      return ListNodes(args, client);
    case Verb::kHelp:
    case Verb::kVersion:
      break;
  }
  return kCdeployError;
}

int Main(int argc, char** argv) {
  absl::StatusOr<Args> args = ParseArgs(std::vector<std::string>(argv + 1, argv + argc),
                                        {Env("CONSTELLATION_MASTER"), Env("CONSTELLATION_FORMAT")});
  if (!args.ok()) return Fail(std::string(args.status().message()));
  if (args->verb == Verb::kHelp) {
    fputs(kUsage, stdout);
    return 0;
  }
  if (args->verb == Verb::kVersion) {
    puts(kVersion);
    return 0;
  }
  absl::StatusOr<daemon::security::Credentials> credentials = daemon::security::LoadForRole(
      args->tls, DefaultBundleDir(), {daemon::security::Role::kClient, daemon::security::Role::kAdmin}, "cdeploy");
  if (!credentials.ok()) return Fail(std::string(credentials.status().message()));
  if (credentials->insecure()) fprintf(stderr, "%s\n", daemon::security::InsecureWarning("cdeploy").c_str());

  bool attached = args->verb == Verb::kRun || (args->verb == Verb::kSubmit && !args->detach);
  if (attached) {  // before any thread exists, gRPC's included: run_command.h waits for them
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }
  signal(SIGPIPE, SIG_IGN);

  std::string binary;
  if (args->verb == Verb::kRun || args->verb == Verb::kSubmit) {
    absl::StatusOr<std::string> resolved = ResolveBinary(*args);
    if (!resolved.ok()) return Fail(std::string(resolved.status().message()));
    binary = *resolved;
  }

  std::shared_ptr<grpc::Channel> channel = JobsClient::MakeChannel(args->addr, credentials->ChannelCredentials());
  // gRPC's threads connect (TCP, then the TLS handshake) while this one
  // hashes the binary (14 ms for 20 MiB here); they ran one after the other.
  // A Ctrl-C meanwhile stays pending (blocked above) and is acted on once
  // RunOrSubmit's signal thread starts, before the upload.
  channel->GetState(/*try_to_connect=*/true);
  v1::BinaryRef ref;
  if (!binary.empty()) {
    absl::StatusOr<v1::BinaryRef> described = JobsClient::Describe(binary);
    if (!described.ok()) return Fail(std::string(described.status().message()));
    ref = *std::move(described);
  }
  absl::Status connected = JobsClient::WaitConnected(*channel, args->addr, kConnectTimeout, !credentials->insecure());
  if (!connected.ok()) return Fail(std::string(connected.message()));
  JobsClient::Options options;
  options.reconnect_timeout = args->reconnect_timeout;
  if (isatty(STDERR_FILENO)) {
    std::string addr = args->addr;
    absl::Duration budget = args->reconnect_timeout;
    options.on_reconnecting = [addr, budget](const absl::Status& status) {
      fprintf(stderr, "cdeploy: lost the master at %s (%s); reconnecting for up to %s\n", addr.c_str(),
              std::string(status.message()).c_str(), absl::FormatDuration(budget).c_str());
    };
  }
  JobsClient client(channel, options);
  return Dispatch(*args, client, binary, ref);
}

}  // namespace
}  // namespace constellation::cli

int main(int argc, char** argv) { return constellation::cli::Main(argc, argv); }
