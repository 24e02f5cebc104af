#!/usr/bin/env bash
# Runs the consumer's program (local mode) and checks what it prints.
set -euo pipefail
out=$("$TEST_SRCDIR/__main__/main" 2>&1) || { echo "main failed: $out" >&2; exit 1; }
if ! grep -q "sums 1 3 6 10, total 20" <<<"$out"; then
  echo "unexpected output:" >&2
  echo "$out" >&2
  exit 1
fi
