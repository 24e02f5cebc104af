#include "tests/cluster/netns_lab.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/harness/command.h"

namespace constellation::testing {

namespace {
bool AddressInUse(const std::string& subnet) {
  CommandResult addrs = RunCommand({"ip", "-4", "addr", "show"});
  CommandResult routes = RunCommand({"ip", "-4", "route", "show"});
  std::string prefix = subnet + ".";
  return absl::StrContains(addrs.output, prefix) || absl::StrContains(routes.output, prefix);
}
}  // namespace

namespace {
// The pid in a name made by an earlier NetnsLab ("cx<pid>-..." or "cx<pid>r"), 0 if none.
pid_t TagPid(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, "cx")) return 0;
  pid_t pid = 0;
  size_t i = 0;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') pid = pid * 10 + (name[i++] - '0');
  if (i == 0 || i >= name.size() || (name[i] != '-' && name[i] != 'r')) return 0;
  return pid;
}

// Namespaces and root links left by runs that were killed before their
// destructors ran (their pid is gone).
void RemoveStale() {
  CommandResult netns = RunCommand({"ip", "netns", "list"});
  for (absl::string_view line : absl::StrSplit(netns.output, '\n', absl::SkipEmpty())) {
    std::string name(line.substr(0, line.find(' ')));
    pid_t pid = TagPid(name);
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) RunCommand({"ip", "netns", "del", name});
  }
  CommandResult links = RunCommand({"ip", "-o", "link", "show"});
  for (absl::string_view line : absl::StrSplit(links.output, '\n', absl::SkipEmpty())) {
    // "12: cx123r@if11: <...": the name is the second field, up to '@' or ':'.
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 2) continue;
    absl::string_view name = fields[1].substr(0, fields[1].find_first_of("@:"));
    pid_t pid = TagPid(name);
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) RunCommand({"ip", "link", "del", std::string(name)});
  }
}
}  // namespace

NetnsLab::NetnsLab(int count) {
  RemoveStale();
  // Unique per run: the test's pid (names of dead runs were removed above).
  tag_ = absl::StrCat("cx", getpid());  // <= 9 characters: link names stay within 15
  // A /24 in 10.77.0.0/16 that nothing in the root namespace uses.
  std::random_device random;
  int third = static_cast<int>((getpid() + random()) % 250) + 1;
  for (int tries = 0; tries < 250; ++tries, third = third % 250 + 1) {
    subnet_ = absl::StrCat("10.77.", third);
    if (!AddressInUse(subnet_)) break;
  }
  switch_ns_ = tag_ + "-sw";
  root_link_ = tag_ + "r";
  if (!Run({"ip", "netns", "add", switch_ns_})) return;
  if (!Run({"ip", "-n", switch_ns_, "link", "add", "br0", "type", "bridge"})) return;
  if (!Run({"ip", "-n", switch_ns_, "link", "set", "br0", "up"})) return;
  for (int i = 0; i < count; ++i) {
    std::string ns = absl::StrCat(tag_, "-h", i);
    if (!Run({"ip", "netns", "add", ns})) return;
    namespaces_.push_back(ns);
    std::string host_end = absl::StrCat(tag_, "a", i), switch_end = absl::StrCat(tag_, "b", i);
    if (!Run({"ip", "link", "add", host_end, "type", "veth", "peer", "name", switch_end})) return;
    if (!Run({"ip", "link", "set", host_end, "netns", ns})) return;
    if (!Run({"ip", "link", "set", switch_end, "netns", switch_ns_})) return;
    if (!Run({"ip", "-n", switch_ns_, "link", "set", switch_end, "master", "br0"})) return;
    if (!Run({"ip", "-n", switch_ns_, "link", "set", switch_end, "up"})) return;
    if (!Run({"ip", "-n", ns, "addr", "add", ip(i) + "/24", "dev", host_end})) return;
    if (!Run({"ip", "-n", ns, "link", "set", host_end, "up"})) return;
    if (!Run({"ip", "-n", ns, "link", "set", "lo", "up"})) return;
  }
  std::string root_switch_end = tag_ + "s";
  if (!Run({"ip", "link", "add", root_link_, "type", "veth", "peer", "name", root_switch_end})) return;
  if (!Run({"ip", "link", "set", root_switch_end, "netns", switch_ns_})) return;
  if (!Run({"ip", "-n", switch_ns_, "link", "set", root_switch_end, "master", "br0"})) return;
  if (!Run({"ip", "-n", switch_ns_, "link", "set", root_switch_end, "up"})) return;
  if (!Run({"ip", "addr", "add", root_ip() + "/24", "dev", root_link_})) return;
  if (!Run({"ip", "link", "set", root_link_, "up"})) return;
  ok_ = true;
}

NetnsLab::~NetnsLab() {
  // The root namespace's veth (its peer goes with it), then the namespaces
  // (their veth ends and the bridge go with them).
  RunCommand({"ip", "link", "del", root_link_});
  for (const std::string& ns : namespaces_) RunCommand({"ip", "netns", "del", ns});
  RunCommand({"ip", "netns", "del", switch_ns_});
  std::vector<std::string> left = Leftovers();
  EXPECT_TRUE(left.empty()) << "left behind: " << absl::StrJoin(left, ", ");
}

bool NetnsLab::Cut(int i) { return Run({"ip", "-n", switch_ns_, "link", "set", absl::StrCat(tag_, "b", i), "down"}); }

bool NetnsLab::Heal(int i) { return Run({"ip", "-n", switch_ns_, "link", "set", absl::StrCat(tag_, "b", i), "up"}); }

bool NetnsLab::Run(const std::vector<std::string>& argv) {
  CommandResult r = RunCommand(argv);
  if (r.code == 0) return true;
  error_ = absl::StrCat("`", absl::StrJoin(argv, " "), "` failed (", r.code, "): ", r.output, r.error);
  return false;
}

std::string NetnsLab::ip(int i) const { return absl::StrCat(subnet_, ".", i + 1); }
std::string NetnsLab::root_ip() const { return subnet_ + ".254"; }

std::vector<std::string> NetnsLab::Leftovers() const {
  std::vector<std::string> left;
  CommandResult netns = RunCommand({"ip", "netns", "list"});
  CommandResult links = RunCommand({"ip", "-o", "link", "show"});
  for (absl::string_view line : absl::StrSplit(netns.output, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, tag_)) left.push_back(std::string(line));
  }
  for (absl::string_view line : absl::StrSplit(links.output, '\n', absl::SkipEmpty())) {
    if (absl::StrContains(line, tag_)) left.push_back(std::string(line.substr(0, 60)));
  }
  return left;
}

}  // namespace constellation::testing
