#include "tests/channels/scenarios_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

namespace channel_scenarios {

using constellation::pid;

void Fail(const std::string& what) {
  std::fprintf(stderr, "FAIL [%s] %s\n", pid().to_string().c_str(), what.c_str());
  std::fflush(stderr);
  std::exit(1);
}

void Expect(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

void ExpectOk(const absl::Status& status, const std::string& what) {
  if (!status.ok()) Fail(absl::StrCat(what, ": ", status.ToString()));
}

void Report(const std::string& line) { std::cout << "RESULT " << line << std::endl; }

std::string Payload(int64_t index, size_t length) {
  std::string s = absl::StrCat(index, ":");
  s.append(length, static_cast<char>('a' + index % 26));
  return s;
}

void ExpectPayload(const std::string& got, int64_t index, size_t length, const std::string& what) {
  std::string want = Payload(index, length);
  if (got != want) {
    Fail(absl::StrCat(what, ": value ", index, " is wrong: got ", got.size(), " bytes starting \"", got.substr(0, 24),
                      "\", expected ", want.size(), " bytes starting \"", want.substr(0, 24), "\""));
  }
}

size_t StreamLength(int64_t i) { return static_cast<size_t>((i * 7919) % 20000); }

uint64_t Rss() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

int IntArg(int argc, char** argv, int index, int fallback) { return argc > index ? std::atoi(argv[index]) : fallback; }

}  // namespace channel_scenarios
