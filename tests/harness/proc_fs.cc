#include "tests/harness/proc_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace constellation::testing {

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
  size_t close_paren = all.rfind(')');  // the command name may hold spaces and ')'
  if (close_paren == std::string::npos || close_paren + 2 >= all.size()) return {};
  return absl::StrSplit(all.substr(close_paren + 2), ' ', absl::SkipEmpty());
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return pids;
  while (dirent* entry = readdir(dir)) {
    pid_t pid = 0;
    if (absl::SimpleAtoi(entry->d_name, &pid) && pid > 0) pids.push_back(pid);
  }
  closedir(dir);
  return pids;
}

std::vector<pid_t> GroupMembers(pid_t pgid, pid_t except, Zombies zombies) {
  std::vector<pid_t> members;
  if (pgid <= 0) return members;
  std::string group = absl::StrCat(pgid);
  for (pid_t pid : AllPids()) {
    if (pid == except) continue;
    std::vector<std::string> fields = StatFields(pid);
    if (fields.size() < 3 || fields[2] != group) continue;
    if (zombies == Zombies::kExclude && (fields[0] == "Z" || fields[0] == "X")) continue;
    members.push_back(pid);
  }
  return members;
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

bool IsDescendantOf(pid_t pid, pid_t ancestor) {
  for (int hops = 0; hops < 64 && pid > 1; ++hops) {
    std::vector<std::string> fields = StatFields(pid);
    if (fields.size() < 2) return false;
    pid = atoi(fields[1].c_str());
    if (pid == ancestor) return true;
  }
  return false;
}

}  // namespace constellation::testing
