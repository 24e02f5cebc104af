// Open MPI 4: ranks 0 (A) and 1 (B) of `mpirun -np 2`, blocking MPI_Send and
// MPI_Recv of MPI_BYTEs on MPI_COMM_WORLD. The driver picks the transport
// with `--mca pml ob1 --mca btl tcp,self` (TCP over loopback) or
// `--mca btl vader,self` (shared memory). Open MPI busy-polls: a rank
// waiting in MPI_Recv spins in its progress loop instead of sleeping, which
// buys latency with a whole core (and costs a lot when both ranks share one).
//
// Pinning: mpirun runs with `--bind-to none` and each rank pins itself (like
// every other system here) before MPI_Init, so the threads MPI starts inherit
// the affinity. See common.h for the protocol.
//
// Start-up (`mpirun -np 1`): rank 0 calls MPI_Comm_spawn for one process of
// this binary, which sends 8 bytes to it over the intercommunicator; the time
// runs from MPI_Comm_spawn to MPI_Recv returning.
#include <mpi.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_support.h"
#include "bench/compare/common.h"

namespace {

using compare::Args;
using compare::Die;

void Check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) Die(absl::StrCat(what, " failed: ", rc));
}

class MpiEndpoint : public compare::Endpoint {
 public:
  explicit MpiEndpoint(int peer) : peer_(peer) {}
  char* Prepare(size_t size) override {
    if (out_.size() < size) out_.resize(size);
    return out_.data();
  }
  absl::Status Send(size_t size) override {
    Check(MPI_Send(out_.data(), static_cast<int>(size), MPI_BYTE, peer_, 0, MPI_COMM_WORLD), "MPI_Send");
    return absl::OkStatus();
  }
  absl::StatusOr<std::string_view> Recv(size_t expected) override {
    if (in_.size() < expected) in_.resize(expected);
    MPI_Status status;
    Check(MPI_Recv(in_.data(), static_cast<int>(in_.size()), MPI_BYTE, peer_, 0, MPI_COMM_WORLD, &status), "MPI_Recv");
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    return std::string_view(in_.data(), count);
  }

 private:
  int peer_;
  std::string out_, in_;
};

// A spawned process of the start-up test: one message to its parent.
int RunSpawned() {
  MPI_Comm parent;
  MPI_Comm_get_parent(&parent);
  if (parent == MPI_COMM_NULL) Die("--role=spawned without a parent");
  char word[8] = {};
  Check(MPI_Send(word, sizeof(word), MPI_BYTE, 0, 0, parent), "MPI_Send");
  MPI_Comm_disconnect(&parent);
  MPI_Finalize();
  return 0;
}

int RunStarts(const Args& args) {
  std::string self = compare::SelfPath();
  std::vector<std::string> child_args = args.argv;
  child_args.push_back("--role=spawned");
  std::vector<char*> cargs;
  for (std::string& a : child_args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  compare::RunStarts(args, [&]() -> absl::StatusOr<int64_t> {
    int64_t t0 = bench::NowNs();
    MPI_Comm children;
    Check(
        MPI_Comm_spawn(self.c_str(), cargs.data(), 1, MPI_INFO_NULL, 0, MPI_COMM_SELF, &children, MPI_ERRCODES_IGNORE),
        "MPI_Comm_spawn");
    char word[8];
    Check(MPI_Recv(word, sizeof(word), MPI_BYTE, 0, 0, children, MPI_STATUS_IGNORE), "MPI_Recv");
    int64_t t1 = bench::NowNs();
    MPI_Comm_disconnect(&children);
    return t1 - t0;
  });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench::InitCpus();
  absl::StatusOr<Args> parsed = compare::ParseArgs(argc, argv);
  compare::DieIf(parsed.status(), "usage");
  Args args = *std::move(parsed);
  // Rank 1 of the measurement's job is B. The rank is known from mpirun's
  // environment before MPI_Init, so the rank pins itself first and MPI's
  // threads inherit the affinity.
  const char* rank = getenv("OMPI_COMM_WORLD_RANK");
  if (args.role == "a" && rank != nullptr && std::string(rank) == "1") args.role = std::string("b");
  if (!bench::PinProcess(args.role == "a" ? args.cpu_a : args.cpu_b)) Die("cannot pin");
  MPI_Init(&argc, &argv);
  if (args.role == "spawned") return RunSpawned();
  if (args.test == compare::Test::kStart) {
    RunStarts(args);
  } else {
    MpiEndpoint endpoint(args.role == "a" ? 1 : 0);
    if (args.role == "a") {
      compare::RunA(endpoint, args);
    } else {
      compare::RunB(endpoint, args);
    }
  }
  MPI_Finalize();
  return 0;
}
