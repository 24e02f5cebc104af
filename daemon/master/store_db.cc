#include "daemon/master/store_db.h"

#include <limits>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "daemon/master/store_file.h"

namespace constellation::daemon::master {

using sqlite::Query;
using StatementPtr = std::unique_ptr<sqlite::Statement>;

struct StoreDb::Statements {
  StatementPtr begin, commit, rollback;
  StatementPtr insert_event, upsert_log, upsert_mark, raise_next_id;
  StatementPtr put_job, put_process, delete_job, delete_processes, delete_events, delete_log;
  StatementPtr next_id, logs, job_states, get_job, find_request, list_jobs, unfinished, processes, expired, read_events,
      get_mark;
};

namespace {

const std::pair<StatementPtr StoreDb::Statements::*, const char*> kSql[] = {
    {&StoreDb::Statements::begin, "BEGIN IMMEDIATE"},
    {&StoreDb::Statements::commit, "COMMIT"},
    {&StoreDb::Statements::rollback, "ROLLBACK"},
    {&StoreDb::Statements::insert_event, "INSERT INTO events (job, seq, bytes, body) VALUES (?1, ?2, ?3, ?4)"},
    {&StoreDb::Statements::upsert_log,
     "INSERT INTO logs (job, seq, bytes, truncated) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (job) DO UPDATE SET "
     "seq = max(seq, excluded.seq), bytes = bytes + excluded.bytes, truncated = max(truncated, excluded.truncated)"},
    {&StoreDb::Statements::upsert_mark,
     "INSERT INTO marks (node, incarnation, seq) VALUES (?1, ?2, ?3) ON CONFLICT (node) DO UPDATE SET "
     "incarnation = excluded.incarnation, seq = excluded.seq"},
    {&StoreDb::Statements::raise_next_id, "UPDATE meta SET value = max(value, ?1) WHERE key = 'next_job_id'"},
    {&StoreDb::Statements::put_job,
     "INSERT OR REPLACE INTO jobs (id, owner, request_id, state, expires_ms, record, secret) "
     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
    {&StoreDb::Statements::put_process,
     "INSERT INTO processes (job, pid, record) VALUES (?1, ?2, ?3) ON CONFLICT (job, pid) DO UPDATE SET "
     "record = excluded.record"},
    {&StoreDb::Statements::delete_job, "DELETE FROM jobs WHERE id = ?1"},
    {&StoreDb::Statements::delete_processes, "DELETE FROM processes WHERE job = ?1"},
    {&StoreDb::Statements::delete_events, "DELETE FROM events WHERE job = ?1"},
    {&StoreDb::Statements::delete_log, "DELETE FROM logs WHERE job = ?1"},
    {&StoreDb::Statements::next_id, "SELECT value FROM meta WHERE key = 'next_job_id'"},
    {&StoreDb::Statements::logs,
     "SELECT jobs.id, coalesce(logs.seq, 0), coalesce(logs.bytes, 0), coalesce(logs.truncated, 0) "
     "FROM jobs LEFT JOIN logs ON logs.job = jobs.id"},
    {&StoreDb::Statements::job_states, "SELECT id, state FROM jobs"},
    {&StoreDb::Statements::get_job, "SELECT id, record, secret FROM jobs WHERE id = ?1"},
    {&StoreDb::Statements::find_request,
     "SELECT id, record, secret FROM jobs WHERE owner = ?1 AND request_id = ?2 ORDER BY id LIMIT 1"},
    // ?2: a bit mask of the states wanted (0: all); ?3: the owner ('': all).
    {&StoreDb::Statements::list_jobs,
     "SELECT id, record, secret FROM jobs WHERE id < ?1 AND (?2 = 0 OR ((1 << state) & ?2) != 0) "
     "AND (?3 = '' OR owner = ?3) ORDER BY id DESC"},
    {&StoreDb::Statements::unfinished, "SELECT id, record, secret FROM jobs WHERE state IN (1, 2) ORDER BY id"},
    {&StoreDb::Statements::processes, "SELECT record FROM processes WHERE job = ?1 ORDER BY rowid"},
    {&StoreDb::Statements::expired, "SELECT id FROM jobs WHERE expires_ms <= ?1 ORDER BY expires_ms, id"},
    {&StoreDb::Statements::read_events,
     "SELECT seq, body FROM events WHERE job = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4"},
    {&StoreDb::Statements::get_mark, "SELECT incarnation, seq FROM marks WHERE node = ?1"},
};

int64_t ToInt64(uint64_t value) {
  return static_cast<int64_t>(std::min<uint64_t>(value, std::numeric_limits<int64_t>::max()));
}

bool Finished(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED || state == v1::JOB_STATE_CANCELLED;
}

// A row of (id, record, secret).
absl::StatusOr<JobRecord> DecodeJob(const Query& query) {
  JobRecord record;
  record.id = static_cast<uint64_t>(query.Int(0));
  absl::string_view bytes = query.Blob(1);
  if (!record.job.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat("job ", record.id, ": its stored record does not parse"));
  }
  record.job.set_id(absl::StrCat(record.id));
  record.secret = std::string(query.Blob(2));
  return record;
}

std::string PageToken(uint64_t last_id) { return absl::WebSafeBase64Escape(absl::StrCat("before:", last_id)); }

// The id a page starts below; INT64_MAX for the first page.
absl::StatusOr<int64_t> PageStart(const std::string& token) {
  if (token.empty()) return std::numeric_limits<int64_t>::max();
  std::string text;
  int64_t id = 0;
  absl::string_view rest;
  if (absl::WebSafeBase64Unescape(token, &text)) rest = text;
  if (!absl::ConsumePrefix(&rest, "before:") || !absl::SimpleAtoi(rest, &id) || id <= 0) {
    return absl::InvalidArgumentError("page_token is not one a List response gave; start again without it");
  }
  return id;
}

// Every row of a query that selects (id, record, secret).
absl::StatusOr<std::vector<JobRecord>> ReadRecords(Query& query) {
  std::vector<JobRecord> records;
  while (true) {
    absl::StatusOr<bool> row = query.Step();
    if (!row.ok()) return row.status();
    if (!*row) return records;
    absl::StatusOr<JobRecord> record = DecodeJob(query);
    if (!record.ok()) return record.status();
    records.push_back(*std::move(record));
  }
}

bool LabelsMatch(const v1::Job& job, const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : labels) {
    auto it = job.spec().labels().find(key);
    if (it == job.spec().labels().end() || it->second != value) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<StoreDb>> StoreDb::Open(const std::string& path, bool fsync_each_commit) {
  absl::StatusOr<std::unique_ptr<sqlite::Db>> db = OpenStoreFile(path, fsync_each_commit);
  if (!db.ok()) return db.status();
  auto statements = std::make_unique<Statements>();
  for (const auto& [member, sql] : kSql) {
    absl::StatusOr<StatementPtr> statement = (*db)->Prepare(sql);
    if (!statement.ok()) return statement.status();
    (*statements).*member = *std::move(statement);
  }
  return std::unique_ptr<StoreDb>(new StoreDb(*std::move(db), std::move(statements)));
}

StoreDb::StoreDb(std::unique_ptr<sqlite::Db> db, std::unique_ptr<Statements> statements)
    : db_(std::move(db)), s_(std::move(statements)) {}

StoreDb::~StoreDb() = default;

absl::Status StoreDb::Begin() { return Query(*s_->begin).Run(); }
absl::Status StoreDb::Commit() { return Query(*s_->commit).Run(); }
void StoreDb::Rollback() { Query(*s_->rollback).Run().IgnoreError(); }  // fails only if nothing is open

absl::Status StoreDb::WriteBatch(const Batch& batch) {
  std::map<uint64_t, LogState> logs;  // what the batch adds to each job's log
  for (const QueuedEvent& entry : batch.entries) {
    if (entry.seq != 0) {
      absl::Status status = Query(*s_->insert_event)
                                .Bind(ToInt64(entry.job))
                                .Bind(ToInt64(entry.seq))
                                .Bind(ToInt64(entry.body.size()))
                                .BindBlob(entry.body)
                                .Run();
      if (!status.ok()) return status;
      LogState& log = logs[entry.job];
      log.seq = std::max(log.seq, entry.seq);
      log.bytes += entry.body.size();
      log.truncated |= entry.truncated;
    }
    if (entry.mark) {
      absl::Status status = Query(*s_->upsert_mark)
                                .BindText(entry.mark->node)
                                .BindText(entry.mark->incarnation)
                                .Bind(ToInt64(entry.mark->seq))
                                .Run();
      if (!status.ok()) return status;
    }
  }
  for (const auto& [job, log] : logs) {
    absl::Status status = Query(*s_->upsert_log)
                              .Bind(ToInt64(job))
                              .Bind(ToInt64(log.seq))
                              .Bind(ToInt64(log.bytes))
                              .Bind(log.truncated ? 1 : 0)
                              .Run();
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status StoreDb::PutJob(const JobRecord& record) {
  v1::Job job = record.job;
  job.clear_id();  // the id column is the truth
  job.clear_processes();
  job.clear_last_seq();
  Query query(*s_->put_job);
  query.Bind(ToInt64(record.id)).BindText(job.owner()).BindText(job.spec().request_id()).Bind(job.state());
  if (Finished(job.state())) {
    uint64_t ttl = job.spec().ttl_after_finished_ms();
    if (ttl == 0) ttl = kDefaultJobTtlMs;
    int64_t finished = std::max<int64_t>(job.finished_ms(), 0);
    query.Bind(ToInt64(static_cast<uint64_t>(finished) + std::min<uint64_t>(ttl, uint64_t{1} << 62)));
  } else {
    query.BindNull();
  }
  return query.BindBlob(job.SerializeAsString()).BindBlob(record.secret).Run();
}

absl::Status StoreDb::PutProcess(const ProcessRecord& process) {
  return Query(*s_->put_process)
      .Bind(ToInt64(process.job))
      .BindBlob(process.process.pid().SerializeAsString())
      .BindBlob(process.process.SerializeAsString())
      .Run();
}

absl::Status StoreDb::DeleteJob(uint64_t id) {
  for (sqlite::Statement* statement :
       {s_->delete_job.get(), s_->delete_processes.get(), s_->delete_events.get(), s_->delete_log.get()}) {
    absl::Status status = Query(*statement).Bind(ToInt64(id)).Run();
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status StoreDb::RaiseNextJobId(uint64_t next) { return Query(*s_->raise_next_id).Bind(ToInt64(next)).Run(); }

absl::StatusOr<uint64_t> StoreDb::NextJobId() {
  Query query(*s_->next_id);
  absl::StatusOr<bool> row = query.Step();
  if (!row.ok()) return row.status();
  if (!*row || query.Int(0) < 1) return absl::DataLossError(absl::StrCat(db_->path(), ": next_job_id is missing"));
  return static_cast<uint64_t>(query.Int(0));
}

absl::StatusOr<std::vector<std::pair<uint64_t, LogState>>> StoreDb::Logs() {
  std::vector<std::pair<uint64_t, LogState>> logs;
  Query query(*s_->logs);
  while (true) {
    absl::StatusOr<bool> row = query.Step();
    if (!row.ok()) return row.status();
    if (!*row) return logs;
    LogState log{static_cast<uint64_t>(query.Int(1)), static_cast<uint64_t>(query.Int(2)), query.Int(3) != 0};
    logs.emplace_back(static_cast<uint64_t>(query.Int(0)), log);
  }
}

absl::StatusOr<std::vector<std::pair<uint64_t, v1::JobState>>> StoreDb::JobStates() {
  std::vector<std::pair<uint64_t, v1::JobState>> states;
  Query query(*s_->job_states);
  while (true) {
    absl::StatusOr<bool> row = query.Step();
    if (!row.ok()) return row.status();
    if (!*row) return states;
    int64_t state = query.Int(1);
    states.emplace_back(static_cast<uint64_t>(query.Int(0)),
                        v1::JobState_IsValid(state) ? static_cast<v1::JobState>(state) : v1::JOB_STATE_UNSPECIFIED);
  }
}

absl::StatusOr<std::optional<JobRecord>> StoreDb::GetJob(uint64_t id) {
  Query query(*s_->get_job);
  query.Bind(ToInt64(id));
  absl::StatusOr<std::vector<JobRecord>> records = ReadRecords(query);
  if (!records.ok()) return records.status();
  if (records->empty()) return std::nullopt;
  return std::move(records->front());
}

absl::StatusOr<std::optional<JobRecord>> StoreDb::FindByRequestId(const std::string& owner,
                                                                  const std::string& request_id) {
  Query query(*s_->find_request);
  query.BindText(owner).BindText(request_id);
  absl::StatusOr<bool> row = query.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::nullopt;
  absl::StatusOr<JobRecord> record = DecodeJob(query);
  if (!record.ok()) return record.status();
  return *std::move(record);
}

absl::StatusOr<JobPage> StoreDb::ListJobs(const JobFilter& filter) {
  absl::StatusOr<int64_t> start = PageStart(filter.page_token);
  if (!start.ok()) return start.status();
  int64_t states = 0;
  for (v1::JobState state : filter.states) states |= int64_t{1} << (static_cast<int>(state) & 63);
  Query query(*s_->list_jobs);
  query.Bind(*start).Bind(states).BindText(filter.owner);
  JobPage page;
  const size_t page_size = std::max<uint32_t>(filter.page_size, 1);
  while (true) {
    absl::StatusOr<bool> row = query.Step();
    if (!row.ok()) return row.status();
    if (!*row) return page;
    absl::StatusOr<JobRecord> record = DecodeJob(query);
    if (!record.ok()) return record.status();
    if (!LabelsMatch(record->job, filter.labels)) continue;
    if (page.jobs.size() == page_size) {  // one more matches: there is a next page
      page.next_page_token = PageToken(page.jobs.back().id);
      return page;
    }
    page.jobs.push_back(*std::move(record));
  }
}

absl::StatusOr<std::vector<JobRecord>> StoreDb::Unfinished() {
  Query query(*s_->unfinished);
  return ReadRecords(query);
}

absl::StatusOr<std::vector<ProcessRecord>> StoreDb::Processes(uint64_t job) {
  std::vector<ProcessRecord> processes;
  Query query(*s_->processes);
  query.Bind(ToInt64(job));
  while (true) {
    absl::StatusOr<bool> row = query.Step();
    if (!row.ok()) return row.status();
    if (!*row) return processes;
    ProcessRecord process{.job = job};
    absl::string_view bytes = query.Blob(0);
    if (!process.process.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::DataLossError(absl::StrCat("job ", job, ": a stored process record does not parse"));
    }
    processes.push_back(std::move(process));
  }
}

absl::StatusOr<std::vector<uint64_t>> StoreDb::Expired(int64_t now_ms) {
  std::vector<uint64_t> ids;
  Query query(*s_->expired);
  query.Bind(now_ms);
  while (true) {
    absl::StatusOr<bool> row = query.Step();
    if (!row.ok()) return row.status();
    if (!*row) return ids;
    ids.push_back(static_cast<uint64_t>(query.Int(0)));
  }
}

absl::StatusOr<std::vector<v1::JobEvent>> StoreDb::ReadEvents(uint64_t job, uint64_t after, uint64_t through,
                                                              size_t max_events, size_t max_bytes) {
  std::vector<v1::JobEvent> events;
  Query query(*s_->read_events);
  query.Bind(ToInt64(job)).Bind(ToInt64(after)).Bind(ToInt64(through)).Bind(ToInt64(max_events));
  size_t bytes = 0;
  while (bytes <= max_bytes) {
    absl::StatusOr<bool> row = query.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    absl::string_view body = query.Blob(1);
    v1::JobEvent& event = events.emplace_back();
    if (!event.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return absl::DataLossError(absl::StrCat("job ", job, ": stored event ", query.Int(0), " does not parse"));
    }
    event.set_seq(static_cast<uint64_t>(query.Int(0)));
    bytes += body.size();
  }
  return events;
}

absl::StatusOr<std::optional<NodeMark>> StoreDb::GetMark(const std::string& node) {
  Query query(*s_->get_mark);
  query.BindText(node);
  absl::StatusOr<bool> row = query.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::nullopt;
  return NodeMark{node, std::string(query.Blob(0)), static_cast<uint64_t>(query.Int(1))};
}

}  // namespace constellation::daemon::master
