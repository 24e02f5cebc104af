#pragma once

// The job store's SQLite file: opening it, its schema (created in a new file,
// checked in an existing one) and its settings. The schema, in full:
//
//   meta      (key TEXT PRIMARY KEY, value INTEGER)      schema_version, next_job_id
//   jobs      (id INTEGER PRIMARY KEY, owner, request_id, state, expires_ms,
//              record BLOB, secret BLOB)                 record: v1::Job without processes, last_seq
//   processes (job, pid BLOB, record BLOB)               PRIMARY KEY (job, pid); rowid: order first put
//   events    (job, seq, bytes, body BLOB)               PRIMARY KEY (job, seq); body: v1::JobEvent, seq 0
//   logs      (job INTEGER PRIMARY KEY, seq, bytes, truncated)  each job's last seq and log size
//   marks     (node TEXT PRIMARY KEY, incarnation, seq)
//
// expires_ms is finished_ms + ttl for a finished job, NULL otherwise.
//
// Plain functions; the Db returned is the caller's (see sqlite.h for threads).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/master/sqlite.h"

namespace constellation::daemon::master {

inline constexpr int64_t kStoreSchemaVersion = 1;

// Opens (creating) the store at `path`: WAL journal, synchronous=FULL with
// `fsync_each_commit` (else NORMAL), and an exclusive lock held while the Db
// lives, so a second master on the same file is refused. A file that is not
// SQLite, an SQLite file that is not a job store, or a store of another
// schema version is a FailedPrecondition error naming the file and what to do.
absl::StatusOr<std::unique_ptr<sqlite::Db>> OpenStoreFile(const std::string& path, bool fsync_each_commit);

}  // namespace constellation::daemon::master
