#include "daemon/master/jobs_service.h"

#include "absl/strings/str_cat.h"
#include "daemon/grpc_util.h"

namespace constellation::daemon::master {
namespace {

// How much of a log one read takes: enough to keep the stream busy, little
// enough to bound a watcher's memory.
constexpr size_t kReadEvents = 256;
constexpr size_t kReadBytes = 1 << 20;

bool Terminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED || state == v1::JOB_STATE_CANCELLED;
}

template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return ToGrpc(result.status());
  *out = *std::move(result);
  return grpc::Status::OK;
}

// One Watch call. It writes one event at a time; when it has sent all that is
// committed it waits for the notifier (a commit of the job) and reads again.
// It ends after the job's final state change (follow), or once what is stored
// is sent (no follow), or when the client goes away.
class WatchReactor final : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  WatchReactor(JobStore* store, CommitNotifier* notifier, uint64_t job, uint64_t after, bool follow)
      : store_(store), job_(job), after_(after), follow_(follow) {
    subscription_ = notifier->Subscribe(job, [this] { Next(); });  // before the first read: no commit is missed
    Next();
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
        finished_ = true;
        return;
      }
    }
    Next();
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || writing_) return;  // a write in flight ends in OnWriteDone(false)
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
    finished_ = true;
  }
  void OnDone() override {
    subscription_->Cancel();                    // waits for a Next() the notifier runs
    { std::lock_guard<std::mutex> lock(mu_); }  // and for one another thread runs
    delete this;
  }

 private:
  // Sends the next event if none is being sent.
  void Next() {
    std::lock_guard<std::mutex> lock(mu_);
    if (writing_ || finished_) return;
    if (pending_.empty()) {
      std::vector<v1::JobEvent> read = store_->ReadEvents(job_, after_, kReadEvents, kReadBytes);
      pending_.insert(pending_.end(), std::make_move_iterator(read.begin()), std::make_move_iterator(read.end()));
    }
    if (pending_.empty()) {
      if (!follow_ || ended_ || JobEnded()) {
        Finish(grpc::Status::OK);
        finished_ = true;
      }
      return;  // the notifier calls again after the next commit
    }
    current_ = std::move(pending_.front());
    pending_.pop_front();
    after_ = current_.seq();
    if (current_.has_state() && Terminal(current_.state().state())) ended_ = true;
    writing_ = true;
    StartWrite(&current_);
  }
  // The job is over and everything is sent (or it was deleted).
  bool JobEnded() {
    std::optional<JobRecord> record = store_->GetJob(job_);
    return !record || (Terminal(record->job.state()) && store_->CommittedSeq(job_) <= after_);
  }

  JobStore* const store_;
  const uint64_t job_;
  std::shared_ptr<Subscription> subscription_;
  std::mutex mu_;
  uint64_t after_;  // guarded by mu_
  const bool follow_;
  std::deque<v1::JobEvent> pending_;  // guarded by mu_
  v1::JobEvent current_;              // guarded by mu_: being written
  bool writing_ = false;              // guarded by mu_
  bool finished_ = false;             // guarded by mu_
  bool ended_ = false;                // guarded by mu_: the final state change was sent
};

}  // namespace

absl::StatusOr<Identity> JobsService::Caller(const grpc::ServerContextBase& context, absl::string_view what) const {
  return authz_.Check(context, {security::Role::kClient, security::Role::kAdmin}, what);
}

grpc::Status JobsService::UploadBinary(grpc::ServerContext* context,
                                       grpc::ServerReader<v1::UploadBinaryRequest>* reader,
                                       v1::UploadBinaryResponse* response) {
  absl::StatusOr<Identity> caller = Caller(*context, "Jobs.UploadBinary");
  if (!caller.ok()) return ToGrpc(caller.status());
  v1::UploadBinaryRequest request;
  if (!reader->Read(&request) || !request.has_binary()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "an upload starts with the binary's sha256 and size");
  }
  pb::BinaryId id;
  id.set_sha256(request.binary().sha256());
  id.set_size(request.binary().size());
  *response->mutable_binary() = request.binary();
  if (cache_->Has(id)) {
    while (reader->Read(&request)) {
    }  // have it already: the bytes are not needed
    return grpc::Status::OK;
  }
  // Waits while another client sends the same binary: null once it is stored.
  absl::StatusOr<std::unique_ptr<IncomingBinaries::Receiving>> upload = incoming_->Receive(id);
  if (!upload.ok()) return ToGrpc(upload.status());
  if (*upload == nullptr) {
    while (reader->Read(&request)) {
    }
    return grpc::Status::OK;
  }
  if (on_receiving_) on_receiving_(id);
  while (reader->Read(&request)) {
    if (!request.has_chunk()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "only chunks after the first");
    if (absl::Status appended = (*upload)->Append(request.chunk()); !appended.ok()) return ToGrpc(appended);
    metrics_.Uploaded(request.chunk().size());
  }
  if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
  return ToGrpc((*upload)->Finish());
}

