#include "daemon/master/store_file.h"

#include "absl/strings/str_cat.h"

namespace constellation::daemon::master {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  owner TEXT NOT NULL,
  request_id TEXT NOT NULL,
  state INTEGER NOT NULL,
  expires_ms INTEGER,
  record BLOB NOT NULL,
  secret BLOB NOT NULL
);
CREATE INDEX jobs_by_request ON jobs (owner, request_id);
CREATE INDEX jobs_by_state ON jobs (state);
CREATE INDEX jobs_by_expiry ON jobs (expires_ms);
CREATE TABLE processes (
  job INTEGER NOT NULL,
  pid BLOB NOT NULL,
  record BLOB NOT NULL,
  PRIMARY KEY (job, pid)
);
CREATE TABLE events (
  job INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (job, seq)
);
CREATE TABLE logs (
  job INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  truncated INTEGER NOT NULL
);
CREATE TABLE marks (node TEXT PRIMARY KEY, incarnation TEXT NOT NULL, seq INTEGER NOT NULL);
INSERT INTO meta (key, value) VALUES ('schema_version', 1), ('next_job_id', 1);
)sql";

absl::Status NotAStore(const std::string& path, absl::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat(path, " is not a job store of this master (", why,
                   "). Move it away to start with an empty store, or point --state-dir at the directory of a "
                   "store this version wrote"));
}

// In a transaction: an empty file gets the schema; anything else must be a
// store of kStoreSchemaVersion.
absl::Status CreateOrCheckSchema(sqlite::Db& db) {
  absl::StatusOr<std::unique_ptr<sqlite::Statement>> count = db.Prepare("SELECT count(*) FROM sqlite_schema");
  if (!count.ok()) return count.status();
  int64_t tables = 0;
  {
    sqlite::Query query(**count);
    absl::StatusOr<bool> row = query.Step();
    if (!row.ok()) return row.status();
    tables = query.Int(0);
  }
  if (tables == 0) return db.Exec(kSchema);

  absl::StatusOr<std::unique_ptr<sqlite::Statement>> version =
      db.Prepare("SELECT value FROM meta WHERE key = 'schema_version'");
  if (!version.ok()) return NotAStore(db.path(), "an SQLite database without the store's meta table");
  sqlite::Query query(**version);
  absl::StatusOr<bool> row = query.Step();
  if (!row.ok()) return row.status();
  if (!*row) return NotAStore(db.path(), "its meta table has no schema_version");
  if (query.Int(0) != kStoreSchemaVersion) {
    return NotAStore(
        db.path(), absl::StrCat("schema version ", query.Int(0), "; this master reads version ", kStoreSchemaVersion));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<sqlite::Db>> OpenStoreFile(const std::string& path, bool fsync_each_commit) {
  absl::StatusOr<std::unique_ptr<sqlite::Db>> db = sqlite::Db::Open(path);
  if (!db.ok()) return db.status();
  // Exclusive: the lock taken by the first write below is kept (and the WAL
  // needs no shared memory).
  absl::Status status = (*db)->Exec("PRAGMA locking_mode = EXCLUSIVE");
  if (status.ok()) status = (*db)->Exec("PRAGMA journal_mode = WAL");  // the first read of the file
  if (status.ok())
    status = (*db)->Exec(fsync_each_commit ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
  if (status.ok()) status = (*db)->Exec("BEGIN EXCLUSIVE");
  if (status.ok()) {
    status = CreateOrCheckSchema(**db);
    status = status.ok() ? (*db)->Exec("COMMIT") : status;
    if (!status.ok()) (*db)->Exec("ROLLBACK").IgnoreError();
  }
  if (absl::IsFailedPrecondition(status) &&
      status.message().find("file is not a database") != absl::string_view::npos) {
    return NotAStore(path, "it is not an SQLite database");
  }
  if (absl::IsUnavailable(status)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is in use by another master (", status.message(),
                                                      "). Stop it first, or give this one another --state-dir"));
  }
  if (!status.ok()) return status;
  return db;
}

}  // namespace constellation::daemon::master
