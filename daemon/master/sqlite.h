#pragma once

// A small RAII wrapper over SQLite's C API: a connection (Db), a prepared
// statement (Statement) and one use of it (Query), with every error turned
// into an absl::Status that carries SQLite's message.
//
// SQL text is always a constant of the caller's; values from outside reach
// SQLite only as bound parameters.
//
// Ownership and threading: a Db owns its connection; Statements borrow it and
// must be destroyed before the Db. The connection is opened without SQLite's
// own mutex, so a Db, its Statements and Queries must be used by one thread at
// a time (the caller's lock).

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace constellation::daemon::master::sqlite {

class Statement;

class Db {
 public:
  // Opens (creating) the file at `path`; a symlink there is refused.
  static absl::StatusOr<std::unique_ptr<Db>> Open(const std::string& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs constant SQL (one or more statements, no parameters).
  absl::Status Exec(const char* sql);
  absl::StatusOr<std::unique_ptr<Statement>> Prepare(const char* sql);

  // `rc` (an SQLite result code) as a status: "<what>: <SQLite's message>".
  absl::Status Error(int rc, absl::string_view what) const;
  const std::string& path() const { return path_; }

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

// A prepared statement, used again and again through Query.
class Statement {
 public:
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

 private:
  friend class Db;
  friend class Query;
  Statement(const Db& db, sqlite3_stmt* stmt, const char* sql) : db_(db), stmt_(stmt), sql_(sql) {}
  const Db& db_;
  sqlite3_stmt* stmt_;
  const char* sql_;
};

// One execution of a Statement: parameters are bound in order (?1, ?2, ...),
// rows read with Step() and the column getters. The statement is reset when
// the Query goes out of scope, which also ends its read of the database.
class Query {
 public:
  explicit Query(Statement& statement) : statement_(statement) {}
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& Bind(int64_t value);
  Query& BindText(absl::string_view value);
  Query& BindBlob(absl::string_view value);
  Query& BindNull();

  // True: a row is ready; false: no more rows.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows.
  absl::Status Run();

  int64_t Int(int column) const;
  // Valid until the next Step() or the end of the Query.
  absl::string_view Blob(int column) const;

 private:
  void Check(int rc);
  Statement& statement_;
  int next_param_ = 1;
  int bind_error_ = SQLITE_OK;
};

}  // namespace constellation::daemon::master::sqlite
