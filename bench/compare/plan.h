#pragma once

// What //bench:compare measures: the systems, and one round of measurements
// (every test, pinning and size for every system). The driver runs --runs
// rounds and reports each figure as the median over them, with min and max.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace compare {

struct System {
  std::string name;    // --only and JSON "system": raw, ours, zmq, grpc, mpi-tcp, mpi-shm
  std::string label;   // in the tables and the plot
  std::string binary;  // runfile, from the workspace root
  std::string btl;     // Open MPI's --mca btl (MPI only)
  std::string note;    // beside its rows: how it waits (busy polling)
  // Its binary's flags, for a variant of another system's binary (our
  // coroutines: compare_ours --async=...); such a system runs only its own
  // tests (latency of 8 B messages and fan-in), not the transfers and starts.
  std::vector<std::string> flags = {};
};

// In table order; raw TCP first (the floor every ratio is to). Ours is the
// second; our coroutines (ours-async, ours-async-echo) the last.
const std::vector<System>& Systems();

struct Measurement {
  const System* system = nullptr;
  std::string test;  // latency | throughput | rate | start | all_to_all | memory | connections | fan_in | fan_in_select
  std::string pinning;            // "same core" | "two cores" | "unpinned"
  int64_t size = 0;               // message bytes; processes for all_to_all and memory
  std::string binary;             // runfile (the scale rows use their own binary)
  std::vector<std::string> args;  // the binary's arguments, without --out
  int timeout_s = 120;
};

struct PlanOptions {
  bool quick = false;
  std::set<std::string> only;  // system names; empty: all
};

// One round. `round` rotates the order of the systems within each group so
// a drift in machine load does not always hit the same system first.
std::vector<Measurement> MakeRound(const PlanOptions& options, const std::vector<int>& cpus, int round);

// The command line of a measurement (binary_path resolved by the driver):
// the binary itself, or mpirun with it for MPI.
std::vector<std::string> CommandLine(const Measurement& m, const std::string& binary_path, const std::string& out);

// The mpirun flags every MPI measurement uses (also printed in the report).
std::string MpirunFlags(const Measurement& m);

}  // namespace compare
