// cdeploy: runs a Constellation program on a cluster.
//
//   cdeploy <bridge-addr> <binary | bazel-label> [--format=json] [--env=NAME]... [--env-all] [-- args...]
//
// Builds the label with bazel if given one, uploads the binary to the bridge
// (once: it is cached by its SHA-256), forwards stdin to the root process,
// prints every process's output exactly as local mode does, and exits with the
// bridge's exit code. Ctrl-C kills the whole deployment on the cluster.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cli/bazel_build.h"
#include "cli/env_filter.h"
#include "daemon/binary_cache.h"
#include "daemon/security/credentials.h"
#include "grpcpp/grpcpp.h"
#include "lib/process/output_format.h"
#include "lib/process/proto_convert.h"
#include "proto/cluster.grpc.pb.h"

extern char** environ;

namespace constellation::cli {
namespace {

constexpr char kUsage[] = R"(usage: cdeploy <bridge-addr> <binary | bazel-label> [options] [-- args...]

Runs a Constellation program on the cluster whose bridge listens at <bridge-addr>.
A bazel label (//pkg:target) is built first. Output is printed as local mode prints it;
the exit code is the program's. Ctrl-C kills the deployment.

options:
  --format=human|json  how output is printed (default: $CONSTELLATION_FORMAT, else human)
  --tls=DIR            your TLS bundle (ca.pem, cert.pem, key.pem from `constellation ca issue
                       --role=client`); default $CONSTELLATION_TLS, else ~/.config/constellation/tls
  --insecure           no TLS: for a cluster whose daemons run with --insecure
  --env=NAME           also forward the environment variable NAME (repeatable)
  --env-all            forward every environment variable
  --help               this text

The program gets PATH, LANG, LC_*, TZ and CONSTELLATION_* from cdeploy's environment,
and the variables named with --env; nothing else unless --env-all.
)";

// Exit codes of cdeploy's own failures (a program's own codes pass through).
constexpr int kUsageOrSetupError = 2;

int Fail(const std::string& message) {
  fprintf(stderr, "cdeploy: %s\n", message.c_str());
  return kUsageOrSetupError;
}

void Progress(uint64_t sent, uint64_t total) {
  if (!isatty(STDERR_FILENO)) return;
  int width = 40;
  int done = total == 0 ? width : static_cast<int>(width * sent / total);
  fprintf(stderr, "\r  uploading [%s%s] %3d%%", std::string(done, '#').c_str(), std::string(width - done, ' ').c_str(),
          total == 0 ? 100 : static_cast<int>(100 * sent / total));
  if (sent == total) fputs("\n", stderr);
}

using Stream = grpc::ClientReaderWriter<pb::DeployRequest, pb::DeployEvent>;

bool SendBinary(Stream& stream, const std::string& path, uint64_t size) {
  FILE* file = fopen(path.c_str(), "rb");
  if (file == nullptr) return false;
  std::string buf(1 << 20, '\0');
  uint64_t sent = 0;
  size_t n;
  bool ok = true;
  while (ok && (n = fread(buf.data(), 1, buf.size(), file)) > 0) {
    pb::DeployRequest chunk;
    chunk.set_binary_chunk(buf.data(), n);
    ok = stream.Write(chunk);
    sent += n;
    Progress(sent, size);
  }
  fclose(file);
  return ok && sent == size;
}

void ForwardStdin(Stream* stream) {
  char buf[65536];
  ssize_t n;
  while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0) {
    pb::DeployRequest data;
    data.set_stdin_data(buf, n);
    if (!stream->Write(data)) return;
  }
  pb::DeployRequest eof;
  eof.set_stdin_eof(true);
  stream->Write(eof);
  stream->WritesDone();
}

// Where the client bundle is when --tls does not say: $CONSTELLATION_TLS, then
// ~/.config/constellation/tls.
std::string DefaultBundleDir() {
  const char* env = getenv("CONSTELLATION_TLS");
  if (env != nullptr && *env != '\0') return env;
  const char* home = getenv("HOME");
  return std::string(home != nullptr ? home : "") + "/.config/constellation/tls";
}

int Deploy(const std::string& bridge, const std::string& binary, const std::vector<std::string>& args,
           OutputFormat format, const EnvPolicy& env, const daemon::security::Credentials& credentials) {
  struct stat st;
  if (stat(binary.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || access(binary.c_str(), X_OK) != 0) {
    return Fail(binary + " is not an executable file");
  }
  absl::StatusOr<std::string> sha = daemon::Sha256OfFile(binary);
  if (!sha.ok()) return Fail(std::string(sha.status().message()));

  auto channel = grpc::CreateChannel(bridge, credentials.ChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
    return Fail("cannot reach the bridge at " + bridge +
                (credentials.insecure() ? "" : " (or the TLS handshake failed: is it the cluster of your bundle?)"));
  }
  auto stub = pb::Bridge::NewStub(channel);
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub->Deploy(&context);

  // Ctrl-C / SIGTERM: cancel the call; the bridge kills the deployment.
  static grpc::ClientContext* cancel_target = &context;
  std::thread([] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int signal = 0;
    sigwait(&set, &signal);
    cancel_target->TryCancel();
  }).detach();

  pb::DeployRequest start;
  pb::DeployStart* s = start.mutable_start();
  s->mutable_binary()->set_sha256(*sha);
  s->mutable_binary()->set_size(st.st_size);
  s->add_argv(binary.substr(binary.rfind('/') + 1));
  for (const std::string& arg : args) s->add_argv(arg);
  for (const std::string& e : ForwardedEnvironment(environ, env)) s->add_env(e);
  if (!stream->Write(start)) return Fail("lost the bridge at " + bridge);

  std::unique_ptr<OutputFormatter> out =
      format == OutputFormat::kJson
          ? MakeJsonFormatter(stdout)
          : MakeHumanFormatter(stdout, stderr, isatty(STDOUT_FILENO) == 1, VerboseFromEnv(getenv(kVerboseEnv)));
  pb::DeployEvent event;
  while (stream->Read(&event)) {
    if (event.has_need_binary()) {
      if (!SendBinary(*stream, binary, st.st_size)) return Fail("upload failed");
    } else if (event.has_started()) {
      std::thread(ForwardStdin, stream.get()).detach();
    } else if (event.has_error()) {
      return Fail(event.error());
    } else if (event.has_exit_code()) {
      out->Flush();
      fflush(nullptr);
      _exit(event.exit_code());  // the stdin thread may be blocked in read()
    } else if (event.has_event()) {
      const pb::ProcessEvent& e = event.event();
      absl::StatusOr<Pid> pid = FromProto(e.pid());
      if (!pid.ok()) continue;
      if (e.has_spawn()) {
        absl::StatusOr<Pid> child = FromProto(e.spawn().child());
        if (child.ok()) out->Spawn(*pid, *child);
      } else if (e.has_output()) {
        if (e.output().eof()) {
          out->Eof(*pid, e.output().fd());
        } else {
          out->Output(*pid, e.output().fd(), e.output().data());
        }
      } else if (e.has_exit()) {
        out->Exit(*pid, e.exit());
      }
      out->Flush();
    }
  }
  out->Flush();
  grpc::Status status = stream->Finish();
  if (status.error_code() == grpc::StatusCode::CANCELLED) {
    fprintf(stderr, "cdeploy: interrupted; the deployment was killed\n");
    fflush(nullptr);
    _exit(130);
  }
  fflush(nullptr);
  fprintf(stderr, "cdeploy: lost the bridge at %s: %s\n", bridge.c_str(), status.error_message().c_str());
  _exit(kUsageOrSetupError);
}

}  // namespace
}  // namespace constellation::cli

