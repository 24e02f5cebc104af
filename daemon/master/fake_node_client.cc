#include "daemon/master/fake_node_client.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "daemon/binary_cache.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon::master {

using internal::FromProto;

struct FakeNodeClient::Stream {
  std::deque<pb::NodeEvent> queue;
  std::optional<absl::Status> end;  // set: ends once the queue is read
  bool cancelled = false;
};

class FakeNodeClient::FakeStream final : public AttachStream {
 public:
  FakeStream(FakeNodeClient* node, std::shared_ptr<Stream> stream) : node_(node), stream_(std::move(stream)) {}
  bool Read(pb::NodeEvent* event) override {
    std::unique_lock<std::mutex> lock(node_->mu_);
    ++node_->waiting_readers_;
    node_->cv_.notify_all();
    node_->cv_.wait(lock, [&] { return !stream_->queue.empty() || stream_->end || stream_->cancelled; });
    --node_->waiting_readers_;
    if (stream_->cancelled || stream_->queue.empty()) return false;
    *event = std::move(stream_->queue.front());
    stream_->queue.pop_front();
    node_->cv_.notify_all();
    return true;
  }
  absl::Status Finish() override {
    std::lock_guard<std::mutex> lock(node_->mu_);
    if (stream_->cancelled) return absl::CancelledError("cancelled");
    return stream_->end.value_or(absl::OkStatus());
  }
  void Cancel() override {
    std::lock_guard<std::mutex> lock(node_->mu_);
    stream_->cancelled = true;
    node_->cv_.notify_all();
  }

 private:
  FakeNodeClient* node_;
  std::shared_ptr<Stream> stream_;
};

absl::StatusOr<pb::HasBinaryReply> FakeNodeClient::HasBinary(const pb::BinaryId& binary) {
  std::lock_guard<std::mutex> lock(mu_);
  pb::HasBinaryReply reply;
  reply.set_present(binaries_.contains(binary.sha256()));
  reply.set_boot_id(boot_id);
  return reply;
}

absl::Status FakeNodeClient::Upload(const pb::BinaryId& binary, ChunkSource& source) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    upload_progress_ = 0;
    cv_.notify_all();
  }
  std::string bytes;
  char buf[4096];
  absl::StatusOr<size_t> n;
  while ((n = source.Read(buf, sizeof(buf))).ok() && *n > 0) {
    bytes.append(buf, *n);
    std::lock_guard<std::mutex> lock(mu_);
    upload_progress_ = bytes.size();
    cv_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mu_);
  upload_progress_ = -1;
  cv_.notify_all();
  if (!n.ok()) return n.status();
  if (bytes.size() != binary.size() || Sha256OfBytes(bytes) != binary.sha256()) {
    return absl::DataLossError("upload corrupted; rejected");
  }
  if (!binaries_.contains(binary.sha256())) ++uploads_;
  binaries_.insert(binary.sha256());
  return absl::OkStatus();
}

absl::Status FakeNodeClient::Adopt(const pb::BinaryId& binary, const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  adopted_.push_back(path);
  if (!adopt_error.ok()) return adopt_error;
  binaries_.insert(binary.sha256());
  cv_.notify_all();
  return absl::OkStatus();
}

absl::StatusOr<Pid> FakeNodeClient::Launch(const pb::LaunchRequest& request) {
  std::unique_lock<std::mutex> lock(mu_);
  if (hold_launch) {
    ++held_launches_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return !hold_launch; });
    --held_launches_;
  }
  if (!launch_error.ok()) return std::exchange(launch_error, absl::OkStatus());
  if (!binaries_.contains(request.binary().sha256())) {
    return absl::FailedPreconditionError(absl::StrCat("binary not uploaded to ", addr_));
  }
  launches_.push_back(request);
  cv_.notify_all();
  return Pid::FromIpv4(ipv4_, next_port_++, 1);
}

absl::Status FakeNodeClient::WriteStdin(const pb::StdinChunk& chunk) {
  std::lock_guard<std::mutex> lock(mu_);
  stdin_.push_back(chunk);
  cv_.notify_all();
  return absl::OkStatus();
}

absl::Status FakeNodeClient::Kill(const pb::KillRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  kills_.push_back(request);
  cv_.notify_all();
  return absl::OkStatus();
}

