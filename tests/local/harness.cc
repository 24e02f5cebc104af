#include "tests/local/harness.h"

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

#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

extern char** environ;

namespace constellation::testing {
namespace {

std::string Errno(const char* what) { return absl::StrCat(what, ": ", strerror(errno)); }

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// The fields of /proc/<pid>/stat after the command name, split on spaces;
// [0] is the state (field 3).
std::vector<std::string> StatFields(pid_t pid) {
  // Plain read(): the process may vanish between open and read (ESRCH), which
  // a std::ifstream would turn into an exception.
  int fd = open(absl::StrCat("/proc/", pid, "/stat").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[4096];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof(buf));
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return {};
  std::string all(buf, n);
  size_t close = all.rfind(')');
  if (close == std::string::npos || close + 2 >= all.size()) return {};
  return absl::StrSplit(all.substr(close + 2), ' ', absl::SkipEmpty());
}

std::string Excerpt(const std::string& text, size_t max = 4000) {
  if (text.size() <= max) return text;
  return absl::StrCat("...", text.substr(text.size() - max));
}

}  // namespace

std::string ScenarioPath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  std::string path =
      absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "constellation", "/tests/local/scenarios");
  if (access(path.c_str(), X_OK) != 0) {
    ADD_FAILURE() << "test program not found at " << path << " (run under bazel test)";
  }
  return path;
}

std::string ExitStatus::ToString() const {
  if (timed_out) return "timed out";
  if (exited) return absl::StrCat("exit code ", code);
  return absl::StrCat("signal ", signal, " (", strsignal(signal), ")");
}

// ---- Program -------------------------------------------------------------------------

Program::Program(const std::string& path, RunOptions options) : options_(std::move(options)) {
  signal(SIGPIPE, SIG_IGN);  // a program that closed its stdin must not kill the test
  deadline_ = absl::Now() + options_.timeout;

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << Errno("pipe2");
    return;
  }
  std::vector<std::string> argv_storage = {path};
  for (const std::string& a : options_.args) argv_storage.push_back(a);
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::set<std::string> overridden = {"CONSTELLATION_FORMAT", "CONSTELLATION_INIT", "CONSTELLATION"};
  for (const auto& [k, v] : options_.env) overridden.insert(k);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string key = entry.substr(0, entry.find('='));
    if (!overridden.contains(key)) env_storage.push_back(entry);
  }
  if (options_.format.has_value()) env_storage.push_back("CONSTELLATION_FORMAT=" + *options_.format);
  for (const auto& [k, v] : options_.env) env_storage.push_back(k + "=" + v);
  std::vector<char*> env;
  for (std::string& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);  // its own process group, so all of it can be killed
  sigset_t none, defaults;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM}) sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  int rc = posix_spawn(&pid_, path.c_str(), &actions, &attr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
  stderr_fd_ = err[0];
  SetNonBlocking(stdin_fd_);
  SetNonBlocking(stdout_fd_);
  SetNonBlocking(stderr_fd_);
  if (rc != 0) {
    pid_ = -1;
    ADD_FAILURE() << "posix_spawn " << path << ": " << strerror(rc);
    status_ = ExitStatus{};
    return;
  }
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd_ < 0) ADD_FAILURE() << Errno("pidfd_open");
  if (!options_.stdin_data.empty()) WriteStdin(options_.stdin_data);
  if (options_.close_stdin) CloseStdin();
}