grpc::Status JobsService::HasBinary(grpc::ServerContext* context, const v1::HasBinaryRequest* request,
                                    v1::HasBinaryResponse* response) {
  absl::StatusOr<Identity> caller = Caller(*context, "Jobs.HasBinary");
  if (!caller.ok()) return ToGrpc(caller.status());
  pb::BinaryId id;
  id.set_sha256(request->binary().sha256());
  id.set_size(request->binary().size());
  if (absl::Status valid = ValidateBinaryId(id); !valid.ok()) return ToGrpc(valid);
  response->set_present(cache_->Has(id));
  metrics_.CacheLookup(response->present());
  return grpc::Status::OK;
}

grpc::Status JobsService::Submit(grpc::ServerContext* context, const v1::SubmitRequest* request, v1::Job* response) {
  absl::StatusOr<Identity> caller = Caller(*context, "Jobs.Submit");
  if (!caller.ok()) return ToGrpc(caller.status());
  if (draining_.load()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "the master is draining (its daemon is stopping): it takes no new job; submit again once it "
                        "is back");
  }
  return Reply(jobs_->Submit(request->spec(), *caller), response);
}

grpc::Status JobsService::Get(grpc::ServerContext* context, const v1::GetJobRequest* request, v1::Job* response) {
  absl::StatusOr<Identity> caller = Caller(*context, "Jobs.Get");
  if (!caller.ok()) return ToGrpc(caller.status());
  return Reply(jobs_->Get(request->job(), *caller), response);
}

grpc::Status JobsService::List(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                               v1::ListJobsResponse* response) {
  absl::StatusOr<Identity> caller = Caller(*context, "Jobs.List");
  if (!caller.ok()) return ToGrpc(caller.status());
  return Reply(jobs_->List(*request, *caller), response);
}

grpc::Status JobsService::Cancel(grpc::ServerContext* context, const v1::CancelJobRequest* request, v1::Job* response) {
  absl::StatusOr<Identity> caller = Caller(*context, "Jobs.Cancel");
  if (!caller.ok()) return ToGrpc(caller.status());
  return Reply(jobs_->Cancel(request->job(), absl::Milliseconds(request->grace_ms()), *caller), response);
}

grpc::Status JobsService::Delete(grpc::ServerContext* context, const v1::DeleteJobRequest* request,
                                 v1::DeleteJobResponse*) {
  absl::StatusOr<Identity> caller = Caller(*context, "Jobs.Delete");
  if (!caller.ok()) return ToGrpc(caller.status());
  return ToGrpc(jobs_->Delete(request->job(), *caller));
}

grpc::Status JobsService::WriteStdin(grpc::ServerContext* context, const v1::WriteStdinRequest* request,
                                     v1::WriteStdinResponse*) {
  absl::StatusOr<Identity> caller = Caller(*context, "Jobs.WriteStdin");
  if (!caller.ok()) return ToGrpc(caller.status());
  return ToGrpc(jobs_->WriteStdin(*request, *caller));
}

grpc::Status JobsService::ListNodes(grpc::ServerContext* context, const v1::ListNodesRequest*,
                                    v1::ListNodesResponse* response) {
  absl::StatusOr<Identity> caller = Caller(*context, "Jobs.ListNodes");
  if (!caller.ok()) return ToGrpc(caller.status());
  *response = jobs_->ListNodes();
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<v1::JobEvent>* JobsService::Watch(grpc::CallbackServerContext* context,
                                                           const v1::WatchRequest* request) {
  absl::StatusOr<Identity> caller = Caller(*context, "Jobs.Watch");
  absl::StatusOr<uint64_t> job = caller.ok() ? jobs_->Watchable(request->job(), *caller) : caller.status();
  if (!job.ok()) {
    // A reactor that only says no.
    class Refusal final : public grpc::ServerWriteReactor<v1::JobEvent> {
     public:
      explicit Refusal(const absl::Status& why) { Finish(ToGrpc(why)); }
      void OnDone() override { delete this; }
    };
    return new Refusal(job.status());
  }
  return new WatchReactor(store_, notifier_, *job, request->from_seq(), request->follow());
}

}  // namespace constellation::daemon::master
