#pragma once

// The channel scenarios program (issue 4, items 3 and 5): one program, many
// scenarios. argv[1] names the scenario (argv[2...] are its parameters);
// spawned processes re-execute this binary with the same argv and init()
// sends them to their function. tests/channels/*_test.cc run it under the
// local bridge with CONSTELLATION_FORMAT=json and check every process's exit,
// the bridge's exit code and the "RESULT ..." lines the scenarios print.
//
// Every process checks what it receives: on a wrong value or an unexpected
// status it prints "FAIL ..." on stderr and exits 1 (scenarios_util.h), so a
// wrong value shows as a non-zero exit in the bridge's report even where no
// RESULT line is checked.
//
// The scenarios live in one file per topic; each file's Run*Scenario runs the
// scenario `name` if it is one of its own (returning its exit code) and
// returns kUnknownScenario otherwise. scenarios_main.cc asks each in turn.

#include <string>

namespace channel_scenarios {

inline constexpr int kUnknownScenario = -1;

int RunBasicScenario(const std::string& name, int argc, char** argv);     // scenarios_basic.cc
int RunManyScenario(const std::string& name, int argc, char** argv);      // scenarios_many.cc
int RunFailureScenario(const std::string& name, int argc, char** argv);   // scenarios_failure.cc
int RunBulkScenario(const std::string& name, int argc, char** argv);      // scenarios_bulk.cc
int RunHostileScenario(const std::string& name, int argc, char** argv);   // scenarios_hostile.cc
int RunIntruderScenario(const std::string& name, int argc, char** argv);  // scenarios_intruder.cc
int RunLivenessScenario(const std::string& name, int argc, char** argv);  // scenarios_liveness.cc

// fd_limit's `ulimit -n`: before init(), so that every process has it.
void LimitFilesForScenario(int argc, char** argv);

}  // namespace channel_scenarios