Program::~Program() {
  if (pid_ > 0) {
    // The bridge is unreaped (a zombie at worst), so its pid names our group still.
    kill(-pid_, SIGKILL);
    if (!reaped_) {
      int status;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  for (int fd : {pidfd_, stdin_fd_, stdout_fd_, stderr_fd_}) {
    if (fd >= 0) close(fd);
  }
}

void Program::WriteStdin(absl::string_view data) {
  if (stdin_fd_ < 0) {
    ADD_FAILURE() << "stdin is already closed";
    return;
  }
  stdin_pending_.append(data.data(), data.size());
  // Write what fits now; Pump() writes the rest.
  while (!stdin_pending_.empty()) {
    ssize_t n = write(stdin_fd_, stdin_pending_.data(), stdin_pending_.size());
    if (n > 0) {
      stdin_pending_.erase(0, n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) stdin_pending_.clear();
    break;
  }
}

void Program::CloseStdin() {
  stdin_close_requested_ = true;
  if (stdin_pending_.empty() && stdin_fd_ >= 0) {
    close(stdin_fd_);
    stdin_fd_ = -1;
  }
}

void Program::Signal(int signal) {
  if (pid_ > 0 && !status_.has_value()) kill(pid_, signal);
}

void Program::Drain(int* fd, std::string* into) {
  if (*fd < 0) return;
  char buf[65536];
  while (true) {
    ssize_t n = read(*fd, buf, sizeof(buf));
    if (n > 0) {
      into->append(buf, n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      close(*fd);
      *fd = -1;
    }
    return;
  }
}

void Program::SplitLines() {
  size_t newline;
  while ((newline = out_.find('\n', out_split_)) != std::string::npos) {
    lines_.push_back(out_.substr(out_split_, newline - out_split_));
    out_split_ = newline + 1;
  }
}

void Program::OnExited() {
  siginfo_t info{};
  int rc;
  do {
    rc = waitid(P_PID, pid_, &info, WEXITED | WNOWAIT);  // stays a zombie: see the header
  } while (rc < 0 && errno == EINTR);
  ExitStatus status;
  if (rc == 0 && info.si_code == CLD_EXITED) {
    status.exited = true;
    status.code = info.si_status;
  } else if (rc == 0) {
    status.signal = info.si_status;
  }
  status.timed_out = timed_out_;
  status_ = status;
  // Everything the program itself wrote is in the pipes now; processes it left
  // behind may hold them open, so read what is there and stop.
  Drain(&stdout_fd_, &out_);
  Drain(&stderr_fd_, &err_);
  SplitLines();
  // A last line without '\n'.
  if (out_split_ < out_.size()) {
    lines_.push_back(out_.substr(out_split_));
    out_split_ = out_.size();
  }
  for (int* fd : {&stdout_fd_, &stderr_fd_, &stdin_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

void Program::TimeOut() {
  timed_out_ = true;
  ADD_FAILURE() << "the program did not finish within " << options_.timeout << "; killing its process group.\n"
                << "stdout so far:\n"
                << Excerpt(out_) << "\nstderr so far:\n"
                << Excerpt(err_);
  kill(-pid_, SIGKILL);
}

bool Program::Pump() {
  if (status_.has_value()) return false;
  pollfd fds[4];
  int n = 0;
  if (stdout_fd_ >= 0) fds[n++] = {stdout_fd_, POLLIN, 0};
  if (stderr_fd_ >= 0) fds[n++] = {stderr_fd_, POLLIN, 0};
  if (stdin_fd_ >= 0 && !stdin_pending_.empty()) fds[n++] = {stdin_fd_, POLLOUT, 0};
  fds[n++] = {pidfd_, POLLIN, 0};
  absl::Duration left = deadline_ - absl::Now();
  int timeout_ms = timed_out_ ? -1 : static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(left)) + 1);
  int rc = poll(fds, n, timeout_ms);
  if (rc < 0 && errno != EINTR) {
    ADD_FAILURE() << Errno("poll");
    TimeOut();
    return true;
  }
  if (rc == 0) {
    if (!timed_out_) TimeOut();
    return true;
  }
  for (int i = 0; i < n; ++i) {
    if (fds[i].revents == 0) continue;
    if (fds[i].fd == stdout_fd_) {
      Drain(&stdout_fd_, &out_);
      SplitLines();
    } else if (fds[i].fd == stderr_fd_) {
      Drain(&stderr_fd_, &err_);
    } else if (fds[i].fd == stdin_fd_) {
      if (fds[i].revents & (POLLERR | POLLHUP)) {
        stdin_pending_.clear();
      } else {
        WriteStdin("");
      }
      if (stdin_pending_.empty() && stdin_close_requested_) CloseStdin();
    } else if (fds[i].fd == pidfd_) {
      OnExited();
      return true;
    }
  }
  return true;
}

bool Program::NextLine(std::string* line) {
  while (next_line_ >= lines_.size()) {
    if (status_.has_value()) return false;
    if (timed_out_) {
      Wait();
      return false;
    }
    Pump();
  }
  *line = lines_[next_line_++];
  return true;
}

ExitStatus Program::Wait() {
  if (pid_ <= 0) return ExitStatus{};
  while (!status_.has_value()) Pump();
  return *status_;
}

std::vector<pid_t> Program::GroupMembers() const {
  std::vector<pid_t> members;
  if (pid_ <= 0) return members;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return members;
  std::string group = absl::StrCat(pid_);
  while (dirent* entry = readdir(dir)) {
    pid_t pid = atoi(entry->d_name);
    if (pid <= 0 || pid == pid_) continue;
    std::vector<std::string> fields = StatFields(pid);
    // state ppid pgrp ...
    if (fields.size() > 2 && fields[2] == group) members.push_back(pid);
  }
  closedir(dir);
  return members;
}

std::vector<pid_t> Program::WaitGroupEmpty(absl::Duration limit) const {
  absl::Time until = absl::Now() + limit;
  while (true) {
    std::vector<pid_t> left = GroupMembers();
    if (left.empty() || absl::Now() > until) return left;
    // Nothing to wait on for processes that are not our children: look again shortly.
    usleep(2000);
  }
}

// ---- JSON ----------------------------------------------------------------------------

absl::StatusOr<std::map<std::string, JsonValue>> ParseFlatJson(absl::string_view s) {
  size_t i = 0;
  auto ws = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
  };
  auto fail = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(why, " at column ", i, " of: ", s.substr(0, 300)));
  };
  auto parse_string = [&](std::string* out) -> bool {
    if (i >= s.size() || s[i] != '"') return false;
    ++i;
    while (i < s.size() && s[i] != '"') {
      char c = s[i++];
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i >= s.size()) return false;
      char e = s[i++];
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          if (i + 4 > s.size()) return false;
          int v = 0;
          for (int k = 0; k < 4; ++k) {
            char h = s[i++];
            v <<= 4;
            if (h >= '0' && h <= '9')
              v |= h - '0';
            else if (h >= 'a' && h <= 'f')
              v |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F')
              v |= h - 'A' + 10;
            else
              return false;
          }
          if (v >= 0x80) return false;  // the format only needs ASCII
          out->push_back(static_cast<char>(v));
          break;
        }
        default:
          return false;
      }
    }
    if (i >= s.size()) return false;
    ++i;
    return true;
  };

  std::map<std::string, JsonValue> object;
  ws();
  if (i >= s.size() || s[i] != '{') return fail("expected '{'");
  ++i;
  ws();
  if (i < s.size() && s[i] == '}') {
    ++i;
  } else {
    while (true) {
      ws();
      std::string key;
      if (!parse_string(&key)) return fail("expected a string key");
      ws();
      if (i >= s.size() || s[i] != ':') return fail("expected ':'");
      ++i;
      ws();
      JsonValue value;
      if (i < s.size() && s[i] == '"') {
        value.kind = JsonValue::kString;
        if (!parse_string(&value.str)) return fail("bad string");
      } else if (s.substr(i, 4) == "true") {
        value.kind = JsonValue::kBool;
        value.boolean = true;
        i += 4;
      } else if (s.substr(i, 5) == "false") {
        value.kind = JsonValue::kBool;
        i += 5;
      } else if (i < s.size() && (s[i] == '-' || (s[i] >= '0' && s[i] <= '9'))) {
        value.kind = JsonValue::kNumber;
        bool negative = s[i] == '-';
        if (negative) ++i;
        if (i >= s.size() || s[i] < '0' || s[i] > '9') return fail("bad number");
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') value.number = value.number * 10 + (s[i++] - '0');
        if (negative) value.number = -value.number;
      } else {
        return fail("expected a string, integer or boolean value");
      }
      if (object.contains(key)) return fail(absl::StrCat("duplicate key \"", key, "\""));
      object[key] = value;
      ws();
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      if (i < s.size() && s[i] == '}') {
        ++i;
        break;
      }
      return fail("expected ',' or '}'");
    }
  }
  ws();
  if (i != s.size()) return fail("text after the object");
  return object;
}

