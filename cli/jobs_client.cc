#include "cli/jobs_client.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "cli/hash_cache.h"
#include "cli/resume.h"
#include "daemon/binary_cache.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace constellation::cli {
namespace {

constexpr size_t kChunk = 1 << 20;                                   // upload chunks; the API allows 4 MiB
constexpr int kMaxEventMessage = 16 << 20;                           // a JobEvent: an output chunk and its envelope
constexpr absl::Duration kShortestCallDeadline = absl::Seconds(30);  // a unary call to a master that hangs

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::shared_ptr<grpc::Channel> JobsClient::MakeChannel(const std::string& addr,
                                                       std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  // Reconnect soon after the master comes back (attempts 100 ms to 1 s
  // apart). The minimum backoff is left alone: gRPC also takes it as the time
  // one connection attempt may last, and a TLS handshake with a master that
  // is busy recovering can take longer than 100 ms.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(kMaxEventMessage);
  return grpc::CreateCustomChannel(addr, credentials, args);
}

absl::Status JobsClient::WaitConnected(grpc::Channel& channel, const std::string& addr, absl::Duration timeout,
                                       bool tls) {
  if (channel.WaitForConnected(absl::ToChronoTime(absl::Now() + timeout))) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("cannot reach the master at ", addr,
                   tls ? " (or the TLS handshake failed: is it the cluster of your bundle?)" : ""));
}

JobsClient::JobsClient(std::shared_ptr<grpc::Channel> channel, Options options)
    : channel_(std::move(channel)), stub_(v1::Jobs::NewStub(channel_)), options_(std::move(options)) {}

absl::Status JobsClient::WithRetry(const std::function<absl::Status()>& attempt) {
  Retry retry(options_.reconnect_timeout);
  while (true) {
    absl::Status status = attempt();
    if (status.ok()) return status;
    absl::StatusOr<absl::Duration> wait = retry.Failed(options_.now(), status);
    if (!wait.ok()) return wait.status();
    options_.sleep(*wait);
  }
}

void JobsClient::SetDeadline(grpc::ClientContext& context) const {
  context.set_deadline(absl::ToChronoTime(absl::Now() + std::max(options_.reconnect_timeout, kShortestCallDeadline)));
}

absl::StatusOr<v1::BinaryRef> JobsClient::Describe(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return absl::NotFoundError(absl::StrCat(path, ": ", strerror(errno)));
  absl::StatusOr<std::string> sha = CachedSha256OfFile(path);  // unchanged since last time: not read again
  if (!sha.ok()) return sha.status();
  v1::BinaryRef ref;
  ref.set_sha256(*sha);
  ref.set_size(st.st_size);
  return ref;
}

absl::Status JobsClient::EnsureUploaded(const std::string& path, const v1::BinaryRef& ref, const Progress& progress) {
  return WithRetry([&]() -> absl::Status {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::HasBinaryRequest has;
    *has.mutable_binary() = ref;
    v1::HasBinaryResponse present;
    absl::Status asked = FromGrpc(stub_->HasBinary(&context, has, &present));
    if (!asked.ok() || present.present()) return asked;
    return UploadOnce(path, ref, progress);
  });
}

absl::Status JobsClient::UploadOnce(const std::string& path, const v1::BinaryRef& ref, const Progress& progress) {
  FILE* file = fopen(path.c_str(), "rb");
  if (file == nullptr) return absl::NotFoundError(absl::StrCat(path, ": ", strerror(errno)));
  grpc::ClientContext context;  // no deadline: a large binary on a slow link takes what it takes
  v1::UploadBinaryResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::UploadBinaryRequest>> writer = stub_->UploadBinary(&context, &response);
  v1::UploadBinaryRequest first;
  *first.mutable_binary() = ref;
  bool ok = writer->Write(first);
  // One request read into in place, chunk after chunk: no copy, and no fresh
  // 1 MiB buffer (and its page faults) per chunk.
  v1::UploadBinaryRequest chunk;
  std::string& bytes = *chunk.mutable_chunk();
  uint64_t sent = 0;
  while (ok) {
    bytes.resize(kChunk);  // whole again after a short read (capacity is kept)
    size_t n = fread(bytes.data(), 1, kChunk, file);
    if (n == 0) break;
    bytes.resize(n);
    ok = writer->Write(chunk);
    sent += n;
    if (progress) progress(sent, ref.size());
  }
  fclose(file);
  if (ok) writer->WritesDone();
  absl::Status status = FromGrpc(writer->Finish());
  if (status.ok() && sent != ref.size()) {
    return absl::DataLossError(absl::StrCat(path, " changed while it was uploaded"));
  }
  return status;
}

