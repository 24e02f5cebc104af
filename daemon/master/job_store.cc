#include "daemon/master/job_store.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/log/log.h"
#include "daemon/master/store_db.h"
#include "lib/process/private_dir.h"

namespace constellation::daemon::master {

using internal::EnsurePrivateDir;

namespace {

// A read that failed (the disk, or a damaged file): the caller gets nothing,
// the operator a line on stderr.
void ReportReadError(const char* what, const absl::Status& status) {
  LogError("job-store", "%s: %s", what, status.message());
}

std::vector<NodeMark> LatestMarks(const Batch& batch) {
  std::map<std::string, const NodeMark*> latest;
  for (const QueuedEvent& entry : batch.entries) {
    if (entry.mark) latest[entry.mark->node] = &*entry.mark;
  }
  std::vector<NodeMark> marks;
  for (const auto& [node, mark] : latest) marks.push_back(*mark);
  return marks;
}

EventQueue::Limits QueueLimits(const JobStore::Options& options) {
  return EventQueue::Limits{
      .max_log_bytes_per_job = options.max_log_bytes_per_job,
      .max_queued_bytes = std::max<uint64_t>(options.max_queued_bytes, 1),
      .commit_batch = std::max<size_t>(options.commit_batch, 1),
  };
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& dir, Options options) {
  absl::Status status = EnsurePrivateDir(dir);
  if (!status.ok()) return status;
  absl::StatusOr<std::unique_ptr<StoreDb>> db = StoreDb::Open(dir + "/jobs.sqlite3", options.fsync_each_commit);
  if (!db.ok()) return db.status();
  absl::StatusOr<uint64_t> next_job_id = (*db)->NextJobId();
  if (!next_job_id.ok()) return next_job_id.status();
  absl::StatusOr<std::vector<std::pair<uint64_t, LogState>>> logs = (*db)->Logs();
  if (!logs.ok()) return logs.status();
  absl::StatusOr<std::vector<std::pair<uint64_t, v1::JobState>>> states = (*db)->JobStates();
  if (!states.ok()) return states.status();

  std::unique_ptr<JobStore> store(new JobStore(options, *std::move(db), *next_job_id));
  for (const auto& [job, log] : *logs) store->queue_.AddJob(job, log);
  {
    std::lock_guard<std::mutex> lock(store->db_mu_);
    for (const auto& [job, state] : *states) store->CountState(job, state);
  }
  store->commit_thread_ = std::thread([store = store.get()] { store->CommitLoop(); });
  return store;
}

JobStore::JobStore(Options options, std::unique_ptr<StoreDb> db, uint64_t next_job_id)
    : options_(options),
      queue_(QueueLimits(options)),
      next_job_id_(next_job_id),
      db_(std::move(db)),
      stored_next_job_id_(next_job_id) {}

JobStore::~JobStore() {
  queue_.Stop();  // the commit thread commits what is queued, then returns
  commit_thread_.join();
}

void JobStore::CommitLoop() {
  while (true) {
    bool stop = queue_.AwaitDue(options_.commit_interval);
    absl::Status status = Commit(nullptr, nullptr, /*paced=*/true);
    if (stop) return;
    // Failed: the batch went back to the queue; try again a little later.
    if (!status.ok() && queue_.AwaitStopFor(std::max(options_.commit_interval, absl::Milliseconds(100)))) {
      Commit(nullptr, nullptr, /*paced=*/true).IgnoreError();  // logged by Commit
      return;
    }
  }
}

absl::Status JobStore::Commit(const std::function<absl::Status(StoreDb&)>& write, const std::function<void()>& after,
                              bool paced) {
  Note note;
  {
    std::lock_guard<std::mutex> lock(db_mu_);
    Batch batch = queue_.Take(paced);
    const uint64_t next_job_id = next_job_id_.load();
    const bool new_ids = next_job_id != stored_next_job_id_;
    if (batch.entries.empty() && !new_ids && !write) return absl::OkStatus();

    absl::Status status = db_->Begin();
    if (status.ok()) status = db_->WriteBatch(batch);
    if (status.ok() && new_ids) status = db_->RaiseNextJobId(next_job_id);
    if (status.ok() && write) status = write(*db_);
    if (status.ok()) status = db_->Commit();
    if (!status.ok()) {
      db_->Rollback();
      queue_.Failed(std::move(batch));
      if (!failing_) {
        LogError("job-store", "commit failed (queued events are kept and retried): %s", status.message());
      }
      failing_ = true;
      return status;
    }
    if (failing_) LogInfo("job-store", "commits succeed again");
    failing_ = false;
    stored_next_job_id_ = next_job_id;
    note.jobs = queue_.Committed(batch);
    note.marks = LatestMarks(batch);
    if (after) after();
    if (note.jobs.empty() && note.marks.empty()) return absl::OkStatus();
    std::lock_guard<std::mutex> notify_lock(notify_mu_);  // queued in commit order
    notes_.push_back(std::move(note));
  }
  Notify();
  return absl::OkStatus();
}

void JobStore::Notify() {
  {
    std::lock_guard<std::mutex> lock(notify_mu_);
    if (notifying_) return;  // that thread delivers this note too, after the ones before it
    notifying_ = true;
  }
  while (true) {
    Note note;
    std::shared_ptr<const CommitListener> listener;
    {
      std::lock_guard<std::mutex> lock(notify_mu_);
      if (notes_.empty()) {
        notifying_ = false;
        return;
      }
      note = std::move(notes_.front());
      notes_.pop_front();
      listener = listener_;
      calling_ = true;
    }
    // No lock held: the listener may call the store (even commit: its note
    // is then delivered by this loop).
    if (listener != nullptr && *listener) (*listener)(note.jobs, note.marks);
    std::lock_guard<std::mutex> lock(notify_mu_);
    calling_ = false;
    listener_idle_.notify_all();
  }
}

void JobStore::SetCommitListener(CommitListener listener) {
  std::unique_lock<std::mutex> lock(notify_mu_);
  listener_ = std::make_shared<const CommitListener>(std::move(listener));
  listener_idle_.wait(lock, [this] { return !calling_; });  // the old one may be in use
}

absl::Status JobStore::PutJob(const JobRecord& job) {
  if (job.id == 0 || job.id > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat("job id ", job.id, " is out of range"));
  }
  // An id put from elsewhere is never handed out later.
  uint64_t next = next_job_id_.load();
  while (next <= job.id && !next_job_id_.compare_exchange_weak(next, job.id + 1)) {
  }
  return Commit([&](StoreDb& db) { return db.PutJob(job); },
                [&] {
                  queue_.AddJob(job.id, LogState{});
                  CountState(job.id, job.job.state());
                });
}

absl::Status JobStore::PutProcess(const ProcessRecord& process) {
  return Commit([&](StoreDb& db) { return db.PutProcess(process); }, nullptr);
}

absl::Status JobStore::DeleteJob(uint64_t id) {
  return Commit([&](StoreDb& db) { return db.DeleteJob(id); },
                [&] {
                  queue_.RemoveJob(id);
                  CountState(id, std::nullopt);
                });
}

void JobStore::CountState(uint64_t id, std::optional<v1::JobState> state) {
  auto it = states_.find(id);
  if (it != states_.end()) {
    counts_[it->second].fetch_sub(1, std::memory_order_relaxed);
    if (!state) states_.erase(it);
  }
  if (!state) return;
  v1::JobState known = v1::JobState_IsValid(*state) ? *state : v1::JOB_STATE_UNSPECIFIED;
  states_[id] = known;
  counts_[known].fetch_add(1, std::memory_order_relaxed);
}

JobStore::StateCounts JobStore::CountByState() const {
  StateCounts counts;
  for (size_t i = 0; i < counts.size(); ++i) counts[i] = counts_[i].load(std::memory_order_relaxed);
  return counts;
}

uint64_t JobStore::NextJobId() { return next_job_id_.fetch_add(1); }

absl::Status JobStore::Flush() { return Commit(nullptr, nullptr); }

uint64_t JobStore::Append(uint64_t job, v1::JobEvent event, std::optional<NodeMark> mark) {
  return queue_.Append(job, std::move(event), std::move(mark));
}

void JobStore::Mark(NodeMark mark) { queue_.Mark(std::move(mark)); }

uint64_t JobStore::CommittedSeq(uint64_t job) { return queue_.CommittedSeq(job); }

std::optional<JobRecord> JobStore::GetJob(uint64_t id) {
  std::lock_guard<std::mutex> lock(db_mu_);
  absl::StatusOr<std::optional<JobRecord>> job = db_->GetJob(id);
  if (job.ok()) return *std::move(job);
  ReportReadError("GetJob", job.status());
  return std::nullopt;
}

std::optional<JobRecord> JobStore::FindByRequestId(const std::string& owner, const std::string& request_id) {
  if (request_id.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(db_mu_);
  absl::StatusOr<std::optional<JobRecord>> job = db_->FindByRequestId(owner, request_id);
  if (job.ok()) return *std::move(job);
  ReportReadError("FindByRequestId", job.status());
  return std::nullopt;
}

absl::StatusOr<JobPage> JobStore::ListJobs(const JobFilter& filter) {
  std::lock_guard<std::mutex> lock(db_mu_);
  return db_->ListJobs(filter);
}

std::vector<JobRecord> JobStore::Unfinished() {
  std::lock_guard<std::mutex> lock(db_mu_);
  absl::StatusOr<std::vector<JobRecord>> jobs = db_->Unfinished();
  if (jobs.ok()) return *std::move(jobs);
  ReportReadError("Unfinished", jobs.status());
  return {};
}

std::vector<ProcessRecord> JobStore::Processes(uint64_t job) {
  std::lock_guard<std::mutex> lock(db_mu_);
  absl::StatusOr<std::vector<ProcessRecord>> processes = db_->Processes(job);
  if (processes.ok()) return *std::move(processes);
  ReportReadError("Processes", processes.status());
  return {};
}

std::vector<uint64_t> JobStore::Expired(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(db_mu_);
  absl::StatusOr<std::vector<uint64_t>> ids = db_->Expired(now_ms);
  if (ids.ok()) return *std::move(ids);
  ReportReadError("Expired", ids.status());
  return {};
}

std::vector<v1::JobEvent> JobStore::ReadEvents(uint64_t job, uint64_t after, size_t max_events, size_t max_bytes) {
  std::lock_guard<std::mutex> lock(db_mu_);
  // Under db_mu_, the committed seq and the rows on disk agree.
  uint64_t through = queue_.CommittedSeq(job);
  if (through <= after || max_events == 0) return {};
  absl::StatusOr<std::vector<v1::JobEvent>> events = db_->ReadEvents(job, after, through, max_events, max_bytes);
  if (events.ok()) return *std::move(events);
  ReportReadError("ReadEvents", events.status());
  return {};
}

std::optional<NodeMark> JobStore::GetMark(const std::string& node) {
  std::lock_guard<std::mutex> lock(db_mu_);
  absl::StatusOr<std::optional<NodeMark>> mark = db_->GetMark(node);
  if (mark.ok()) return *std::move(mark);
  ReportReadError("GetMark", mark.status());
  return std::nullopt;
}

}  // namespace constellation::daemon::master