absl::StatusOr<Event> ParseEvent(absl::string_view line) {
  absl::StatusOr<std::map<std::string, JsonValue>> parsed = ParseFlatJson(line);
  if (!parsed.ok()) return parsed.status();
  const std::map<std::string, JsonValue>& o = *parsed;
  auto bad = [&](absl::string_view why) { return absl::InvalidArgumentError(absl::StrCat(why, ": ", line)); };
  auto keys_are = [&](std::set<std::string> want) {
    std::set<std::string> got;
    for (const auto& [k, v] : o) got.insert(k);
    return got == want;
  };
  auto string_field = [&](const char* key, std::string* out) {
    auto it = o.find(key);
    if (it == o.end() || it->second.kind != JsonValue::kString) return false;
    *out = it->second.str;
    return true;
  };
  auto is_pid = [](const std::string& p) {
    if (p.size() != 7) return false;
    for (char c : p) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
  };
  Event event;
  std::string kind;
  if (!string_field("event", &kind)) return bad("no \"event\" string");
  if (!string_field("pid", &event.pid) || !is_pid(event.pid)) return bad("no 7-hex-digit \"pid\"");
  if (kind == "spawn") {
    if (!keys_are({"event", "pid", "child"})) return bad("a spawn event has exactly event, pid, child");
    event.type = Event::kSpawn;
    if (!string_field("child", &event.child) || !is_pid(event.child)) return bad("no 7-hex-digit \"child\"");
  } else if (kind == "output") {
    auto fd = o.find("fd");
    if (fd == o.end() || fd->second.kind != JsonValue::kNumber || (fd->second.number != 1 && fd->second.number != 2)) {
      return bad("\"fd\" must be 1 or 2");
    }
    event.fd = static_cast<int>(fd->second.number);
    if (keys_are({"event", "pid", "fd", "data"})) {
      event.type = Event::kOutput;
      std::string b64;
      if (!string_field("data", &b64)) return bad("\"data\" must be a string");
      if (!absl::Base64Unescape(b64, &event.data)) return bad("\"data\" is not base64");
      if (absl::Base64Escape(event.data) != b64) return bad("\"data\" is not canonical padded base64");
    } else if (keys_are({"event", "pid", "fd", "eof"})) {
      event.type = Event::kEof;
      auto eof = o.find("eof");
      if (eof->second.kind != JsonValue::kBool || !eof->second.boolean) return bad("\"eof\" must be true");
    } else {
      return bad("an output event has event, pid, fd and either data or eof");
    }
  } else if (kind == "exit") {
    event.type = Event::kExit;
    if (keys_are({"event", "pid", "code"})) {
      auto code = o.find("code");
      if (code->second.kind != JsonValue::kNumber) return bad("\"code\" must be a number");
      event.code = static_cast<int>(code->second.number);
    } else if (keys_are({"event", "pid", "signal"})) {
      if (!string_field("signal", &event.signal) || SignalNumber(event.signal) < 0) {
        return bad("\"signal\" must name a signal like \"SIGABRT\"");
      }
    } else {
      return bad("an exit event has event, pid and either code or signal");
    }
  } else {
    return bad("unknown event");
  }
  return event;
}

