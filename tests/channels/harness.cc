#include "tests/channels/harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace constellation::channel_testing {
namespace {

std::string Errno(const char* what) { return absl::StrCat(what, ": ", strerror(errno)); }

// ---- JSON ------------------------------------------------------------------------------

class JsonParser {
 public:
  explicit JsonParser(absl::string_view s) : s_(s) {}

  absl::StatusOr<std::map<std::string, JsonValue>> Object() {
    std::map<std::string, JsonValue> out;
    Space();
    if (!Eat('{')) return Error("expected '{'");
    Space();
    if (Eat('}')) return Finish(std::move(out));
    while (true) {
      Space();
      absl::StatusOr<std::string> key = String();
      if (!key.ok()) return key.status();
      Space();
      if (!Eat(':')) return Error("expected ':'");
      Space();
      absl::StatusOr<JsonValue> value = Value();
      if (!value.ok()) return value.status();
      if (!out.emplace(*key, *value).second) return Error(absl::StrCat("duplicate key \"", *key, "\""));
      Space();
      if (Eat(',')) continue;
      if (Eat('}')) return Finish(std::move(out));
      return Error("expected ',' or '}'");
    }
  }

 private:
  absl::StatusOr<std::map<std::string, JsonValue>> Finish(std::map<std::string, JsonValue> out) {
    Space();
    if (i_ != s_.size()) return Error("trailing characters");
    return out;
  }
  absl::Status Error(absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(what, " at offset ", i_, " of: ", s_));
  }
  void Space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool EatWord(absl::string_view w) {
    if (s_.substr(i_, w.size()) == w) {
      i_ += w.size();
      return true;
    }
    return false;
  }
  absl::StatusOr<JsonValue> Value() {
    JsonValue v;
    if (i_ < s_.size() && s_[i_] == '"') {
      absl::StatusOr<std::string> str = String();
      if (!str.ok()) return str.status();
      v.kind = JsonValue::kString;
      v.str = *std::move(str);
      return v;
    }
    if (EatWord("true") || EatWord("false")) {
      v.kind = JsonValue::kBool;
      v.boolean = s_[i_ - 1] == 'e' && s_[i_ - 2] == 'u';
      return v;
    }
    size_t start = i_;
    if (Eat('-')) {
    }
    while (i_ < s_.size() && absl::ascii_isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    if (!absl::SimpleAtoi(s_.substr(start, i_ - start), &v.number)) return Error("expected a value");
    v.kind = JsonValue::kNumber;
    return v;
  }
  absl::StatusOr<std::string> String() {
    if (!Eat('"')) return Error("expected '\"'");
    std::string out;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character in a string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) break;
      char e = s_[i_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          if (i_ + 4 > s_.size()) return Error("short \\u escape");
          unsigned code = 0;
          for (int k = 0; k < 4; ++k) {
            char h = s_[i_++];
            code <<= 4;
            if (h >= '0' && h <= '9')
              code |= h - '0';
            else if (h >= 'a' && h <= 'f')
              code |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F')
              code |= h - 'A' + 10;
            else
              return Error("bad \\u escape");
          }
          if (code < 0x80) {
            out.push_back(static_cast<char>(code));
          } else if (code < 0x800) {
            out.push_back(static_cast<char>(0xc0 | (code >> 6)));
            out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
          } else {
            out.push_back(static_cast<char>(0xe0 | (code >> 12)));
            out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
          }
          break;
        }
        default:
          return Error("bad escape");
      }
    }
    return Error("unterminated string");
  }

  absl::string_view s_;
  size_t i_ = 0;
};

// ---- the process group -----------------------------------------------------------------

// Pids of live (not zombie) processes in process group `pgid`, other than `except`.
std::vector<pid_t> GroupMembers(pid_t pgid, pid_t except) {
  std::vector<pid_t> out;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return out;
  while (dirent* e = readdir(dir)) {
    pid_t p = 0;
    if (!absl::SimpleAtoi(e->d_name, &p) || p == except) continue;
    int fd = open(absl::StrCat("/proc/", p, "/stat").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) continue;
    std::string stat(buf, n);
    size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::vector<std::string> fields = absl::StrSplit(stat.substr(close_paren + 2), ' ');
    // fields[0] state, [1] ppid, [2] pgrp
    if (fields.size() < 3 || fields[0] == "Z" || fields[0] == "X") continue;
    pid_t group = 0;
    if (absl::SimpleAtoi(fields[2], &group) && group == pgid) out.push_back(p);
  }
  closedir(dir);
  return out;
}