absl::StatusOr<v1::Job> JobsClient::Submit(const v1::JobSpec& spec) {
  v1::SubmitRequest request;
  *request.mutable_spec() = spec;
  v1::Job job;
  absl::Status status = WithRetry([&] {
    grpc::ClientContext context;
    SetDeadline(context);
    return FromGrpc(stub_->Submit(&context, request, &job));
  });
  if (!status.ok()) return status;
  return job;
}

absl::StatusOr<v1::Job> JobsClient::Get(const std::string& id) {
  v1::GetJobRequest request;
  request.set_job(id);
  v1::Job job;
  absl::Status status = WithRetry([&] {
    grpc::ClientContext context;
    SetDeadline(context);
    return FromGrpc(stub_->Get(&context, request, &job));
  });
  if (!status.ok()) return status;
  return job;
}

absl::StatusOr<std::vector<v1::Job>> JobsClient::List(const v1::ListJobsRequest& filter) {
  std::vector<v1::Job> jobs;
  v1::ListJobsRequest request = filter;
  do {
    v1::ListJobsResponse page;
    absl::Status status = WithRetry([&] {
      grpc::ClientContext context;
      SetDeadline(context);
      return FromGrpc(stub_->List(&context, request, &page));
    });
    if (!status.ok()) return status;
    for (v1::Job& job : *page.mutable_jobs()) jobs.push_back(std::move(job));
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return jobs;
}

absl::StatusOr<v1::Job> JobsClient::Cancel(const std::string& id, absl::Duration grace) {
  v1::CancelJobRequest request;
  request.set_job(id);
  request.set_grace_ms(absl::ToInt64Milliseconds(grace));
  v1::Job job;
  absl::Status status = WithRetry([&] {
    grpc::ClientContext context;
    SetDeadline(context);
    return FromGrpc(stub_->Cancel(&context, request, &job));
  });
  if (!status.ok()) return status;
  return job;
}

absl::Status JobsClient::Delete(const std::string& id) {
  v1::DeleteJobRequest request;
  request.set_job(id);
  return WithRetry([&] {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::DeleteJobResponse response;
    return FromGrpc(stub_->Delete(&context, request, &response));
  });
}

absl::Status JobsClient::WriteStdin(const std::string& id, const std::string& data, bool eof) {
  v1::WriteStdinRequest request;
  request.set_job(id);
  request.set_data(data);
  request.set_eof(eof);
  return WithRetry([&] {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::WriteStdinResponse response;
    return FromGrpc(stub_->WriteStdin(&context, request, &response));
  });
}

absl::StatusOr<std::vector<v1::NodeInfo>> JobsClient::ListNodes() {
  v1::ListNodesResponse response;
  absl::Status status = WithRetry([&] {
    grpc::ClientContext context;
    SetDeadline(context);
    return FromGrpc(stub_->ListNodes(&context, v1::ListNodesRequest(), &response));
  });
  if (!status.ok()) return status;
  return std::vector<v1::NodeInfo>(response.nodes().begin(), response.nodes().end());
}

absl::Status JobsClient::Watch(const std::string& job, uint64_t from_seq, bool follow,
                               const std::function<void(const v1::JobEvent&)>& on_event) {
  WatchCursor cursor(from_seq);
  Retry retry(options_.reconnect_timeout);
  bool delivering = true;  // false from a break until the next event
  while (true) {
    grpc::ClientContext context;  // no deadline: a followed job may run for days
    v1::WatchRequest request;
    request.set_job(job);
    request.set_from_seq(cursor.from_seq());
    request.set_follow(follow);
    absl::Time started = options_.now();
    std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader = stub_->Watch(&context, request);
    v1::JobEvent event;
    while (reader->Read(&event)) {
      if (!cursor.Accept(event)) continue;
      retry.Progress();
      delivering = true;
      on_event(event);
    }
    absl::Status status = FromGrpc(reader->Finish());
    if (status.ok()) return status;
    absl::Time now = options_.now();
    // A stream that stayed open for a whole budget was established, even if
    // the job said nothing: its break starts a fresh budget.
    if (now - started >= retry.budget()) retry.Progress();
    absl::StatusOr<absl::Duration> wait = retry.Failed(now, status, /*streaming=*/true);
    if (!wait.ok()) return wait.status();
    if (delivering && options_.on_reconnecting) options_.on_reconnecting(status);
    delivering = false;
    options_.sleep(*wait);
  }
}

}  // namespace constellation::cli
