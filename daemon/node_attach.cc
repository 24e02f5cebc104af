#include "daemon/node_attach.h"

#include <atomic>
#include <cstdlib>

#include "daemon/log/log.h"

namespace constellation::daemon {

// One Attach call. Its state is guarded by the link's lock. Writes and
// Finish are started with the lock released (gRPC may run a reaction
// inline); whoever sets `writing` or `finished` under the lock is the one
// thread that starts that operation, and the stream cannot be done (deleted)
// before its Finish, so it stays alive for that thread.
class MasterLink::Stream final : public grpc::ServerWriteReactor<pb::NodeEvent> {
 public:
  explicit Stream(MasterLink* link) { link_.store(link, std::memory_order_release); }

  void OnWriteDone(bool ok) override { link()->WriteDone(this, ok); }
  void OnCancel() override { link()->Cancelled(this); }
  void OnDone() override {
    link()->Done(this);
    delete this;
  }

  void Act(Step step) {
    if (step == Step::kWrite) StartWrite(&out);
    if (step == Step::kFinish) Finish(grpc::Status::OK);
  }

  pb::NodeEvent out;     // being written while `writing`
  uint64_t cursor = 0;   // the seq of the last event written
  bool writing = false;  // a write is outstanding
  bool finishing = false;
  bool finished = false;  // Finish has been called

 private:
  // gRPC calls the reactions on its threads, ordered after the constructor
  // by its own (uninstrumented) synchronization, which TSan cannot see: an
  // atomic says what it cannot. Every other member is guarded by the link's lock.
  MasterLink* link() const { return link_.load(std::memory_order_acquire); }
  std::atomic<MasterLink*> link_;
};

namespace {
class Refusal final : public grpc::ServerWriteReactor<pb::NodeEvent> {
 public:
  explicit Refusal(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};
}  // namespace

MasterLink::MasterLink(std::string incarnation, uint64_t buffer_capacity, Hooks hooks)
    : incarnation_(incarnation), hooks_(std::move(hooks)), buffer_(std::move(incarnation), buffer_capacity) {}

MasterLink::~MasterLink() { CheckQuiet(); }

void MasterLink::CheckQuiet() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (streams_ != 0) {
    LogError("node", "MasterLink destroyed with %d Attach stream(s) not done: shut the server down first", streams_);
    abort();
  }
}

void MasterLink::Launched(const Pid& pid, pb::RunningProcess process) {
  std::lock_guard<std::mutex> lock(mu_);
  buffer_.Launched(pid, std::move(process));
}

void MasterLink::Forget(const Pid& pid) {
  std::lock_guard<std::mutex> lock(mu_);
  buffer_.Forget(pid);
}

void MasterLink::Push(uint64_t deployment, const pb::ProcessEvent& event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (buffer_.Push(deployment, event) == 0) return;  // dropped: nothing to send
  }
  PumpCurrent();
}

void MasterLink::Ack(const pb::AckRequest& request) {
  bool more;
  {
    std::lock_guard<std::mutex> lock(mu_);
    more = buffer_.Ack(request.incarnation(), request.seq());
  }
  if (more) PumpCurrent();  // markers for output dropped while full
}

void MasterLink::PumpCurrent() {
  Stream* stream = nullptr;
  Step step = Step::kNone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_ == nullptr) return;
    stream = current_;
    step = PumpLocked(stream);
  }
  stream->Act(step);
}

grpc::ServerWriteReactor<pb::NodeEvent>* MasterLink::Attach(const pb::AttachRequest& request) {
  auto* stream = new Stream(this);
  Stream* old = nullptr;
  Step old_step = Step::kNone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream->cursor = buffer_.Resume(request.incarnation(), request.resume_after());
    stream->out.set_seq(0);
    *stream->out.mutable_hello() = buffer_.Hello();
    stream->writing = true;
    ++streams_;
    old = current_;
    if (old != nullptr) {
      old->finishing = true;  // a newer master connection: the old one ends now
      old_step = FinishLocked(old);
    }
    current_ = stream;
    hooks_.attached();
  }
  if (old != nullptr) old->Act(old_step);
  stream->Act(Step::kWrite);  // the hello; held by gRPC until the reactor is bound
  return stream;
}

grpc::ServerWriteReactor<pb::NodeEvent>* MasterLink::Refuse(grpc::Status status) {
  return new Refusal(std::move(status));
}

MasterLink::Step MasterLink::PumpLocked(Stream* stream) {
  if (stream->writing || stream->finishing) return Step::kNone;
  const pb::NodeEvent* next = buffer_.Next(stream->cursor);
  if (next == nullptr) return Step::kNone;  // idle until Push or Ack wakes it
  stream->out = *next;
  stream->cursor = next->seq();
  stream->writing = true;
  return Step::kWrite;
}

MasterLink::Step MasterLink::FinishLocked(Stream* stream) {
  if (stream->writing || stream->finished) return Step::kNone;  // WriteDone finishes it
  stream->finished = true;
  return Step::kFinish;
}

void MasterLink::LoseLocked(Stream* stream) {
  stream->finishing = true;
  if (current_ != stream) return;  // replaced by a newer Attach: not a loss
  current_ = nullptr;
  hooks_.detached();
}

void MasterLink::WriteDone(Stream* stream, bool ok) {
  Step step;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream->writing = false;
    if (!ok) LoseLocked(stream);
    step = stream->finishing ? FinishLocked(stream) : PumpLocked(stream);
  }
  stream->Act(step);
}

void MasterLink::Cancelled(Stream* stream) {
  Step step;
  {
    std::lock_guard<std::mutex> lock(mu_);
    LoseLocked(stream);
    step = FinishLocked(stream);
  }
  stream->Act(step);
}

void MasterLink::Done(Stream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  LoseLocked(stream);
  --streams_;
}

bool MasterLink::attached() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_ != nullptr;
}

uint64_t MasterLink::buffered() const {
  std::lock_guard<std::mutex> lock(mu_);
  return buffer_.size();
}

}  // namespace constellation::daemon