// Owns the started process: whatever happens, its whole group is killed and it is reaped.
class Child {
 public:
  ~Child() { Kill(); }
  pid_t pid = -1;
  bool reaped = false;
  void Kill() {
    if (pid > 0 && !reaped) {
      // Unreaped (a zombie at worst), so its pid still names the group.
      kill(-pid, SIGKILL);
      int status;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      reaped = true;
    }
  }
};

class Fd {
 public:
  Fd() = default;
  ~Fd() { Close(); }
  int fd = -1;
  void Close() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

// Reads what is available; false at EOF (the fd is closed then).
void ReadAvailable(Fd& fd, std::string* into) {
  char buf[65536];
  while (fd.fd >= 0) {
    ssize_t n = read(fd.fd, buf, sizeof(buf));
    if (n > 0) {
      into->append(buf, n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) fd.Close();
    return;  // EOF or EAGAIN
  }
}

void ParseTrace(RunResult& run) {
  std::vector<std::string> lines = absl::StrSplit(run.raw_out, '\n');
  if (!lines.empty() && lines.back().empty())
    lines.pop_back();
  else if (!lines.empty())
    run.errors.push_back("stdout does not end with a newline: " + lines.back());
  auto known = [&](const std::string& pid) { return run.processes.contains(pid); };
  auto add = [&](const std::string& pid, const std::string& parent) {
    Process& p = run.processes[pid];
    p.pid = pid;
    p.parent = parent;
    run.order.push_back(pid);
    return &p;
  };
  for (size_t n = 0; n < lines.size(); ++n) {
    absl::StatusOr<std::map<std::string, JsonValue>> obj = ParseFlatJson(lines[n]);
    if (!obj.ok()) {
      run.errors.push_back(absl::StrCat("line ", n, ": ", obj.status().message()));
      continue;
    }
    auto str = [&](const char* key) -> std::string {
      auto it = obj->find(key);
      return it != obj->end() && it->second.kind == JsonValue::kString ? it->second.str : "";
    };
    std::string event = str("event"), pid = str("pid");
    if (pid.empty()) {
      run.errors.push_back(absl::StrCat("line ", n, " has no pid: ", lines[n]));
      continue;
    }
    if (run.root.empty()) add(run.root = pid, "");
    if (!known(pid)) {
      run.errors.push_back(absl::StrCat("line ", n, ": pid ", pid, " speaks before its spawn line"));
      add(pid, "?");
    }
    Process& p = run.processes[pid];
    if (p.exits > 0) run.errors.push_back(absl::StrCat("line ", n, ": pid ", pid, " has a line after its exit"));
    if (event == "spawn") {
      std::string child = str("child");
      if (child.empty() || known(child)) {
        run.errors.push_back(absl::StrCat("line ", n, ": bad or repeated spawn: ", lines[n]));
        continue;
      }
      add(child, pid);
      run.processes[pid].children.push_back(child);
    } else if (event == "output") {
      auto fd_it = obj->find("fd");
      int fd =
          fd_it != obj->end() && fd_it->second.kind == JsonValue::kNumber ? static_cast<int>(fd_it->second.number) : -1;
      if (fd != 1 && fd != 2) {
        run.errors.push_back(absl::StrCat("line ", n, ": bad fd: ", lines[n]));
        continue;
      }
      bool& eof = fd == 1 ? p.out_eof : p.err_eof;
      if (eof) run.errors.push_back(absl::StrCat("line ", n, ": output after EOF: ", lines[n]));
      if (obj->contains("eof")) {
        eof = true;
        continue;
      }
      std::string data;
      if (!obj->contains("data") || !absl::Base64Unescape(str("data"), &data)) {
        run.errors.push_back(absl::StrCat("line ", n, ": bad data: ", lines[n]));
        continue;
      }
      (fd == 1 ? p.out : p.err) += data;
    } else if (event == "exit") {
      ++p.exits;
      auto code = obj->find("code");
      if (code != obj->end() && code->second.kind == JsonValue::kNumber) {
        p.code = static_cast<int>(code->second.number);
      } else if (!str("signal").empty()) {
        p.signal = str("signal");
      } else {
        run.errors.push_back(absl::StrCat("line ", n, ": exit without code or signal: ", lines[n]));
      }
    } else {
      run.errors.push_back(absl::StrCat("line ", n, ": unknown event: ", lines[n]));
    }
  }
  for (const auto& [pid, p] : run.processes) {
    if (p.exits != 1) run.errors.push_back(absl::StrCat("pid ", pid, " exited ", p.exits, " times"));
  }
}

}  // namespace

absl::StatusOr<std::map<std::string, JsonValue>> ParseFlatJson(absl::string_view line) {
  return JsonParser(line).Object();
}

int SignalNumber(const std::string& name) {
  for (int s = 1; s < NSIG; ++s) {
    const char* abbrev = sigabbrev_np(s);
    if (abbrev != nullptr && name == absl::StrCat("SIG", abbrev)) return s;
  }
  return -1;
}

std::string Process::ExitString() const {
  if (exits == 0) return "never exited";
  if (code.has_value()) return absl::StrCat("code ", *code);
  return "signal " + signal;
}

int RunResult::ExpectedBridgeCode() const {
  // The exits in the order the bridge reported them: re-scan the raw lines.
  for (absl::string_view line : absl::StrSplit(raw_out, '\n', absl::SkipEmpty())) {
    absl::StatusOr<std::map<std::string, JsonValue>> obj = ParseFlatJson(line);
    if (!obj.ok() || !obj->contains("event") || obj->at("event").str != "exit") continue;
    if (obj->contains("code")) {
      if (obj->at("code").number != 0) return static_cast<int>(obj->at("code").number);
    } else if (obj->contains("signal")) {
      return 128 + SignalNumber(obj->at("signal").str);
    }
  }
  return 0;
}

const Process* RunResult::Find(const std::string& pid) const {
  auto it = processes.find(pid);
  return it == processes.end() ? nullptr : &it->second;
}

const Process& RunResult::Root() const {
  static const Process kNone;
  const Process* p = Find(root);
  return p != nullptr ? *p : kNone;
}

std::vector<const Process*> RunResult::WithStdout(absl::string_view text) const {
  std::vector<const Process*> out;
  for (const std::string& pid : order) {
    const Process& p = processes.at(pid);
    if (absl::StrContains(p.out, text)) out.push_back(&p);
  }
  return out;
}

std::vector<std::string> RunResult::Results() const {
  std::vector<std::string> out;
  for (const std::string& pid : order) {
    for (absl::string_view line : absl::StrSplit(processes.at(pid).out, '\n', absl::SkipEmpty())) {
      if (absl::ConsumePrefix(&line, "RESULT ")) out.emplace_back(line);
    }
  }
  return out;
}

std::string RunResult::Dump() const {
  std::string s = absl::StrCat("bridge: ",
                               timed_out       ? "TIMED OUT (group killed)"
                               : bridge_exited ? absl::StrCat("exit code ", bridge_code)
                                               : absl::StrCat("signal ", bridge_signal),
                               " after ", absl::FormatDuration(elapsed), "\n");
  for (const std::string& pid : order) {
    const Process& p = processes.at(pid);
    absl::StrAppend(&s, "process ", pid, " (parent ", p.parent.empty() ? "none" : p.parent, "): ", p.ExitString(), ", ",
                    p.children.size(), " children\n");
    auto excerpt = [](const std::string& t) { return t.size() > 3000 ? "..." + t.substr(t.size() - 3000) : t; };
    if (!p.out.empty())
      absl::StrAppend(&s, "  stdout:\n    ", absl::StrReplaceAll(excerpt(p.out), {{"\n", "\n    "}}), "\n");
    if (!p.err.empty())
      absl::StrAppend(&s, "  stderr:\n    ", absl::StrReplaceAll(excerpt(p.err), {{"\n", "\n    "}}), "\n");
  }
  if (!raw_err.empty()) absl::StrAppend(&s, "bridge stderr:\n", raw_err.substr(0, 4000), "\n");
  for (const std::string& e : errors) absl::StrAppend(&s, "trace error: ", e, "\n");
  return s;
}

std::string ScenarioPath() {
  if (const char* explicit_path = getenv("CHANNEL_SCENARIOS")) return explicit_path;
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "constellation", "/tests/channels/scenarios");
}

