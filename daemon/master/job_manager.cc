// JobManager: the Jobs API's calls (checks, submission, queries, cancel).
#include "daemon/master/job_manager.h"

#include <signal.h>

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "lib/net/handshake.h"
#include "lib/process/proto_convert.h"

namespace constellation::daemon::master {

using internal::FromProto;
using internal::ToProto;

namespace {

// Bounds on what a spec may make the master keep.
constexpr size_t kMaxArgs = 4096;
constexpr size_t kMaxArgBytes = 1 << 20;
constexpr size_t kMaxLabels = 64;
constexpr size_t kMaxLabelBytes = 256;
constexpr size_t kMaxRequestId = 128;
constexpr size_t kMaxName = 256;
constexpr uint64_t kMaxTtlMs = 10ull * 365 * 24 * 3600 * 1000;
constexpr size_t kMaxStdinChunk = 1 << 20;

bool Finished(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED || state == v1::JOB_STATE_CANCELLED;
}

bool SameSpec(const v1::JobSpec& a, const v1::JobSpec& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);  // maps compared as maps
}

}  // namespace

JobManager::JobManager(Parts parts, Options options)
    : parts_(parts),
      metrics_(parts.metrics != nullptr ? *parts.metrics : metrics::MasterMetrics::Unread()),
      options_(std::move(options)) {
  parts_.timers->After(options_.sweep_interval, [this] { Sweep(); });
}

JobManager::~JobManager() { Shutdown(); }

void JobManager::set_self_addr(std::string addr) {
  std::lock_guard<std::mutex> lock(mu_);
  options_.self_addr = std::move(addr);
}

void JobManager::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [id, job] : active_) job.stop->store(true);
    settled_.notify_all();  // spawns waiting for a launch give up
  }
  parts_.placement->Shutdown();
  ReapStarters(/*all=*/true);
}

absl::StatusOr<uint64_t> JobManager::ParseJobId(const std::string& job) const {
  uint64_t id = 0;
  if (job.empty() || job.size() > 20 || !absl::SimpleAtoi(job, &id) || id == 0) {
    return absl::InvalidArgumentError(absl::StrCat("\"", job.substr(0, 64), "\" is not a job id (a positive number)"));
  }
  return id;
}

absl::StatusOr<JobRecord> JobManager::Authorized(const std::string& job, const Identity& caller) {
  absl::StatusOr<uint64_t> id = ParseJobId(job);
  if (!id.ok()) return id.status();
  std::optional<JobRecord> record = parts_.store->GetJob(*id);
  if (!record) return absl::NotFoundError(absl::StrCat("no job ", job));
  absl::StatusOr<Identity> owner = security::ParseSpiffeUri(record->job.owner());
  if (!owner.ok() || !security::MayManage(caller, *owner)) {
    // Not yours: as far as you are concerned it does not exist.
    return absl::NotFoundError(absl::StrCat("no job ", job, " of ", caller.ToString()));
  }
  return *record;
}

v1::Job JobManager::View(const JobRecord& record, bool with_processes) {
  v1::Job job = record.job;
  job.set_last_seq(parts_.store->CommittedSeq(record.id));
  if (with_processes) {
    for (const ProcessRecord& process : parts_.store->Processes(record.id)) *job.add_processes() = process.process;
  }
  return job;
}

