#!/usr/bin/env bash
# Issue 16, item 2: Constellation in a real Slurm allocation.
#
# Starts munged, slurmctld and three slurmd (each in a network namespace of
# its own, so this machine looks like a controller and three nodes; see
# slurm_lab.sh), submits tools/slurm/constellation.sbatch with sbatch, waits
# for the bridge address it publishes, checks with `cdeploy nodes` that the
# two other nodes joined the master with what Slurm granted (--mem, one CPU),
# deploys //examples:workers into the allocation with cdeploy from the
# submitting host and checks `total 4500!`. Then it sends the batch script
# the SIGTERM that `--signal=B:TERM@60` sends before the walltime and checks
# that the joined nodes leave the master and the job completes with exit
# code 0. Every process, namespace and file is removed at the end, also on
# failure.
#
# Skips (exit 0 with a message) only where Slurm or munge is not installed.
# Needs root (network namespaces; slurmd). 20 to 30 s.
set -uo pipefail

runfiles="${TEST_SRCDIR:?run under bazel test}/${TEST_WORKSPACE:-constellation}"
# shellcheck source=tests/slurm/slurm_lab.sh
source "$runfiles/tests/slurm/slurm_lab.sh"

missing=$(lab_missing)
if [[ $missing == *"not installed"* ]]; then
  echo "SKIPPED: Slurm cannot run here: $missing"
  exit 0
fi
if [ -n "$missing" ]; then
  echo "FAIL: $missing" >&2
  exit 1
fi

daemon=$(realpath "$runfiles/daemon/constellation")
cdeploy=$(realpath "$runfiles/cli/cdeploy")
workers=$(realpath "$runfiles/examples/workers")
sbatch_script=$(realpath "$runfiles/tools/slurm/constellation.sbatch")
submit_dir=""
job=""

fail() {
  echo "FAIL: $*" >&2
  if [ -n "$submit_dir" ] && [ -n "$job" ] && [ -f "$submit_dir/constellation-$job.out" ]; then
    echo "----- the job's output" >&2
    cat "$submit_dir/constellation-$job.out" >&2
  fi
  lab_dump_logs
  exit 1
}

cleanup() {
  local status=$?
  lab_down
  [ -n "$submit_dir" ] && rm -rf "$submit_dir"
  local left
  left=$(lab_leftovers)
  if [ -n "$left" ]; then
    echo "FAIL: left behind: $left" >&2
    status=1
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 1' TERM INT

started=$SECONDS
lab_up 3 || fail "the Slurm lab did not start"
echo "slurm_test: Slurm up with 3 nodes on $LAB_SUBNET.0/24 after $((SECONDS - started)) s"

# Where the submitter and every node see the same files (a shared file
# system on a real cluster).
submit_dir=$(mktemp -d /tmp/slurm-submit.XXXXXX)
chmod 755 "$submit_dir"
job=$(cd "$submit_dir" && CONSTELLATION_BIN="$daemon" CONSTELLATION_INSECURE=1 CONSTELLATION_RUN_AS=root \
  sbatch --parsable --nodes=3 --mem=1000M --time=5 "$sbatch_script") || fail "sbatch refused the script"
job=${job%%;*}
echo "slurm_test: submitted job $job"

# The bridge's address, once node 0's daemon listens (bounded).
bridge_file="$submit_dir/constellation-$job.bridge"
deadline=$((SECONDS + 90))
until [ -s "$bridge_file" ]; do
  ((SECONDS < deadline)) || fail "no bridge address from job $job within 90 s"
  if ! squeue -h -j "$job" 2>/dev/null | grep -q .; then fail "job $job ended before its bridge listened"; fi
  sleep 0.2
done
bridge=$(cat "$bridge_file")
echo "slurm_test: the bridge listens on $bridge after $((SECONDS - started)) s"
[[ $bridge == "$LAB_SUBNET.1:"* ]] || fail "the bridge is at $bridge, not on n0 ($LAB_SUBNET.1)"

# Every node of the allocation is in the cluster: node 0 (the master's
# nodes.toml) and the two others joined, each with what Slurm granted it:
# --mem=1000M, and one CPU (the daemon's own affinity detection: Slurm's
# default of one CPU per task). Joining takes a moment after the bridge opens.
# One line per node: address, source, state, memory, CPUs (from the JSON
# lines of `cdeploy nodes`, whose fields come in the proto's order).
nodes_summary() {
  "$cdeploy" nodes "$bridge" --insecure --format=json 2>/dev/null |
    sed -E 's/^\{"addr":"([^"]*)","state":"([^"]*)","capacity":\{"mem":"([0-9]*)","cpu":([0-9.]*)\}.*"source":"([^"]*)".*$/\1 \5 \2 \3 \4/' |
    sort
}
deadline=$((SECONDS + 60))
while [ "$(nodes_summary | grep -c ' up ')" != 3 ]; do
  ((SECONDS < deadline)) || fail "not 3 nodes up 60 s after the bridge opened: $(nodes_summary)"
  sleep 0.2
done
summary=$(nodes_summary)
port=$(( ${bridge##*:} - 1 ))
expected=$(printf '%s\n' "$LAB_SUBNET.1:$port config up 1048576000 1" "$LAB_SUBNET.2:$port joined up 1048576000 1" \
  "$LAB_SUBNET.3:$port joined up 1048576000 1")
[ "$summary" = "$expected" ] || fail "the nodes are not what Slurm granted: got
$summary
expected
$expected"
echo "slurm_test: 3 nodes (2 joined) with 1000 MiB and 1 CPU each after $((SECONDS - started)) s"

output=$(cd "$submit_dir" && timeout 120 "$cdeploy" "$bridge" "$workers" --insecure 2>"$submit_dir/cdeploy.err")
code=$?
[ "$code" = 0 ] || fail "cdeploy exited $code: $(cat "$submit_dir/cdeploy.err")$output"
[[ $output == *"total 4500!"* ]] || fail "no 'total 4500!' in cdeploy's output: $output"
echo "slurm_test: //examples:workers printed 'total 4500!' after $((SECONDS - started)) s"

# What Slurm does before the walltime (#SBATCH --signal=B:TERM@60): SIGTERM
# to the batch script, which has srun pass it on; every daemon drains and
# exits 0, and so does the job.
scancel --batch --signal=TERM "$job" || fail "scancel --batch --signal=TERM $job failed"
deadline=$((SECONDS + 60))
while squeue -h -j "$job" 2>/dev/null | grep -q .; do
  ((SECONDS < deadline)) || fail "job $job still runs 60 s after SIGTERM"
  sleep 0.2
done
state=$(scontrol show job -o "$job" 2>/dev/null | grep -o 'JobState=[A-Z]* .*ExitCode=[0-9:]*')
[[ $state == "JobState=COMPLETED"*"ExitCode=0:0" ]] || fail "job $job did not end cleanly after SIGTERM: $state"
# The joined nodes left the master before it stopped.
[ "$(grep -c 'INFO join: node .* left' "$submit_dir/constellation-$job.out")" = 2 ] ||
  fail "the master did not see both joined nodes leave"
[ ! -e "$bridge_file" ] || fail "the job left $bridge_file behind"
[ ! -e "$submit_dir/constellation-$job.d" ] || fail "the job left its work directory behind"
echo "slurm_test: job $job drained on SIGTERM and completed; $((SECONDS - started)) s in all"
echo "----- the job's output"
cat "$submit_dir/constellation-$job.out"
echo "PASS"
