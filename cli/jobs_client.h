#pragma once

// A thin client of a master's constellation.v1.Jobs service (proto/jobs.proto)
// for cdeploy: each method is one call of the API, retried while the master
// is away (UNAVAILABLE: restarting, not reachable) for up to
// `reconnect_timeout` without progress, and answered as an absl::Status with
// gRPC's code and the master's message. On top of the plain calls:
//
//   EnsureUploaded  uploads a binary unless the master has it (SHA-256).
//   Watch           streams a job's events and reconnects a broken stream
//                   from the last seq delivered: each event reaches the
//                   callback once, in order.
//
// Submit is safe to retry only with a request_id in the spec (the master
// returns the job the first attempt made); cdeploy always sets one.
//
// Thread-safe (gRPC stubs are): one thread may Cancel or WriteStdin while
// another is in Watch. Time comes from `Options` so tests need no waiting.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"
#include "proto/jobs.grpc.pb.h"

namespace constellation::cli {

class JobsClient {
 public:
  struct Options {
    absl::Duration reconnect_timeout = absl::Seconds(60);
    std::function<absl::Time()> now = [] { return absl::Now(); };
    std::function<void(absl::Duration)> sleep = [](absl::Duration d) { absl::SleepFor(d); };
    // Called when a Watch stream that was delivering breaks and reconnecting
    // begins (once per outage), e.g. to tell the user. May be empty.
    std::function<void(const absl::Status&)> on_reconnecting;
  };

  // A channel to `addr` that retries connecting quickly (100 ms to 1 s
  // between attempts, not gRPC's default of up to two minutes), so that a
  // restarted master is found again within a second.
  static std::shared_ptr<grpc::Channel> MakeChannel(const std::string& addr,
                                                    std::shared_ptr<grpc::ChannelCredentials> credentials);

  // Waits up to `timeout` for `channel` to connect; the error names `addr`
  // (and, with TLS, the handshake as a possible cause).
  static absl::Status WaitConnected(grpc::Channel& channel, const std::string& addr, absl::Duration timeout, bool tls);

  JobsClient(std::shared_ptr<grpc::Channel> channel, Options options);
  JobsClient(const JobsClient&) = delete;
  JobsClient& operator=(const JobsClient&) = delete;

  // sent and total are bytes; called after each chunk.
  using Progress = std::function<void(uint64_t sent, uint64_t total)>;

  // The binary at `path` as the master names it: its size and SHA-256.
  // Needs no master, so a caller can hash while the channel connects.
  static absl::StatusOr<v1::BinaryRef> Describe(const std::string& path);

  // Uploads the binary at `path`, which Describe() gave `ref`, in 1 MiB
  // chunks unless the master has it already.
  absl::Status EnsureUploaded(const std::string& path, const v1::BinaryRef& ref, const Progress& progress);

  absl::StatusOr<v1::Job> Submit(const v1::JobSpec& spec);
  absl::StatusOr<v1::Job> Get(const std::string& job);
  // Every page, newest first.
  absl::StatusOr<std::vector<v1::Job>> List(const v1::ListJobsRequest& filter);
  absl::StatusOr<v1::Job> Cancel(const std::string& job, absl::Duration grace);
  absl::Status Delete(const std::string& job);
  // `data` of at most 1 MiB (the API's limit); `eof` closes the root's stdin after it.
  absl::Status WriteStdin(const std::string& job, const std::string& data, bool eof);
  absl::StatusOr<std::vector<v1::NodeInfo>> ListNodes();

  // Calls `on_event` with each event of `job` after `from_seq`, in order,
  // once each. follow: until the job's last event (the stream ends when the
  // job has finished); else the events stored now. A broken stream is
  // reopened from the last seq delivered; the error after that gives up.
  absl::Status Watch(const std::string& job, uint64_t from_seq, bool follow,
                     const std::function<void(const v1::JobEvent&)>& on_event);

 private:
  // Runs `attempt` until it succeeds, fails for good, or the master has been
  // away for the whole budget.
  absl::Status WithRetry(const std::function<absl::Status()>& attempt);
  void SetDeadline(grpc::ClientContext& context) const;
  absl::Status UploadOnce(const std::string& path, const v1::BinaryRef& ref, const Progress& progress);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Jobs::Stub> stub_;
  Options options_;
};

// A gRPC status as an absl::Status (same code and message).
absl::Status FromGrpc(const grpc::Status& status);

}  // namespace constellation::cli