absl::Status JobManager::ValidateSpec(const v1::JobSpec& spec) {
  pb::BinaryId binary;
  binary.set_sha256(spec.binary().sha256());
  binary.set_size(spec.binary().size());
  if (absl::Status valid = ValidateBinaryId(binary); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("spec.binary: ", valid.message()));
  }
  size_t bytes = 0;
  for (const std::string& arg : spec.argv()) bytes += arg.size() + 1;
  for (const std::string& var : spec.env()) {
    bytes += var.size() + 1;
    size_t eq = var.find('=');
    if (eq == std::string::npos || eq == 0 || var.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("spec.env: \"", var.substr(0, 64), "\" is not NAME=value"));
    }
  }
  if (spec.argv_size() + spec.env_size() > static_cast<int>(kMaxArgs) || bytes > kMaxArgBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.argv and spec.env: at most ", kMaxArgs, " strings of ", kMaxArgBytes, " bytes in all"));
  }
  for (const std::string& arg : spec.argv()) {
    if (arg.find('\0') != std::string::npos) return absl::InvalidArgumentError("spec.argv: a NUL byte in an argument");
  }
  if (spec.labels_size() > static_cast<int>(kMaxLabels)) {
    return absl::InvalidArgumentError(absl::StrCat("spec.labels: at most ", kMaxLabels));
  }
  for (const auto& [key, value] : spec.labels()) {
    if (key.empty() || key.size() > kMaxLabelBytes || value.size() > kMaxLabelBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.labels: keys of 1-", kMaxLabelBytes, " bytes and values of at most ", kMaxLabelBytes));
    }
  }
  if (spec.request_id().size() > kMaxRequestId) {
    return absl::InvalidArgumentError(absl::StrCat("spec.request_id: at most ", kMaxRequestId, " bytes"));
  }
  if (spec.name().size() > kMaxName) return absl::InvalidArgumentError(absl::StrCat("spec.name: at most ", kMaxName));
  if (spec.ttl_after_finished_ms() > kMaxTtlMs)
    return absl::InvalidArgumentError("spec.ttl_after_finished_ms: at most 10 years");
  if (spec.has_resources()) {
    const pb::Resources& r = spec.resources();
    if (r.mem() == 0 || !std::isfinite(r.cpu()) || r.cpu() <= 0) {
      return absl::InvalidArgumentError("spec.resources: memory and cpu must both be positive (or leave it unset)");
    }
    std::vector<Resources> capacities;
    for (const NodeView& node : parts_.nodes->List()) capacities.push_back(node.capacity);
    if (absl::Status fits = parts_.placement->CouldEverFit(FromProto(r), capacities); !fits.ok()) return fits;
  }
  if (!parts_.cache->Has(binary)) {
    return absl::FailedPreconditionError(
        absl::StrCat("binary ", binary.sha256(), " was never uploaded (UploadBinary it first)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> JobManager::Submit(const v1::JobSpec& spec, const Identity& caller) {
  if (absl::Status valid = ValidateSpec(spec); !valid.ok()) return valid;
  std::string owner = security::SpiffeUri(caller);
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("the master is stopping");
    if (!spec.request_id().empty()) {
      if (std::optional<JobRecord> existing = parts_.store->FindByRequestId(owner, spec.request_id())) {
        if (!SameSpec(existing->job.spec(), spec)) {
          return absl::AlreadyExistsError(
              absl::StrCat("request_id \"", spec.request_id(), "\" is job ", existing->id, ", which has another spec"));
        }
        return View(*existing, true);
      }
    }
    id = parts_.store->NextJobId();
    ActiveJob& job = active_[id];
    job.record.id = id;
    job.record.secret = net::NewDeploymentSecret();
    v1::Job& view = job.record.job;
    view.set_id(absl::StrCat(id));
    *view.mutable_spec() = spec;
    view.set_state(v1::JOB_STATE_PENDING);
    view.set_reason("waiting for its root to start");
    view.set_owner(owner);
    view.set_created_ms(absl::ToUnixMillis(parts_.timers->Now()));
    if (absl::Status put = parts_.store->PutJob(job.record); !put.ok()) {
      active_.erase(id);
      return absl::UnavailableError(absl::StrCat("cannot store the job: ", put.message()));
    }
    AppendStateLocked(job);
    StartRoot(id);
    metrics_.JobSubmitted();
  }
  std::optional<JobRecord> stored = parts_.store->GetJob(id);
  if (!stored) return absl::InternalError("the job vanished");
  return View(*stored, true);
}

absl::StatusOr<v1::Job> JobManager::Get(const std::string& job, const Identity& caller) {
  absl::StatusOr<JobRecord> record = Authorized(job, caller);
  if (!record.ok()) return record.status();
  return View(*record, true);
}

absl::StatusOr<v1::ListJobsResponse> JobManager::List(const v1::ListJobsRequest& request, const Identity& caller) {
  JobFilter filter;
  for (int state : request.states()) filter.states.push_back(static_cast<v1::JobState>(state));
  filter.labels.insert(request.labels().begin(), request.labels().end());
  if (caller.role != security::Role::kAdmin) filter.owner = security::SpiffeUri(caller);
  filter.page_size = request.page_size() == 0 ? 100 : std::min<uint32_t>(request.page_size(), 1000);
  filter.page_token = request.page_token();
  absl::StatusOr<JobPage> page = parts_.store->ListJobs(filter);
  if (!page.ok()) return page.status();
  v1::ListJobsResponse response;
  for (const JobRecord& record : page->jobs) *response.add_jobs() = View(record, false);
  response.set_next_page_token(page->next_page_token);
  return response;
}

absl::StatusOr<v1::Job> JobManager::Cancel(const std::string& job, absl::Duration grace, const Identity& caller) {
  absl::StatusOr<JobRecord> record = Authorized(job, caller);
  if (!record.ok()) return record.status();
  std::vector<std::string> nodes;
  bool signal = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(record->id);
    if (it != active_.end() && it->second.cancelled_by.empty()) {
      ActiveJob& active = it->second;
      active.cancelled_by = caller.ToString();
      active.stop->store(true);
      settled_.notify_all();  // its spawns waiting for a launch give up
      parts_.placement->Wake();
      if (!active.root && !active.starting) {
        FinishLocked(record->id, v1::JOB_STATE_CANCELLED, absl::StrCat("cancelled by ", caller.ToString()));
      } else {
        for (const auto& [pid, process] : active.live) nodes.push_back(process.node);
        signal = true;
      }
    }
  }
  if (signal) {
    // Every node that is up: a process may be starting on one not yet in the books.
    nodes = parts_.nodes->up();
    uint64_t id = record->id;
    if (grace > absl::ZeroDuration()) {
      SignalJob(id, SIGTERM, nodes);
      parts_.timers->After(grace, [this, id] { SignalJob(id, SIGKILL, parts_.nodes->up()); });
    } else {
      SignalJob(id, SIGKILL, nodes);
    }
  }
  return Get(job, caller);
}

