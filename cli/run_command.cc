#include "cli/run_command.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "cli/event_printer.h"
#include "cli/job_spec.h"
#include "cli/upload_progress.h"
#include "lib/process/output_format.h"

extern char** environ;

namespace constellation::cli {

using internal::kVerboseEnv;
using internal::MakeHumanFormatter;
using internal::MakeJsonFormatter;
using internal::OutputFormat;
using internal::OutputFormatter;
using internal::UseColor;
using internal::VerboseFromEnv;

namespace {

constexpr size_t kStdinChunk = 1 << 20;  // WriteStdin's limit

// Leaves now: the stdin and signal threads may be blocked in read() and
// sigwait(), and nothing they hold needs cleaning up.
[[noreturn]] void Leave(int code) {
  fflush(nullptr);
  _exit(code);
}

// SIGINT and SIGTERM during an attached run, waited for on a thread of its
// own (they are blocked everywhere). Before the job is submitted a signal
// leaves at once (nothing to cancel); while Submit is in flight it is held
// until the job's id is known; after that the first one cancels the job
// (the run keeps printing until the job's last event) and a second leaves.
class Interrupts {
 public:
  explicit Interrupts(JobsClient& client) : client_(client) {
    // Detached: it lives as long as the process, which ends with _exit.
    std::thread([this] { Loop(); }).detach();
  }

  void Submitting() {
    std::lock_guard<std::mutex> lock(mu_);
    phase_ = Phase::kSubmitting;
  }

  // The job exists: cancels it if a signal came while it was submitted.
  void Submitted(const std::string& job) {
    int signal;
    {
      std::lock_guard<std::mutex> lock(mu_);
      phase_ = Phase::kSubmitted;
      job_ = job;
      signal = signal_;
    }
    if (signal != 0) CancelJob(job);
  }

  // The signal that cancelled the job; 0 if none did.
  int signal() const {
    std::lock_guard<std::mutex> lock(mu_);
    return signal_;
  }

 private:
  enum class Phase { kBefore, kSubmitting, kSubmitted };

  void Loop() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    while (true) {
      int signal = 0;
      if (sigwait(&set, &signal) != 0) continue;
      std::string job;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (phase_ == Phase::kBefore) Leave(128 + signal);
        if (signal_ != 0) {
          fprintf(stderr, "cdeploy: interrupted again; leaving%s\n",
                  job_.empty() ? "" : absl::StrCat(" (job ", job_, " is being cancelled)").c_str());
          Leave(128 + signal);
        }
        signal_ = signal;
        if (phase_ == Phase::kSubmitting) continue;  // Submitted() cancels
        job = job_;
      }
      CancelJob(job);
    }
  }

  void CancelJob(const std::string& job) {
    if (isatty(STDERR_FILENO)) fprintf(stderr, "cdeploy: cancelling job %s (again to leave at once)\n", job.c_str());
    absl::StatusOr<v1::Job> cancelled = client_.Cancel(job, absl::ZeroDuration());
    if (!cancelled.ok()) {
      fprintf(stderr, "cdeploy: cannot cancel job %s: %s\n", job.c_str(),
              std::string(cancelled.status().message()).c_str());
    }
  }

  JobsClient& client_;
  mutable std::mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kBefore;
  std::string job_ ABSL_GUARDED_BY(mu_);
  int signal_ ABSL_GUARDED_BY(mu_) = 0;
};

