#include "tests/harness/events.h"

#include <signal.h>

#include <string.h>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/harness/json.h"

namespace constellation::testing {

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
    // Beside code or signal: the optional fields resource enforcement adds.
    std::set<std::string> extra;
    for (const char* key : {"memory_exceeded", "error", "peak_mem", "cpu_time"}) {
      if (o.contains(key)) extra.insert(key);
    }
    auto keys_are_plus = [&](std::set<std::string> want) {
      want.insert(extra.begin(), extra.end());
      return keys_are(want);
    };
    if (keys_are_plus({"event", "pid", "code"})) {
      auto code = o.find("code");
      if (code->second.kind != JsonValue::kNumber) return bad("\"code\" must be a number");
      event.code = static_cast<int>(code->second.number);
    } else if (keys_are_plus({"event", "pid", "signal"})) {
      if (!string_field("signal", &event.signal) || SignalNumber(event.signal) < 0) {
        return bad("\"signal\" must name a signal like \"SIGABRT\"");
      }
    } else {
      return bad(
          "an exit event has event, pid, either code or signal, and optionally memory_exceeded, error, "
          "peak_mem and cpu_time");
    }
    if (extra.contains("memory_exceeded")) {
      auto it = o.find("memory_exceeded");
      if (it->second.kind != JsonValue::kBool || !it->second.boolean) return bad("\"memory_exceeded\" must be true");
      event.memory_exceeded = true;
    }
    if (extra.contains("error") && !string_field("error", &event.error)) return bad("\"error\" must be a string");
    if (extra.contains("peak_mem") != extra.contains("cpu_time")) return bad("peak_mem and cpu_time come together");
    if (extra.contains("peak_mem")) {
      const JsonValue& mem = o.find("peak_mem")->second;
      const JsonValue& cpu = o.find("cpu_time")->second;
      if (mem.kind != JsonValue::kNumber || cpu.kind != JsonValue::kNumber || mem.real < 0 || cpu.real < 0) {
        return bad("peak_mem and cpu_time must be numbers >= 0");
      }
      event.peak_mem = mem.real;
      event.cpu_time = cpu.real;
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

}  // namespace constellation::testing
