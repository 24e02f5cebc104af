#include "daemon/node_join.h"

#include "daemon/grpc_util.h"
#include "daemon/log/log.h"
#include "lib/process/proto_convert.h"
#include "proto/cluster.grpc.pb.h"

namespace constellation::daemon {

Joiner::Calls Joiner::GrpcCalls(const std::string& master_addr, std::shared_ptr<grpc::ChannelCredentials> credentials,
                                absl::Duration deadline) {
  std::shared_ptr<pb::Master::Stub> stub = pb::Master::NewStub(NodeChannel(master_addr, std::move(credentials)));
  auto context = [deadline](grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline));
  };
  Calls calls;
  calls.join = [stub, context](const pb::JoinRequest& request) {
    grpc::ClientContext call;
    context(call);
    pb::Empty reply;
    return FromGrpc(stub->Join(&call, request, &reply));
  };
  calls.leave = [stub, context](const pb::LeaveRequest& request) {
    grpc::ClientContext call;
    context(call);
    pb::Empty reply;
    return FromGrpc(stub->Leave(&call, request, &reply));
  };
  return calls;
}

Joiner::Joiner(Options options, Calls calls, std::function<void(const absl::Status&)> fatal)
    : options_(std::move(options)), calls_(std::move(calls)), fatal_(std::move(fatal)) {}

Joiner::~Joiner() { Stop(); }

void Joiner::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Joiner::SetAttached(bool attached) {
  std::lock_guard<std::mutex> lock(mu_);
  attached_ = attached;
  if (!attached) ++detaches_;
  cv_.notify_all();
}

void Joiner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status Joiner::Leave() {
  Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!joined_) return absl::OkStatus();
  }
  pb::LeaveRequest request;
  request.set_addr(options_.self_addr);
  return calls_.leave(request);
}

int Joiner::joins() const {
  std::lock_guard<std::mutex> lock(mu_);
  return joins_;
}

bool Joiner::Permanent(const absl::Status& status) {
  return absl::IsPermissionDenied(status) || absl::IsUnauthenticated(status) || absl::IsInvalidArgument(status) ||
         absl::IsFailedPrecondition(status) || absl::IsUnimplemented(status);
}

void Joiner::Loop() {
  pb::JoinRequest request;
  request.set_addr(options_.self_addr);
  *request.mutable_capacity() = internal::ToProto(options_.capacity);
  absl::Duration delay = options_.first_retry;
  std::string last_error;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !attached_; });  // ends with Stop
    if (stopping_) return;
    uint64_t detaches = detaches_;  // an Attach that comes and goes meanwhile still counts as one
    lock.unlock();
    absl::Status joined = calls_.join(request);  // bounded by its deadline
    lock.lock();
    ++joins_;
    if (stopping_) return;
    if (joined.ok()) {
      joined_ = true;
      LogInfo("join", "joined the master at %s as %s (%s)", options_.master_addr, options_.self_addr,
              to_string(options_.capacity));
      last_error.clear();
      delay = options_.first_retry;
      // The master dials back; if it does not within attach_wait, join again.
      cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.attach_wait),
                   [&] { return stopping_ || attached_ || detaches_ != detaches; });
      continue;
    }
    if (Permanent(joined)) {
      lock.unlock();
      fatal_(joined);
      return;
    }
    std::string error(joined.message());
    if (error != last_error) {
      LogWarning("join", "joining the master at %s: %s (trying again, at most every %s)", options_.master_addr, error,
                 absl::FormatDuration(options_.max_retry));
      last_error = error;
    }
    cv_.wait_for(lock, absl::ToChronoMilliseconds(delay), [this] { return stopping_ || attached_; });
    delay = std::min(delay * 2, options_.max_retry);
  }
}

}  // namespace constellation::daemon