int SignalNumber(const std::string& name) {
  for (int s = 1; s < NSIG; ++s) {
    const char* abbrev = sigabbrev_np(s);
    if (abbrev != nullptr && name == absl::StrCat("SIG", abbrev)) return s;
  }
  return -1;
}

std::string ProcessRecord::ExitString() const {
  if (exits == 0) return "never exited";
  if (code.has_value()) return absl::StrCat("code ", *code);
  return absl::StrCat("signal ", signal);
}

Trace ParseTrace(const std::vector<std::string>& lines) {
  Trace trace;
  for (size_t n = 0; n < lines.size(); ++n) {
    absl::StatusOr<Event> parsed = ParseEvent(lines[n]);
    if (!parsed.ok()) {
      trace.errors.push_back(absl::StrCat("line ", n + 1, ": ", parsed.status().message()));
      continue;
    }
    Event event = *std::move(parsed);
    event.line = n;
    auto it = trace.processes.find(event.pid);
    if (it == trace.processes.end()) {
      if (!trace.root.empty()) {
        trace.errors.push_back(
            absl::StrCat("line ", n + 1, ": pid ", event.pid, " speaks before any spawn line names it"));
        continue;
      }
      trace.root = event.pid;
      ProcessRecord root;
      root.pid = event.pid;
      root.first_line = n;
      it = trace.processes.emplace(event.pid, root).first;
    }
    ProcessRecord& p = it->second;
    if (p.exits > 0) {
      trace.errors.push_back(absl::StrCat("line ", n + 1, ": pid ", event.pid, " speaks after its exit line"));
    }
    if (!p.spoke) {
      p.spoke = true;
      p.first_line = n;
    }
    switch (event.type) {
      case Event::kSpawn: {
        if (trace.processes.contains(event.child)) {
          trace.errors.push_back(absl::StrCat("line ", n + 1, ": ", event.child,
                                              " was spawned after it already appeared (or spawned twice)"));
          break;
        }
        ProcessRecord child;
        child.pid = event.child;
        child.parent = event.pid;
        child.spawn_line = n;
        child.depth = p.depth + 1;
        p.children.push_back(event.child);
        trace.processes.emplace(event.child, child);
        break;
      }
      case Event::kOutput: {
        bool eof = event.fd == 1 ? p.out_eof : p.err_eof;
        if (eof) trace.errors.push_back(absl::StrCat("line ", n + 1, ": output on fd ", event.fd, " after its EOF"));
        (event.fd == 1 ? p.out : p.err) += event.data;
        break;
      }
      case Event::kEof: {
        bool& eof = event.fd == 1 ? p.out_eof : p.err_eof;
        if (eof) trace.errors.push_back(absl::StrCat("line ", n + 1, ": a second EOF on fd ", event.fd));
        eof = true;
        break;
      }
      case Event::kExit:
        ++p.exits;
        if (p.exits > 1) {
          trace.errors.push_back(absl::StrCat("line ", n + 1, ": pid ", event.pid, " exits a second time"));
          break;
        }
        p.exit_line = n;
        p.code = event.code;
        p.signal = event.signal;
        break;
    }
    trace.events.push_back(std::move(event));
  }
  if (trace.root.empty()) trace.errors.push_back("no events at all");
  for (const auto& [pid, p] : trace.processes) {
    if (p.exits == 0) trace.errors.push_back(absl::StrCat("pid ", pid, " never exits"));
  }
  return trace;
}

