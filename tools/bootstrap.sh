#!/usr/bin/env bash
# Installs what Constellation's build, tests and benchmarks need, from Debian
# packages only. A fast no-op when everything is present; safe to run twice.
# Runs `apt-get update` only when something is missing.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap          # Bazel 4.2.3, offline-capable with the shims in third_party/
  g++
  libgrpc++-dev            # control plane
  protobuf-compiler-grpc   # grpc_cpp_plugin
  protobuf-compiler        # protoc
  libprotobuf-dev
  libabsl-dev
  libevent-dev             # data plane
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  libcereal-dev            # user types' serialize()
  libsystemd-dev           # sd_notify for the node daemon
  libssl-dev               # SHA-256 of uploaded binaries
  libsqlite3-dev           # the master's job store
  libtomlplusplus-dev      # toml++: nodes.toml
  clang-format             # tools/format.sh
  clang-14                 # tools/fuzz.sh: libFuzzer targets are built with clang
  libclang-rt-14-dev       # libFuzzer and the ASan/UBSan runtimes for clang-14
  llvm-14                  # llvm-symbolizer: file:line in fuzzer findings
  iproute2                 # ip netns for the multi-host tests
  procps                   # ps/pkill in tests and scripts
  slurmctld                # tests/slurm: a real Slurm (controller, compute daemon, munge)
  slurmd
  munge
  python3-grpcio           # examples/python/submit.py, the job API from Python (and its test)
  python3-protobuf
  python3-yaml             # tests/kubernetes: the manifests parsed offline
  # The peers //bench:compare measures us against (docs/performance.md), and its plot:
  libzmq3-dev              # ZeroMQ
  cppzmq-dev               # zmq.hpp, ZeroMQ's C++ binding
  libopenmpi-dev           # Open MPI 4 headers and libmpi
  openmpi-bin              # mpirun
  gnuplot-nox              # the latency plot (PNG)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "bootstrap: installing ${missing[*]}" >&2
SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done" >&2