// Copies our stdin to the job's root process once the job runs, in chunks of
// at most 1 MiB, then EOF. Stops quietly when the job no longer takes input.
void ForwardStdin(JobsClient* client, std::string job) {
  std::string buf(kStdinChunk, '\0');
  while (true) {
    ssize_t n = read(STDIN_FILENO, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    bool eof = n <= 0;
    absl::Status written = client->WriteStdin(job, eof ? std::string() : buf.substr(0, n), eof);
    if (!written.ok()) {
      if (!absl::IsFailedPrecondition(written)) {  // the job finished or closed its stdin: nothing to say
        fprintf(stderr, "cdeploy: stdin: %s\n", std::string(written.message()).c_str());
      }
      return;
    }
    if (eof) return;
  }
}

std::unique_ptr<OutputFormatter> MakeFormatter(OutputFormat format) {
  if (format == OutputFormat::kJson) return MakeJsonFormatter(stdout);
  return MakeHumanFormatter(stdout, stderr, UseColor(STDOUT_FILENO), VerboseFromEnv(getenv(kVerboseEnv)));
}

[[noreturn]] void Attach(const Args& args, JobsClient& client, const v1::JobSpec& spec, Interrupts& interrupts) {
  interrupts.Submitting();
  absl::StatusOr<v1::Job> job = client.Submit(spec);
  if (!job.ok()) {
    Leave(Fail(absl::IsResourceExhausted(job.status())
                   ? absl::StrCat("cannot start the program: ", job.status().message())
                   : std::string(job.status().message())));
  }
  interrupts.Submitted(job->id());

  std::unique_ptr<OutputFormatter> out = MakeFormatter(args.output);
  EventPrinter printer(out.get(), stderr);
  bool forwarding = false;
  absl::Status watched = client.Watch(job->id(), 0, /*follow=*/true, [&](const v1::JobEvent& event) {
    printer.Print(event);
    if (printer.ran() && !forwarding && spec.attach_stdin()) {
      forwarding = true;
      std::thread(ForwardStdin, &client, job->id()).detach();  // may block in read() until we _exit
    }
  });
  out->Flush();
  fflush(stdout);
  if (!watched.ok()) {
    Leave(Fail(
        absl::StrCat("lost the master at ", args.addr, " while following job ", job->id(), ": ", watched.message())));
  }
  std::optional<v1::StateChange> final = printer.last_state();
  bool ran = printer.ran();
  if (!final.has_value() || !IsFinished(final->state())) {
    absl::StatusOr<v1::Job> now = client.Get(job->id());  // the stream ended without the last state
    if (!now.ok()) Leave(Fail(std::string(now.status().message())));
    final.emplace();
    final->set_state(now->state());
    final->set_reason(now->reason());
    final->set_exit_code(now->exit_code());
    ran = ran || now->started_ms() != 0;
  }
  Exit exit = ExitOf(job->id(), *final, ran, interrupts.signal());
  if (!exit.error.empty()) fprintf(stderr, "cdeploy: %s\n", exit.error.c_str());
  Leave(exit.code);
}

}  // namespace

int Fail(const std::string& message) {
  fflush(stdout);
  fprintf(stderr, "cdeploy: %s\n", message.c_str());
  return kCdeployError;
}

int RunOrSubmit(const Args& args, JobsClient& client, const std::string& binary, const v1::BinaryRef& ref) {
  // Attached, signals are waited for from the start (a Ctrl-C during the
  // upload leaves at once), and every way out is Leave(): the signal thread
  // may use `client` until the process is gone. Never freed, for that thread.
  Interrupts* interrupts = args.detach ? nullptr : new Interrupts(client);
  // JSON output is for programs: off a terminal, stderr keeps to errors there.
  bool terminal = isatty(STDERR_FILENO) == 1;
  UploadProgress progress(stderr, terminal);
  JobsClient::Progress report = nullptr;
  if (terminal || args.output != OutputFormat::kJson) {
    report = [&progress](uint64_t sent, uint64_t total) { progress.Update(sent, total); };
  }
  if (absl::Status uploaded = client.EnsureUploaded(binary, ref, report); !uploaded.ok()) {
    int code = Fail(std::string(uploaded.message()));
    if (interrupts != nullptr) Leave(code);
    return code;
  }
  v1::JobSpec spec = MakeJobSpec(args, binary, ref, environ, NewRequestId());
  if (interrupts != nullptr) Attach(args, client, spec, *interrupts);
  absl::StatusOr<v1::Job> job = client.Submit(spec);
  if (!job.ok()) return Fail(std::string(job.status().message()));
  printf("%s\n", job->id().c_str());
  return 0;
}

}  // namespace constellation::cli