int Trace::ExpectedBridgeCode() const {
  for (const Event& e : events) {
    if (e.type != Event::kExit) continue;
    if (e.code.has_value() && *e.code != 0) return *e.code;
    if (!e.code.has_value()) return 128 + SignalNumber(e.signal);
  }
  return 0;
}

const ProcessRecord* Trace::Find(const std::string& pid) const {
  auto it = processes.find(pid);
  return it == processes.end() ? nullptr : &it->second;
}

const ProcessRecord& Trace::Root() const {
  static const ProcessRecord kNone;
  const ProcessRecord* root = Find(this->root);
  return root == nullptr ? kNone : *root;
}

std::vector<const ProcessRecord*> Trace::WithStdout(const std::string& out) const {
  std::vector<const ProcessRecord*> found;
  for (const auto& [pid, p] : processes) {
    if (p.out == out) found.push_back(&p);
  }
  return found;
}

std::string Trace::Dump() const {
  std::string text;
  for (const auto& [pid, p] : processes) {
    absl::StrAppend(&text, pid, " parent=", p.parent.empty() ? "-" : p.parent,
                    " children=", absl::StrJoin(p.children, ","), " ", p.ExitString(),
                    "\n   stdout: ", absl::CHexEscape(p.out.substr(0, 500)),
                    "\n   stderr: ", absl::CHexEscape(p.err.substr(0, 500)), "\n");
  }
  for (const std::string& e : errors) absl::StrAppend(&text, "error: ", e, "\n");
  return text;
}

