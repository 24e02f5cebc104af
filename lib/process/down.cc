#include "lib/process/down.h"

#include <string.h>

#include "absl/strings/str_cat.h"

namespace constellation {
namespace {

std::string SignalText(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  return abbrev == nullptr ? absl::StrCat(signal) : absl::StrCat(signal, " (SIG", abbrev, ")");
}

struct Describe {
  std::string operator()(const Exited& e) const { return absl::StrCat("exited with code ", e.code); }
  std::string operator()(const Signaled& s) const { return "was killed by signal " + SignalText(s.signal); }
  std::string operator()(const OutOfMemory&) const { return "ran out of memory"; }
  std::string operator()(const NoProcess&) const {
    return "does not exist in this program (it never did, or is of another program)";
  }
  std::string operator()(const NodeLost&) const { return "is gone: its node was lost"; }
};

}  // namespace

bool Down::abnormal() const {
  const Exited* exited = std::get_if<Exited>(&reason);
  return exited == nullptr || exited->code != 0;
}

std::string Down::to_string() const {
  std::string text = absl::StrCat("process ", pid.to_string(), " ", std::visit(Describe(), reason));
  if (!detail.empty()) absl::StrAppend(&text, " (", detail, ")");
  return text;
}

}  // namespace constellation