RunResult RunScenario(const std::vector<std::string>& args, absl::Duration timeout) {
  RunResult run;
  signal(SIGPIPE, SIG_IGN);
  std::string path = ScenarioPath();
  if (access(path.c_str(), X_OK) != 0) {
    ADD_FAILURE() << "scenarios program not found at " << path;
    run.errors.push_back("no program");
    return run;
  }
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << Errno("pipe2");
    return run;
  }
  Fd out, err;
  out.fd = out_pipe[0];
  err.fd = err_pipe[0];

  std::vector<std::string> argv_storage = {path};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    if (absl::StartsWith(*e, "CONSTELLATION")) continue;  // CONSTELLATION_FORMAT, CONSTELLATION_INIT, ...
    env_storage.emplace_back(*e);
  }
  env_storage.push_back("CONSTELLATION_FORMAT=json");
  std::vector<char*> env;
  for (std::string& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group, so all of it can be killed
  sigset_t none, defaults;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGALRM}) sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  Child child;
  absl::Time start = absl::Now();
  int rc = posix_spawn(&child.pid, path.c_str(), &actions, &attr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    child.pid = -1;
    ADD_FAILURE() << "posix_spawn " << path << ": " << strerror(rc);
    return run;
  }
  Fd pidfd;
  pidfd.fd = static_cast<int>(syscall(SYS_pidfd_open, child.pid, 0));
  if (pidfd.fd < 0) {
    ADD_FAILURE() << Errno("pidfd_open");
    return run;
  }
  fcntl(out.fd, F_SETFL, O_NONBLOCK);
  fcntl(err.fd, F_SETFL, O_NONBLOCK);

  absl::Time deadline = start + timeout;
  siginfo_t info{};
  bool exited = false;
  while (!exited) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      run.timed_out = true;
      break;
    }
    pollfd fds[3] = {{pidfd.fd, POLLIN, 0}, {out.fd, POLLIN, 0}, {err.fd, POLLIN, 0}};
    int n = poll(fds, 3, static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000)));
    if (n < 0 && errno != EINTR) {
      ADD_FAILURE() << Errno("poll");
      break;
    }
    ReadAvailable(out, &run.raw_out);
    ReadAvailable(err, &run.raw_err);
    if (fds[0].revents & POLLIN) {
      // WNOWAIT: the bridge stays a zombie, so its pid (the group id) is not reused until we reap it.
      info = {};
      if (waitid(P_PID, child.pid, &info, WEXITED | WNOWAIT) == 0 && info.si_pid == child.pid) exited = true;
    }
  }
  run.elapsed = absl::Now() - start;
  if (exited) {
    // What the bridge wrote before exiting is in the pipes; anyone else still
    // holding them must not keep us waiting.
    ReadAvailable(out, &run.raw_out);
    ReadAvailable(err, &run.raw_err);
    run.bridge_exited = info.si_code == CLD_EXITED;
    if (run.bridge_exited)
      run.bridge_code = info.si_status;
    else
      run.bridge_signal = info.si_status;
    // Nothing of the program may outlive the bridge (it exits once every process has).
    std::vector<pid_t> left = GroupMembers(child.pid, child.pid);
    absl::Time limit = absl::Now() + absl::Seconds(10);
    while (!left.empty() && absl::Now() < limit) {
      poll(nullptr, 0, 5);  // bounded re-check of a condition we cannot be notified of
      left = GroupMembers(child.pid, child.pid);
    }
    if (!left.empty()) {
      run.errors.push_back(
          absl::StrCat("processes left in the group after the bridge exited: ", absl::StrJoin(left, " ")));
    }
  }
  child.Kill();
  ParseTrace(run);
  if (run.timed_out) {
    ADD_FAILURE() << "scenario " << absl::StrJoin(args, " ") << " did not finish within "
                  << absl::FormatDuration(timeout) << "; killed its process group\n"
                  << run.Dump();
    return run;
  }
  for (const std::string& e : run.errors) ADD_FAILURE() << "trace: " << e;
  if (!run.raw_err.empty()) ADD_FAILURE() << "the bridge wrote to stderr in JSON mode: " << run.raw_err;
  EXPECT_EQ(run.BridgeShellCode(), run.ExpectedBridgeCode())
      << "the bridge's exit code does not follow the rule from the reported exits\n"
      << run.Dump();
  return run;
}

