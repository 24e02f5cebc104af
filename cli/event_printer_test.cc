#include "cli/event_printer.h"

#include <csignal>
#include <cstdio>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/process/proto_convert.h"

namespace constellation::cli {

using internal::MakeHumanFormatter;
using internal::MakeJsonFormatter;
using internal::OutputFormatter;
using internal::ToProto;

namespace {

using ::testing::HasSubstr;

// A stream in memory (open_memstream): what a FILE* got.
class Captured {
 public:
  Captured() : file_(open_memstream(&data_, &size_)) {}
  ~Captured() {
    fclose(file_);
    free(data_);
  }
  FILE* file() { return file_; }
  std::string text() {
    fflush(file_);
    return std::string(data_, size_);
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  FILE* file_;
};

const Pid kRoot = Pid::FromIpv4(0x7f000001, 40000, 0xabc);
const Pid kChild = Pid::FromIpv4(0x7f000001, 40001, 0xdef);

v1::JobEvent State(uint64_t seq, v1::JobState state, int code = 0, std::string reason = "") {
  v1::JobEvent e;
  e.set_seq(seq);
  e.mutable_state()->set_state(state);
  e.mutable_state()->set_exit_code(code);
  e.mutable_state()->set_reason(reason);
  return e;
}

v1::JobEvent Output(uint64_t seq, const Pid& pid, int fd, std::string data) {
  v1::JobEvent e;
  e.set_seq(seq);
  *e.mutable_process()->mutable_pid() = ToProto(pid);
  e.mutable_process()->mutable_output()->set_fd(fd);
  e.mutable_process()->mutable_output()->set_data(data);
  return e;
}

v1::JobEvent Spawn(uint64_t seq, const Pid& parent, const Pid& child) {
  v1::JobEvent e;
  e.set_seq(seq);
  *e.mutable_process()->mutable_pid() = ToProto(parent);
  *e.mutable_process()->mutable_spawn()->mutable_child() = ToProto(child);
  return e;
}

v1::JobEvent ExitCode(uint64_t seq, const Pid& pid, int code) {
  v1::JobEvent e;
  e.set_seq(seq);
  *e.mutable_process()->mutable_pid() = ToProto(pid);
  e.mutable_process()->mutable_exit()->set_code(code);
  return e;
}

// The same events through local mode's formatter directly and through the
// printer give the same bytes: cdeploy prints what local mode prints.
TEST(EventPrinter, ProcessEventsReachTheFormatterStateEventsDoNot) {
  Captured want_out, want_err, got_out, got_err;
  std::unique_ptr<OutputFormatter> direct = MakeJsonFormatter(want_out.file());
  direct->Spawn(kRoot, kChild);
  direct->Output(kRoot, 1, "hello\n");
  direct->Output(kChild, 2, "oops\n");
  direct->Exit(kChild, [] {
    pb::ExitEvent e;
    e.set_code(3);
    return e;
  }());
  direct->Flush();

  std::unique_ptr<OutputFormatter> json = MakeJsonFormatter(got_out.file());
  EventPrinter printer(json.get(), got_err.file());
  EXPECT_FALSE(printer.ran());
  printer.Print(State(1, v1::JOB_STATE_PENDING));
  printer.Print(State(2, v1::JOB_STATE_RUNNING));
  EXPECT_TRUE(printer.ran());
  printer.Print(Spawn(3, kRoot, kChild));
  printer.Print(Output(4, kRoot, 1, "hello\n"));
  printer.Print(Output(5, kChild, 2, "oops\n"));
  printer.Print(ExitCode(6, kChild, 3));
  printer.Print(State(7, v1::JOB_STATE_FAILED, 3, "exit code 3"));
  EXPECT_EQ(got_out.text(), want_out.text());
  EXPECT_EQ(got_err.text(), "");
  ASSERT_TRUE(printer.last_state().has_value());
  EXPECT_EQ(printer.last_state()->state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(printer.skipped(), 0);
}

TEST(EventPrinter, HumanFormat) {
  Captured out, err;
  std::unique_ptr<OutputFormatter> human = MakeHumanFormatter(out.file(), err.file(), /*color=*/false);
  EventPrinter printer(human.get(), err.file());
  printer.Print(Output(1, kRoot, 1, "hi\n"));
  EXPECT_TRUE(printer.ran()) << "a process event means it ran, state event or not";
  printer.Print(ExitCode(2, kRoot, 0));
  EXPECT_EQ(out.text(), kRoot.to_string() + ":\n   hi\n   exited\n");
}

TEST(EventPrinter, TruncatedIsOneLineOnStderr) {
  Captured out, err;
  std::unique_ptr<OutputFormatter> json = MakeJsonFormatter(out.file());
  EventPrinter printer(json.get(), err.file());
  v1::JobEvent e;
  e.set_seq(9);
  e.mutable_truncated()->set_dropped_bytes(3 * 1024 * 1024);
  e.mutable_truncated()->set_why("the job's log is full (64 MiB)");
  printer.Print(e);
  EXPECT_EQ(out.text(), "");
  EXPECT_EQ(err.text(), "cdeploy: 3 MiB of output were not kept: the job's log is full (64 MiB)\n");
}

TEST(EventPrinter, UnreadablePidsAreSkipped) {
  Captured out, err;
  std::unique_ptr<OutputFormatter> json = MakeJsonFormatter(out.file());
  EventPrinter printer(json.get(), err.file());
  v1::JobEvent e = Output(1, kRoot, 1, "x");
  e.mutable_process()->mutable_pid()->set_addr("short");
  printer.Print(e);
  EXPECT_EQ(out.text(), "");
  EXPECT_EQ(printer.skipped(), 1);
}

v1::StateChange Final(v1::JobState state, int code, std::string reason = "") {
  v1::StateChange s;
  s.set_state(state);
  s.set_exit_code(code);
  s.set_reason(reason);
  return s;
}

TEST(ExitOf, TheProgramsCodePassesThrough) {
  EXPECT_EQ(ExitOf("1", Final(v1::JOB_STATE_SUCCEEDED, 0), true, 0).code, 0);
  Exit failed = ExitOf("1", Final(v1::JOB_STATE_FAILED, 134, "signal SIGABRT"), true, 0);
  EXPECT_EQ(failed.code, 134);
  EXPECT_EQ(failed.error, "") << "the program's own exit lines say it";
}

TEST(ExitOf, FailingToStartIsCdeploysError) {
  Exit e = ExitOf("4", Final(v1::JOB_STATE_FAILED, 0, "needs mem 512 MiB but the largest node has 256 MiB"), false, 0);
  EXPECT_EQ(e.code, 2);
  EXPECT_EQ(e.error, "cannot start the program: needs mem 512 MiB but the largest node has 256 MiB");
  EXPECT_EQ(ExitOf("4", Final(v1::JOB_STATE_FAILED, 1, "cannot start the program: x"), false, 0).error,
            "cannot start the program: x");
}

TEST(ExitOf, Cancelled) {
  Exit mine = ExitOf("5", Final(v1::JOB_STATE_CANCELLED, 137, "cancelled by me"), true, SIGINT);
  EXPECT_EQ(mine.code, 130);
  EXPECT_THAT(mine.error, HasSubstr("interrupted; job 5 was cancelled"));
  Exit theirs = ExitOf("5", Final(v1::JOB_STATE_CANCELLED, 143, "cancelled by spiffe://x/ann"), true, 0);
  EXPECT_EQ(theirs.code, 143);
  EXPECT_EQ(theirs.error, "job 5 was cancelled: cancelled by spiffe://x/ann");
  EXPECT_EQ(ExitOf("5", Final(v1::JOB_STATE_CANCELLED, 0), false, 0).code, 2) << "never 0";
  // The program finished before the cancel took: its own code.
  EXPECT_EQ(ExitOf("5", Final(v1::JOB_STATE_SUCCEEDED, 0), true, SIGTERM).code, 0);
}

TEST(StateName, LowerCaseWords) {
  EXPECT_EQ(StateName(v1::JOB_STATE_RUNNING), "running");
  EXPECT_EQ(StateName(v1::JOB_STATE_CANCELLED), "cancelled");
  EXPECT_EQ(StateName(static_cast<v1::JobState>(77)), "state 77");
  EXPECT_TRUE(IsFinished(v1::JOB_STATE_FAILED));
  EXPECT_FALSE(IsFinished(v1::JOB_STATE_PENDING));
}

}  // namespace
}  // namespace constellation::cli
