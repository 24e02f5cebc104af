#!/usr/bin/env bash
# Builds and runs the libFuzzer targets (docs/fuzzing.md).
#
#   tools/fuzz.sh --list              the targets (labels)
#   tools/fuzz.sh TARGET SECONDS      build TARGET, fuzz it for SECONDS
#   tools/fuzz.sh --all SECONDS       build every target, fuzz each for SECONDS,
#                                     as many at once as there are cores (CI)
#
# TARGET is a label (//lib/core:codec_fuzzer) or a target's name (codec_fuzzer).
# Exits non-zero on a finding: a crash, sanitizer report (ASan, UBSan, LSan),
# timeout, or an allocation over the limits below. The input that caused it is
# kept under $FUZZ_DIR/findings/; fix the bug, then copy the input into the
# target's corpus directory (beside its source, NAME_corpus/) as a regression
# case, which `bazel test //...` then replays with gcc.
#
# The targets are built by Bazel with clang-14 (-fsanitize=fuzzer,address,
# undefined) in a second output base ($FUZZ_DIR/bazel, binaries under
# $FUZZ_DIR/bazel-bin), so the normal gcc build's cache stays as it is. Each run starts from the target's corpus in the
# repository plus what earlier runs found ($FUZZ_DIR/corpus/NAME); nothing is
# written into the repository.
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZ_DIR=${FUZZ_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/constellation-fuzz/$(pwd | md5sum | cut -c1-12)}
# Allocation limits that make a disproportionate allocation a finding: inputs
# are at most MAX_LEN bytes, so one malloc of 64 MiB is thousands of times the input.
MAX_LEN=4096
MALLOC_LIMIT_MB=64
RSS_LIMIT_MB=1024
TIMEOUT_S=10  # one input taking longer is a finding (a hang)

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# Every cc_fuzz_target in the workspace's BUILD files, as labels.
list_targets() {
  git ls-files --cached --others --exclude-standard -- '*BUILD.bazel' | while read -r build; do
    awk -v pkg="$(dirname "$build")" '
      /^cc_fuzz_target\(/ { in_rule = 1 }
      in_rule && /name = "/ { match($0, /"[^"]+"/); print "//" pkg ":" substr($0, RSTART + 1, RLENGTH - 2); in_rule = 0 }
    ' "$build"
  done | sort
}

resolve() {
  local target=$1
  case "$target" in
    //*) echo "$target" ;;
    *) list_targets | grep -E ":${target}\$" || { echo "fuzz: no target named $target (tools/fuzz.sh --list)" >&2; exit 2; } ;;
  esac
}

bazel_fuzz() {
  # --batch: no server is left behind. The clang toolchain is configured from CC.
  CC=clang-14 CXX=clang++-14 bazel --batch --output_base="$FUZZ_DIR/bazel" "$@"
}

# Builds the labels given; Bazel's output goes to a log, shown on failure.
build() {
  local log="$FUZZ_DIR/logs/build.log"
  mkdir -p "$FUZZ_DIR/logs"
  echo "fuzz: building $* with clang-14 (log $log)"
  if ! build_quietly "$@" >"$log" 2>&1; then
    grep -v 'ld.gold: warning' "$log" | tail -40 >&2
    return 1
  fi
}

build_quietly() {
  bazel_fuzz build --repo_env=CC=clang-14 --repo_env=CXX=clang++-14 \
    --copt=-fsanitize=fuzzer-no-link,address,undefined --copt=-fno-sanitize-recover=undefined \
    --copt=-fno-omit-frame-pointer --copt=-O1 --copt=-gline-tables-only \
    --linkopt=-fsanitize=address,undefined --linkopt=-fsanitize-link-c++-runtime --strip=never --symlink_prefix="$FUZZ_DIR/bazel-" "$@"
}

binary_of() {  # //a/b:name -> the built binary
  local label=${1#//}
  echo "$FUZZ_DIR/bazel-bin/${label%%:*}/${label##*:}"
}

# Runs one built target for $2 seconds; returns libFuzzer's status.
run_one() {
  local label=$1 seconds=$2
  local pkg=${label#//}
  pkg=${pkg%%:*}
  local name=${label##*:}
  local work="$FUZZ_DIR/corpus/$name" findings="$FUZZ_DIR/findings/$name"
  mkdir -p "$work" "$findings"
  local log="$FUZZ_DIR/logs/$name.log"
  mkdir -p "$(dirname "$log")"
  ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
    "$(binary_of "$label")" -max_total_time="$seconds" -timeout="$TIMEOUT_S" -max_len="$MAX_LEN" \
    -rss_limit_mb="$RSS_LIMIT_MB" -malloc_limit_mb="$MALLOC_LIMIT_MB" -print_final_stats=1 \
    -artifact_prefix="$findings/" "$work" "$pkg/${name}_corpus" >"$log" 2>&1
  local rc=$?
  local stats
  stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | sed 's/^#[0-9]*[[:space:]]*DONE *//')
  if [ $rc -eq 0 ]; then
    echo "fuzz: $label: no finding in ${seconds}s: ${stats:-$(tail -1 "$log")}"
  else
    echo "fuzz: $label: FINDING (exit $rc); log $log, input under $findings/:" >&2
    grep -E -A30 '^==[0-9]+==ERROR|runtime error|fuzz property violated|ERROR: libFuzzer' "$log" | head -40 >&2
  fi
  return $rc
}

[ $# -ge 1 ] || usage
case "$1" in
  --list)
    list_targets
    ;;
  --all)
    [ $# -eq 2 ] || usage
    mapfile -t targets < <(list_targets)
    build "${targets[@]}" || { echo "fuzz: build failed" >&2; exit 1; }
    # One fuzzer per core; each records its exit status in a file.
    rm -rf "$FUZZ_DIR/status" && mkdir -p "$FUZZ_DIR/status"
    for label in "${targets[@]}"; do
      while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n; done
      (
        run_one "$label" "$2"
        echo $? >"$FUZZ_DIR/status/${label##*:}"
      ) &
    done
    wait
    status=0
    for label in "${targets[@]}"; do
      [ "$(cat "$FUZZ_DIR/status/${label##*:}" 2>/dev/null)" = 0 ] || status=1
    done
    exit $status
    ;;
  -*)
    usage
    ;;
  *)
    [ $# -eq 2 ] || usage
    label=$(resolve "$1") || exit 2
    build "$label" || { echo "fuzz: build failed" >&2; exit 1; }
    run_one "$label" "$2"
    ;;
esac