bool EventReader::ReadUntil(const std::function<bool(const Event&)>& done) {
  std::string line;
  while (program_->NextLine(&line)) {
    absl::StatusOr<Event> event = ParseEvent(line);
    if (!event.ok()) {
      ADD_FAILURE() << event.status();
      continue;
    }
    if (root.empty()) root = event->pid;
    switch (event->type) {
      case Event::kSpawn:
        parent[event->child] = event->pid;
        break;
      case Event::kOutput:
        if (event->fd == 1) out[event->pid] += event->data;
        break;
      case Event::kEof:
        break;
      case Event::kExit:
        exited.insert(event->pid);
        break;
    }
    if (done(*event)) return true;
  }
  return false;
}

bool EventReader::ReadUntilStdout(const std::string& pid, const std::string& text) {
  if (out[pid].find(text) != std::string::npos) return true;
  return ReadUntil([&](const Event&) { return out[pid].find(text) != std::string::npos; });
}

// ---- RunScenario ------------------------------------------------------------------------

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

RunResult RunScenario(RunOptions options) {
  bool json = options.format.has_value() && *options.format == "json";
  std::string what = absl::StrJoin(options.args, " ");
  Program program(ScenarioPath(), std::move(options));
  RunResult result;
  result.exit = program.Wait();
  result.out = program.stdout_text();
  result.err = program.stderr_text();
  result.lines = program.lines();
  if (json) {
    result.trace = ParseTrace(result.lines);
    EXPECT_TRUE(result.trace.errors.empty()) << "scenario \"" << what << "\" broke the JSON format's invariants:\n"
                                             << result.trace.Dump() << "stderr:\n"
                                             << Excerpt(result.err);
    if (result.exit.exited && !result.exit.timed_out && result.trace.errors.empty()) {
      EXPECT_EQ(result.exit.code, result.trace.ExpectedBridgeCode())
          << "scenario \"" << what << "\": the bridge's exit code does not follow the first failure:\n"
          << result.trace.Dump();
    }
  }
  std::vector<pid_t> left = program.WaitGroupEmpty(absl::Seconds(10));
  EXPECT_TRUE(left.empty()) << "scenario \"" << what << "\" left " << left.size()
                            << " processes behind after it exited, e.g. OS pid " << (left.empty() ? 0 : left[0]);
  return result;
}

RunResult RunScenario(std::vector<std::string> args) {
  RunOptions options;
  options.args = std::move(args);
  return RunScenario(std::move(options));
}

char ProcessState(pid_t pid) {
  std::vector<std::string> fields = StatFields(pid);
  if (fields.empty() || fields[0].empty()) return '\0';
  return fields[0][0];
}

uint64_t ProcessStartTime(pid_t pid) {
  std::vector<std::string> fields = StatFields(pid);
  // starttime is field 22 of /proc/<pid>/stat; fields[0] is field 3.
  if (fields.size() < 20) return 0;
  return std::strtoull(fields[19].c_str(), nullptr, 10);
}

}  // namespace constellation::testing