absl::Status JobManager::Delete(const std::string& job, const Identity& caller) {
  absl::StatusOr<JobRecord> record = Authorized(job, caller);
  if (!record.ok()) return record.status();
  if (!Finished(record->job.state())) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job, " has not finished (cancel it first)"));
  }
  return parts_.store->DeleteJob(record->id);
}

absl::Status JobManager::WriteStdin(const v1::WriteStdinRequest& request, const Identity& caller) {
  if (request.data().size() > kMaxStdinChunk) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxStdinChunk, " bytes per WriteStdin"));
  }
  absl::StatusOr<JobRecord> record = Authorized(request.job(), caller);
  if (!record.ok()) return record.status();
  if (!record->job.spec().attach_stdin()) {
    return absl::FailedPreconditionError(absl::StrCat("job ", request.job(), " was not submitted with attach_stdin"));
  }
  NodeClient* node = nullptr;
  pb::StdinChunk chunk;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(record->id);
    if (it == active_.end()) return absl::FailedPreconditionError(absl::StrCat("job ", request.job(), " has finished"));
    if (!it->second.root) {
      return absl::UnavailableError(absl::StrCat("job ", request.job(), " has not started yet: try again"));
    }
    node = parts_.nodes->client(it->second.root_node);
    *chunk.mutable_pid() = ToProto(*it->second.root);
  }
  if (node == nullptr) return absl::InternalError("the root's node is unknown");
  chunk.set_data(request.data());
  chunk.set_eof(request.eof());
  absl::Status written = node->WriteStdin(chunk);
  if (absl::IsNotFound(written)) {
    return absl::FailedPreconditionError(absl::StrCat("job ", request.job(), ": its root's stdin is closed"));
  }
  return written;
}

v1::ListNodesResponse JobManager::ListNodes() {
  std::map<std::string, scheduler::NodeState> placed;
  for (scheduler::NodeState& state : parts_.placement->Nodes()) placed[state.id] = state;
  v1::ListNodesResponse response;
  for (const NodeView& node : parts_.nodes->List()) {
    v1::NodeInfo& info = *response.add_nodes();
    info.set_addr(node.addr);
    info.set_state(NodeStateName(node.state));
    info.set_source(node.joined ? "joined" : "config");
    Resources capacity = node.capacity;
    *info.mutable_capacity() = ToProto(capacity);
    auto it = placed.find(node.addr);
    if (it != placed.end()) {
      *info.mutable_free() = ToProto(Resources{capacity.mem - std::min(capacity.mem, it->second.allocated.mem),
                                               std::max(0.0, capacity.cpu - it->second.allocated.cpu)});
      info.set_processes(it->second.allocations);
    }
  }
  return response;
}

absl::StatusOr<uint64_t> JobManager::Watchable(const std::string& job, const Identity& caller) {
  absl::StatusOr<JobRecord> record = Authorized(job, caller);
  if (!record.ok()) return record.status();
  return record->id;
}

}  // namespace constellation::daemon::master