void ExpectAllExitedZero(const RunResult& run, size_t processes) {
  ASSERT_FALSE(run.timed_out);
  EXPECT_EQ(run.processes.size(), processes) << run.Dump();
  for (const std::string& pid : run.order) {
    const Process& p = run.processes.at(pid);
    EXPECT_TRUE(p.ExitedZero()) << "process " << pid << ": " << p.ExitString() << "\n" << run.Dump();
    EXPECT_FALSE(absl::StrContains(p.err, "FAIL")) << run.Dump();
  }
  EXPECT_TRUE(run.bridge_exited) << run.Dump();
  EXPECT_EQ(run.bridge_code, 0) << run.Dump();
}

std::string ExpectResult(const RunResult& run, absl::string_view prefix, size_t times) {
  std::vector<std::string> found;
  for (const std::string& r : run.Results()) {
    if (absl::StartsWith(r, prefix)) found.push_back(r);
  }
  EXPECT_EQ(found.size(), times) << "RESULT lines starting with \"" << prefix << "\"\n" << run.Dump();
  return found.empty() ? "" : found[0];
}

std::vector<const Process*> Tree(const RunResult& run) {
  std::vector<const Process*> out;
  std::function<void(const std::string&)> visit = [&](const std::string& pid) {
    const Process* p = run.Find(pid);
    if (p == nullptr) return;
    out.push_back(p);
    for (const std::string& c : p->children) visit(c);
  };
  visit(run.root);
  return out;
}

}  // namespace constellation::channel_testing
