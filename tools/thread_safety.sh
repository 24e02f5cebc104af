#!/usr/bin/env bash
# Builds the data plane (//lib/net/...) with clang-14 and -Wthread-safety as an
# error (.bazelrc's --config=thread-safety): every member marked
# ABSL_GUARDED_BY must be touched under its lock (lib/net/mutex.h).
#
#   tools/thread_safety.sh [LABELS...]    default //lib/net/...
#
# Like tools/fuzz.sh: a batch-mode Bazel (no server left behind) with an output
# base of its own, so the normal gcc build's cache stays as it is.
set -uo pipefail
cd "$(dirname "$0")/.."

DIR=${THREAD_SAFETY_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/constellation-thread-safety/$(pwd | md5sum | cut -c1-12)}
mkdir -p "$DIR"
labels=("$@")
[ ${#labels[@]} -gt 0 ] || labels=(//lib/net/...)
CC=clang-14 CXX=clang++-14 bazel --batch --output_base="$DIR/bazel" build --config=thread-safety \
  --symlink_prefix="$DIR/bazel-" "${labels[@]}"