absl::StatusOr<Resources> FakeNodeClient::QueryResources(const pb::ResourcesQuery&) {
  std::lock_guard<std::mutex> lock(mu_);
  ++queries_;
  return query_answer;
}

absl::Status FakeNodeClient::Ack(const pb::AckRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  acks_.push_back(request);
  cv_.notify_all();
  return absl::OkStatus();
}

void FakeNodeClient::SetAttachError(absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  attach_error = std::move(status);
}

std::unique_ptr<AttachStream> FakeNodeClient::Attach(const pb::AttachRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  attaches_.push_back(request);
  auto stream = std::make_shared<Stream>();
  if (!attach_error.ok()) {
    stream->end = attach_error;
  } else {
    *stream->queue.emplace_back().mutable_hello() = hello_;
  }
  stream_ = stream;
  cv_.notify_all();
  return std::make_unique<FakeStream>(this, stream);
}

void FakeNodeClient::Gone(const pb::GoneBatch& batch, std::function<void(absl::Status)> done) {
  absl::Status answer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gone_.push_back(batch);
    cv_.notify_all();
    if (hold_gone) {
      held_gone_.push_back(std::move(done));
      return;
    }
    answer = gone_error;
  }
  done(answer);
}

std::vector<std::string> FakeNodeClient::gone_pids() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> pids;
  for (const pb::GoneBatch& batch : gone_) {
    for (const pb::ProcessGone& gone : batch.gone()) {
      const char* why = gone.node_lost() ? "node_lost" : gone.no_process() ? "no_process" : "exit";
      absl::StatusOr<Pid> pid = FromProto(gone.pid());
      pids.push_back(pid.ok() ? absl::StrCat(pid->ip_string(), ":", pid->port(), " ", why) : "?");
    }
  }
  return pids;
}

void FakeNodeClient::ReleaseLaunches() {
  std::lock_guard<std::mutex> lock(mu_);
  hold_launch = false;
  cv_.notify_all();
}

size_t FakeNodeClient::ReleaseGone(absl::Status status) {
  std::vector<std::function<void(absl::Status)>> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held.swap(held_gone_);
  }
  for (auto& done : held) done(status);
  return held.size();
}

void FakeNodeClient::Push(pb::NodeEvent event) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stream_ == nullptr) stream_ = std::make_shared<Stream>();
  stream_->queue.push_back(std::move(event));
  cv_.notify_all();
}

void FakeNodeClient::SetHello(pb::NodeHello hello) {
  std::lock_guard<std::mutex> lock(mu_);
  hello_ = std::move(hello);
}

void FakeNodeClient::End(absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stream_ != nullptr) stream_->end = std::move(status);
  cv_.notify_all();
}

bool FakeNodeClient::WaitIdle(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                      [&] { return waiting_readers_ > 0 && (stream_ == nullptr || stream_->queue.empty()); });
}

bool FakeNodeClient::WaitFor(const std::function<bool()>& predicate, absl::Duration timeout) {
  // The predicate reads the fake through its locked getters: wait unlocked.
  absl::Time deadline = absl::Now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    lock.unlock();
    if (predicate()) return true;
    lock.lock();
    if (absl::Now() >= deadline) return false;
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

#define FAKE_GETTER(type, name, field)     \
  type FakeNodeClient::name() const {      \
    std::lock_guard<std::mutex> lock(mu_); \
    return field;                          \
  }
FAKE_GETTER(std::vector<pb::LaunchRequest>, launches, launches_)
FAKE_GETTER(int, held_launches, held_launches_)
FAKE_GETTER(int, queries, queries_)
FAKE_GETTER(std::vector<pb::KillRequest>, kills, kills_)
FAKE_GETTER(std::vector<pb::StdinChunk>, stdin_chunks, stdin_)
FAKE_GETTER(std::vector<pb::AckRequest>, acks, acks_)
FAKE_GETTER(std::vector<pb::AttachRequest>, attaches, attaches_)
FAKE_GETTER(std::set<std::string>, binaries, binaries_)
FAKE_GETTER(int, uploads, uploads_)
FAKE_GETTER(std::vector<std::string>, adopted_paths, adopted_)
FAKE_GETTER(int64_t, upload_progress, upload_progress_)
FAKE_GETTER(std::vector<pb::GoneBatch>, gone_batches, gone_)
#undef FAKE_GETTER

}  // namespace constellation::daemon::master
