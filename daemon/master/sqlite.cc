#include "daemon/master/sqlite.h"

#include "absl/strings/str_cat.h"

namespace constellation::daemon::master::sqlite {
namespace {

absl::Status ToStatus(int rc, std::string message) {
  switch (rc & 0xff) {  // the primary code; extended codes refine it
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(std::move(message));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(std::move(message));
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return absl::FailedPreconditionError(std::move(message));
    case SQLITE_CORRUPT:
      return absl::DataLossError(std::move(message));
    default:
      return absl::InternalError(std::move(message));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path) {
  sqlite3* db = nullptr;
  // NOMUTEX: the caller serializes (see the header); NOFOLLOW: a symlink
  // planted at the path is not followed.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = absl::StrCat("open ", path, ": ", db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return ToStatus(rc, std::move(message));
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Db>(new Db(db, path));
}

Db::~Db() { sqlite3_close_v2(db_); }

absl::Status Db::Error(int rc, absl::string_view what) const {
  return ToStatus(rc, absl::StrCat(path_, ": ", what, ": ", sqlite3_errmsg(db_)));
}

absl::Status Db::Exec(const char* sql) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(rc, sql);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Statement>> Db::Prepare(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, absl::StrCat("prepare ", sql));
  return std::unique_ptr<Statement>(new Statement(*this, stmt, sql));
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Query::~Query() {
  sqlite3_reset(statement_.stmt_);
  sqlite3_clear_bindings(statement_.stmt_);
}

void Query::Check(int rc) {
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
  ++next_param_;
}

Query& Query::Bind(int64_t value) {
  Check(sqlite3_bind_int64(statement_.stmt_, next_param_, value));
  return *this;
}

Query& Query::BindText(absl::string_view value) {
  Check(sqlite3_bind_text64(statement_.stmt_, next_param_, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

Query& Query::BindBlob(absl::string_view value) {
  // A zero-length blob is still a blob (not NULL): data() may be null.
  Check(sqlite3_bind_blob64(statement_.stmt_, next_param_, value.empty() ? "" : value.data(), value.size(),
                            SQLITE_TRANSIENT));
  return *this;
}

Query& Query::BindNull() {
  Check(sqlite3_bind_null(statement_.stmt_, next_param_));
  return *this;
}

absl::StatusOr<bool> Query::Step() {
  if (bind_error_ != SQLITE_OK) return statement_.db_.Error(bind_error_, absl::StrCat("bind ", statement_.sql_));
  int rc = sqlite3_step(statement_.stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return statement_.db_.Error(rc, statement_.sql_);
}

absl::Status Query::Run() {
  absl::StatusOr<bool> row = Step();
  if (!row.ok()) return row.status();
  return absl::OkStatus();  // a statement with RETURNING would have rows; ours have none
}

int64_t Query::Int(int column) const { return sqlite3_column_int64(statement_.stmt_, column); }

absl::string_view Query::Blob(int column) const {
  const void* data = sqlite3_column_blob(statement_.stmt_, column);
  int size = sqlite3_column_bytes(statement_.stmt_, column);
  if (data == nullptr || size <= 0) return {};
  return absl::string_view(static_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace constellation::daemon::master::sqlite
