#include "cli/listing.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/process/proto_convert.h"

namespace constellation::cli {

using internal::ToProto;

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::TimeZone kUtc = absl::UTCTimeZone();
constexpr int64_t kNoon = 1714651200000;  // 2024-05-02 12:00:00 UTC

v1::Job MakeJob(std::string id, std::string name, v1::JobState state, int code, int64_t started) {
  v1::Job job;
  job.set_id(id);
  job.mutable_spec()->set_name(name);
  job.set_state(state);
  job.set_exit_code(code);
  job.set_created_ms(kNoon);
  job.set_started_ms(started);
  return job;
}

TEST(JobsTable, OneRowPerJob) {
  v1::Job a = MakeJob("12", "fibonacci", v1::JOB_STATE_SUCCEEDED, 0, kNoon + 1);
  (*a.mutable_spec()->mutable_labels())["team"] = "ml";
  (*a.mutable_spec()->mutable_labels())["run"] = "7";
  v1::Job b = MakeJob("9", "hello", v1::JOB_STATE_RUNNING, 0, kNoon + 1);
  v1::Job c = MakeJob("3", "big", v1::JOB_STATE_FAILED, 0, 0);
  EXPECT_EQ(JobsTable({a, b, c}, kUtc),
            "JOB  NAME       STATE      EXIT  CREATED              LABELS\n"
            " 12  fibonacci  succeeded     0  2024-05-02 12:00:00  run=7,team=ml\n"
            "  9  hello      running          2024-05-02 12:00:00\n"
            "  3  big        failed        -  2024-05-02 12:00:00\n");
}

TEST(JobDetails, KeysValuesAndProcesses) {
  v1::Job job = MakeJob("12", "fibonacci", v1::JOB_STATE_FAILED, 3, kNoon + 1000);
  job.set_reason("exit code 3");
  job.set_owner("spiffe://constellation/client/ann");
  job.set_finished_ms(kNoon + 2000);
  job.set_last_seq(42);
  v1::JobProcess* p = job.add_processes();
  Pid pid = Pid::FromIpv4(0x7f000001, 40000, 7);
  *p->mutable_pid() = ToProto(pid);
  p->set_node("127.0.0.1:9001");
  p->mutable_resources()->set_mem(100 << 20);
  p->mutable_resources()->set_cpu(0.0625);
  p->set_state(v1::PROCESS_STATE_EXITED);
  p->mutable_exit()->set_code(3);
  std::string text = JobDetails(job, kUtc);
  EXPECT_THAT(text, HasSubstr("job:      12\n"));
  EXPECT_THAT(text, HasSubstr("state:    failed (exit code 3)\n"));
  EXPECT_THAT(text, HasSubstr("reason:   exit code 3\n"));
  EXPECT_THAT(text, HasSubstr("owner:    spiffe://constellation/client/ann\n"));
  EXPECT_THAT(text, HasSubstr("started:  2024-05-02 12:00:01\n"));
  EXPECT_THAT(text, HasSubstr("finished: 2024-05-02 12:00:02\n"));
  EXPECT_THAT(text, HasSubstr("events:   42\n"));
  EXPECT_THAT(text, Not(HasSubstr("labels:"))) << "empty values are left out";
  EXPECT_THAT(text, HasSubstr("processes:\n  PID      NODE            STATE   EXIT       MEM      CPU\n  " +
                              pid.to_string() + "  127.0.0.1:9001  exited  exited: 3  100 MiB  0.0625\n"));
}

TEST(JobDetails, HostileTextIsMadePrintable) {
  v1::Job job = MakeJob("1", "x\x1b]0;owned\x07", v1::JOB_STATE_PENDING, 0, 0);
  EXPECT_THAT(JobDetails(job, kUtc), HasSubstr("name:     x?]0;owned?\n"));
}

TEST(NodesTable, CapacityFreeAndProcesses) {
  v1::NodeInfo n;
  n.set_addr("127.0.0.1:9001");
  n.set_state("up");
  n.mutable_capacity()->set_mem(2ull << 30);
  n.mutable_capacity()->set_cpu(2);
  n.mutable_free()->set_mem(1536ull << 20);
  n.mutable_free()->set_cpu(1.875);
  n.set_processes(2);
  n.set_source("config");
  v1::NodeInfo lost;
  lost.set_addr("10.0.0.3:9999");
  lost.set_state("lost");
  lost.set_source("joined");
  EXPECT_EQ(NodesTable({n, lost}),
            "NODE            SOURCE  STATE    MEM  CPU  FREE MEM  FREE CPU  PROCESSES\n"
            "127.0.0.1:9001  config  up     2 GiB    2   1.5 GiB     1.875          2\n"
            "10.0.0.3:9999   joined  lost     0 B    0       0 B         0          0\n");
}

TEST(JsonLine, ProtoFieldNamesEveryFieldOneLine) {
  v1::Job job = MakeJob("12", "fib", v1::JOB_STATE_RUNNING, 0, kNoon);
  std::string json = JsonLine(job);
  EXPECT_EQ(json.find('\n'), json.size() - 1);
  EXPECT_THAT(json, HasSubstr("\"id\":\"12\""));
  EXPECT_THAT(json, HasSubstr("\"state\":\"JOB_STATE_RUNNING\""));
  EXPECT_THAT(json, HasSubstr("\"exit_code\":0"));
  EXPECT_THAT(json, HasSubstr("\"started_ms\":\"1714651200000\""));
}

TEST(FormatMillis, ZeroIsNotYet) {
  EXPECT_EQ(FormatMillis(0, kUtc), "");
  EXPECT_EQ(FormatMillis(kNoon, kUtc), "2024-05-02 12:00:00");
}

}  // namespace
}  // namespace constellation::cli
