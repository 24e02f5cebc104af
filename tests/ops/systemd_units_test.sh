#!/usr/bin/env bash
# The systemd units: `systemd-analyze verify` finds nothing wrong, `systemd-analyze
# security --offline=yes` rates each at most 5.0, and Documentation= names a
# file tools/install.sh installs. Skips (exit 0, saying so) only without systemd-analyze.
set -euo pipefail
units=(daemon/systemd/*.service)
daemon=$PWD/daemon/constellation
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is not installed (apt-get install systemd)"
  exit 0
fi
dir=$(mktemp -d "${TEST_TMPDIR:-/tmp}/units-XXXXXX")
trap 'rm -rf "$dir"' EXIT
status=0
for unit in "${units[@]}"; do
  name=$(basename "$unit")
  # verify wants ExecStart's binary to exist: the one just built.
  sed "s#/usr/local/bin/constellation#$daemon#" "$unit" >"$dir/$name"
  if ! out=$(systemd-analyze verify "$dir/$name" 2>&1) || [ -n "$out" ]; then
    echo "FAIL: systemd-analyze verify $name:"
    echo "$out"
    status=1
  fi
  line=$(systemd-analyze security --offline=yes "$dir/$name" 2>&1 | grep "Overall exposure level") || {
    echo "FAIL: systemd-analyze security --offline=yes $name printed no rating"
    status=1
    continue
  }
  score=$(echo "$line" | sed -E 's/.*: ([0-9]+\.[0-9]+).*/\1/')
  echo "$name: exposure $score"
  if ! awk -v s="$score" 'BEGIN { exit !(s <= 5.0) }'; then
    echo "FAIL: $name is rated $score (more than 5.0):"
    systemd-analyze security --offline=yes "$dir/$name" 2>&1 | grep -v "✓" || true
    status=1
  fi
  doc=$(sed -n 's#^Documentation=file:///usr/share/doc/constellation/##p' "$unit")
  if [ -z "$doc" ] || [ ! -f "docs/$doc" ]; then
    echo "FAIL: $name's Documentation= should name a file of docs/ (installed to /usr/share/doc/constellation/)"
    status=1
  fi
  for key in Type=notify WatchdogSec= User=constellation Delegate=yes CacheDirectory=constellation NoNewPrivileges=yes; do
    grep -q "^$key" "$unit" || { echo "FAIL: $name has no $key"; status=1; }
  done
done
grep -q "^StateDirectory=constellation" daemon/systemd/constellation-master.service || {
  echo "FAIL: the master's unit has no StateDirectory="
  status=1
}
exit $status
