// The process pool's scenarios (issue 14, item 3), run under the local bridge
// by pool_test.cc: `scenarios <name> [args]`. Each prints "RESULT ..." lines
// the test checks, or "FAIL ..." on stderr and exits 1.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "constellation/constellation.h"

using namespace constellation;

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::cerr << "FAIL " << what << std::endl;
  std::exit(1);
}

template <class T>
T Get(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Fail(absl::StrCat(what, ": ", value.status().ToString()));
  return *std::move(value);
}

void Report(const std::string& line) { std::cout << "RESULT " << line << std::endl; }

// ---- Tasks (they run in the workers) ----

int64_t Square(int64_t x) { return x * x; }

struct Words {
  std::string title;
  std::vector<std::string> words;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(title, words);
  }
};

std::map<std::string, int> CountWords(Words in, int times) {
  std::map<std::string, int> counts;
  for (const std::string& w : in.words) counts[w] += times;
  counts[in.title] = -1;
  return counts;
}

int64_t WorkerOsPid() { return getpid(); }

void Nothing() {}

// Kills its worker the first time (it creates `marker`), returns 42 after.
int CrashOnce(std::string marker) {
  int fd = open(marker.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
  if (fd >= 0) raise(SIGKILL);
  return 42;
}

int AlwaysCrash() {
  raise(SIGKILL);
  return 0;
}

// ---- Scenarios (they run in the root) ----

void Many() {
  ProcessPool pool(4);
  std::vector<Future<int64_t>> squares;
  for (int64_t i = 0; i < 200; ++i) squares.push_back(pool.submit(Square, i));
  int64_t sum = 0;
  for (Future<int64_t>& f : squares) sum += Get(f.get(), "square");
  Report(absl::StrCat("sum ", sum));
  Words words{"title", {"a", "b", "a"}};
  std::map<std::string, int> counts = Get(pool.submit(CountWords, words, 2).get(), "count words");
  Report(absl::StrCat("counts a=", counts["a"], " b=", counts["b"], " title=", counts["title"]));
  auto lambda = pool.submit([](std::string s, int n) { return s + std::to_string(n); }, std::string("x"), 7);
  Report(absl::StrCat("lambda ", Get(lambda.get(), "lambda")));
}

Task<int64_t> Await(Future<int64_t> f) {
  absl::StatusOr<int64_t> v = co_await f;
  co_return v.ok() ? *v : -1;
}

Task<std::string> Coroutines(ProcessPool* pool) {
  auto [a, b, c] =
      co_await when_all(Await(pool->submit(Square, 3)), Await(pool->submit(Square, 4)), Await(pool->submit(Square, 5)));
  absl::Status done = co_await pool->submit(Nothing);
  Future<int64_t> six = pool->submit(Square, 6);
  int64_t selected = 0;
  absl::StatusOr<size_t> which =
      co_await select_async(on_result(six, [&](absl::StatusOr<int64_t> v) { selected = v.ok() ? *v : -1; }));
  co_return absl::StrCat(a, " ", b, " ", c, " ", done.ok() ? "void-ok" : done.ToString(), " select ",
                         which.ok() ? *which : 99, "=", selected);
}

void CoAwait() {
  ProcessPool pool(2);
  Report(absl::StrCat("coroutines ", block_on(Coroutines(&pool))));
  Future<int64_t> f = pool.submit(Square, 9);
  int64_t got = 0;
  size_t which = Get(select({on_result(f, [&](absl::StatusOr<int64_t> v) { got = v.ok() ? *v : -1; })}), "select");
  std::optional<absl::StatusOr<int64_t>> now = f.try_get();
  Report(absl::StrCat("select ", which, "=", got, " try_get ", now.has_value() && now->ok() ? **now : -1));
}

void RetryOnce(const std::string& marker) {
  ProcessPool pool(1);
  Report(absl::StrCat("retried ", Get(pool.submit(CrashOnce, marker).get(), "crash once")));
  Report(absl::StrCat("after ", Get(pool.submit(Square, 2).get(), "square after the crash")));
}

void AlwaysCrashes() {
  PoolOptions options;
  options.max_attempts = 3;
  ProcessPool pool(2, Resources(), options);
  absl::StatusOr<int> v = pool.submit(AlwaysCrash).get();
  if (v.ok()) Fail("a task that always crashes succeeded");
  Report(absl::StrCat("error ", absl::StatusCodeToString(v.status().code()), ": ", v.status().message()));
  Report(absl::StrCat("still works ", Get(pool.submit(Square, 3).get(), "square after the failure")));
}

// Run with room for two workers only: the pool works with those while the
// other two spawns wait for room (which they get once the pool stops the
// first two).
void ShortOfRoom() {
  ProcessPool pool(4);
  std::vector<Future<int64_t>> squares;
  for (int64_t i = 0; i < 20; ++i) squares.push_back(pool.submit(Square, i));
  int64_t sum = 0;
  for (Future<int64_t>& f : squares) sum += Get(f.get(), "square");
  Report(absl::StrCat("sum ", sum));
}

// Every worker's OS pid is gone once the pool is destroyed, and the futures
// still answer.
void NoOrphans() {
  std::vector<Future<int64_t>> pids;
  {
    ProcessPool pool(3);
    for (int i = 0; i < 30; ++i) pids.push_back(pool.submit(WorkerOsPid));
  }
  std::set<int64_t> distinct;
  for (Future<int64_t>& f : pids) distinct.insert(Get(f.get(), "worker pid after the pool's end"));
  for (int64_t pid : distinct) {
    if (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) {
      Fail(absl::StrCat("worker OS pid ", pid, " still exists after the pool was destroyed"));
    }
  }
  Report(absl::StrCat("workers gone ", distinct.empty() ? "none" : "all"));
}

}  // namespace

int main(int argc, char** argv) {
  init(Resources());
  std::string name = argc > 1 ? argv[1] : "";
  if (name == "many") {
    Many();
  } else if (name == "co_await") {
    CoAwait();
  } else if (name == "retry_once" && argc > 2) {
    RetryOnce(argv[2]);
  } else if (name == "always_crash") {
    AlwaysCrashes();
  } else if (name == "short_of_room") {
    ShortOfRoom();
  } else if (name == "no_orphans") {
    NoOrphans();
  } else {
    Fail(absl::StrCat("unknown scenario \"", name, "\""));
  }
  return 0;
}