int main(int argc, char** argv) {
  using namespace constellation;
  using namespace constellation::cli;
  std::vector<std::string> positional, program_args;
  daemon::security::TlsFlags tls;
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(getenv("CONSTELLATION_FORMAT"));
  EnvPolicy env;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      program_args.assign(argv + i + 1, argv + argc);
      break;
    }
    if (arg == "--help" || arg == "-h") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (arg.rfind("--format=", 0) == 0) {
      format = ParseOutputFormat(arg.c_str() + 9);
    } else if (arg.rfind("--tls=", 0) == 0) {
      tls.bundle_dir = arg.substr(6);
    } else if (arg == "--insecure") {
      tls.insecure = true;
    } else if (arg.rfind("--env=", 0) == 0) {
      absl::Status valid = ValidateEnvName(arg.substr(6));
      if (!valid.ok()) return Fail(std::string(valid.message()));
      env.names.push_back(arg.substr(6));
    } else if (arg == "--env-all") {
      env.all = true;
    } else if (arg.rfind("-", 0) == 0) {
      fprintf(stderr, "cdeploy: unknown option %s\n\n%s", arg.c_str(), kUsage);
      return kUsageOrSetupError;
    } else {
      positional.push_back(arg);
    }
  }
  if (!format.ok()) return Fail(std::string(format.status().message()));
  if (positional.size() != 2) {
    fprintf(stderr, "cdeploy: expected <bridge-addr> and <binary | bazel-label>\n\n%s", kUsage);
    return kUsageOrSetupError;
  }
  if (tls.insecure && !tls.bundle_dir.empty()) return Fail("--tls and --insecure exclude each other");
  std::string binary = positional[1];
  if (LooksLikeLabel(binary)) {  // refused before anything else happens
    absl::Status label = ValidateLabel(binary);
    if (!label.ok()) return Fail(std::string(label.message()));
  }
  absl::StatusOr<daemon::security::Credentials> credentials = daemon::security::LoadForRole(
      tls, DefaultBundleDir(), {daemon::security::Role::kClient, daemon::security::Role::kAdmin}, "cdeploy");
  if (!credentials.ok()) return Fail(std::string(credentials.status().message()));
  if (credentials->insecure()) fprintf(stderr, "%s\n", daemon::security::InsecureWarning("cdeploy").c_str());
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (LooksLikeLabel(binary)) {
    absl::StatusOr<std::string> built = BuildLabel(binary);
    if (absl::IsInvalidArgument(built.status())) return Fail(std::string(built.status().message()));
    if (!built.ok()) return Fail("cannot build " + positional[1] + ": " + std::string(built.status().message()));
    binary = *built;
  }
  return Deploy(positional[0], binary, program_args, *format, env, *credentials);
}
