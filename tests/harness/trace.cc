#include "tests/harness/trace.h"

#include <functional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace constellation::testing {

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
      trace.order.push_back(event.pid);
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
        trace.order.push_back(event.child);
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
        p.memory_exceeded = event.memory_exceeded;
        p.error = event.error;
        p.peak_mem = event.peak_mem;
        p.cpu_time = event.cpu_time;
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

std::vector<const ProcessRecord*> Trace::WithStdoutContaining(absl::string_view text) const {
  std::vector<const ProcessRecord*> found;
  for (const std::string& pid : order) {
    const ProcessRecord& p = processes.at(pid);
    if (absl::StrContains(p.out, text)) found.push_back(&p);
  }
  return found;
}

std::vector<std::string> Trace::Results() const {
  std::vector<std::string> found;
  for (const std::string& pid : order) {
    for (absl::string_view line : absl::StrSplit(processes.at(pid).out, '\n', absl::SkipEmpty())) {
      if (absl::ConsumePrefix(&line, "RESULT ")) found.emplace_back(line);
    }
  }
  return found;
}

std::vector<const ProcessRecord*> Trace::Tree() const {
  std::vector<const ProcessRecord*> found;
  std::function<void(const std::string&)> visit = [&](const std::string& pid) {
    const ProcessRecord* p = Find(pid);
    if (p == nullptr) return;
    found.push_back(p);
    for (const std::string& c : p->children) visit(c);
  };
  visit(root);
  return found;
}

std::string Trace::Dump() const {
  auto excerpt = [](const std::string& t) { return t.size() > 3000 ? "..." + t.substr(t.size() - 3000) : t; };
  std::string text;
  for (const std::string& pid : order) {
    const ProcessRecord& p = processes.at(pid);
    absl::StrAppend(&text, "process ", pid, " (parent ", p.parent.empty() ? "none" : p.parent, "): ", p.ExitString(),
                    ", children [", absl::StrJoin(p.children, ","), "]\n");
    if (!p.out.empty()) {
      absl::StrAppend(&text, "  stdout:\n    ", absl::StrReplaceAll(excerpt(p.out), {{"\n", "\n    "}}), "\n");
    }
    if (!p.err.empty()) {
      absl::StrAppend(&text, "  stderr:\n    ", absl::StrReplaceAll(excerpt(p.err), {{"\n", "\n    "}}), "\n");
    }
  }
  for (const std::string& e : errors) absl::StrAppend(&text, "trace error: ", e, "\n");
  return text;
}

}  // namespace constellation::testing
