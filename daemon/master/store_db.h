#pragma once

// The job store's queries and writes over its SQLite file (store_file.h has
// the schema): typed, with prepared statements and bound parameters only.
// The JobStore (job_store.h) adds the threads, the batching and the locks.
//
// Threading: not thread-safe; the caller serializes every call.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/master/event_queue.h"
#include "daemon/master/job_records.h"
#include "daemon/master/sqlite.h"

namespace constellation::daemon::master {

class StoreDb {
 public:
  // See OpenStoreFile.
  static absl::StatusOr<std::unique_ptr<StoreDb>> Open(const std::string& path, bool fsync_each_commit);
  ~StoreDb();
  StoreDb(const StoreDb&) = delete;
  StoreDb& operator=(const StoreDb&) = delete;

  absl::Status Begin();
  absl::Status Commit();
  void Rollback();

  // Writes; inside Begin/Commit.
  absl::Status WriteBatch(const Batch& batch);
  absl::Status PutJob(const JobRecord& job);
  absl::Status PutProcess(const ProcessRecord& process);
  absl::Status DeleteJob(uint64_t id);
  absl::Status RaiseNextJobId(uint64_t next);  // to `next` unless it is higher

  // Reads.
  absl::StatusOr<uint64_t> NextJobId();
  absl::StatusOr<std::vector<std::pair<uint64_t, LogState>>> Logs();           // every stored job's log
  absl::StatusOr<std::vector<std::pair<uint64_t, v1::JobState>>> JobStates();  // every stored job's state
  absl::StatusOr<std::optional<JobRecord>> GetJob(uint64_t id);
  absl::StatusOr<std::optional<JobRecord>> FindByRequestId(const std::string& owner, const std::string& request_id);
  absl::StatusOr<JobPage> ListJobs(const JobFilter& filter);
  absl::StatusOr<std::vector<JobRecord>> Unfinished();
  absl::StatusOr<std::vector<ProcessRecord>> Processes(uint64_t job);
  absl::StatusOr<std::vector<uint64_t>> Expired(int64_t now_ms);
  absl::StatusOr<std::vector<v1::JobEvent>> ReadEvents(uint64_t job, uint64_t after, uint64_t through,
                                                       size_t max_events, size_t max_bytes);
  absl::StatusOr<std::optional<NodeMark>> GetMark(const std::string& node);

  struct Statements;  // the prepared statements, defined in store_db.cc

 private:
  StoreDb(std::unique_ptr<sqlite::Db> db, std::unique_ptr<Statements> statements);

  std::unique_ptr<sqlite::Db> db_;
  std::unique_ptr<Statements> s_;  // destroyed before db_ (declared after it)
};

}  // namespace constellation::daemon::master
