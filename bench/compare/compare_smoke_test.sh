#!/usr/bin/env bash
# Smoke test of //bench:compare: a --quick run of raw TCP, our channels and
# our coroutines (ours-async, ours-async-echo: 8 B latency, fan-in) prints one JSON object per row with the fields tools rely on. It checks that
# the driver and the measurement programs work end to end, never a figure.
set -euo pipefail

driver="${RUNFILES_DIR:-$TEST_SRCDIR}/constellation/bench/compare/compare"
out="${TEST_TMPDIR:-/tmp}/compare.json"
"$driver" --quick --json --only=raw,ours,ours-async,ours-async-echo >"$out"

rows=$(wc -l <"$out")
if [ "$rows" -lt 20 ]; then
  echo "expected at least 20 rows, got $rows:" >&2
  cat "$out" >&2
  exit 1
fi
for field in '"system":"' '"pinning":"' '"size":' '"p50":' '"p99":' '"throughput":'; do
  missing=$(grep -cvF "$field" "$out" || true)
  if [ "$missing" -ne 0 ]; then
    echo "$missing rows lack $field:" >&2
    cat "$out" >&2
    exit 1
  fi
done
if grep -vq '^{.*}$' "$out"; then
  echo "a line that is not a JSON object:" >&2
  cat "$out" >&2
  exit 1
fi
for test in latency throughput rate start all_to_all memory connections; do
  grep -q "\"system\":\"ours\",.*\"test\":\"$test\"" "$out" || { echo "no $test row for ours" >&2; exit 1; }
done
# The connections row reports both ends.
for field in hub_idle_rss_kib other_idle_rss_kib hub_idle_heap_kib other_idle_heap_kib; do
  grep -q "\"test\":\"connections\".*\"$field\"" "$out" || { echo "the connections row lacks $field" >&2; exit 1; }
done
for row in 'ours-async",.*"test":"latency"' 'ours-async-echo",.*"test":"latency"' 'ours",.*"test":"fan_in"' \
  'ours-async",.*"test":"fan_in"' 'ours-async",.*"test":"fan_in_select"'; do
  grep -q "\"system\":\"$row" "$out" || { echo "no row $row" >&2; cat "$out" >&2; exit 1; }
done
echo "compare: $rows rows"
