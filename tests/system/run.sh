#!/usr/bin/env bash
# What `make system` runs: the system tests (pytest) against a real PostgreSQL and Redis
# started in a temporary folder on free ports, always torn down afterwards.
#
# Usage: tests/system/run.sh BUILD_DIR [PYTEST_ARGS...]
#   BUILD_DIR    where feegate and banksim were built (relative to the repo, or absolute)
#   PYTEST_ARGS  passed to pytest after tests/system (e.g. -k checkout, -x); when they name
#                test files (tests/system/test_x.py[::name]), only those run
# Exports to pytest: FEEGATE_STACK_DIR (holds env and stack.env), FEEGATE_BIN, BANKSIM_BIN,
#   FEEGATE_MIGRATIONS, STACK_FREE_PORTS=1. pytest's fixtures start the gateway and banksim.
# Exit status: pytest's; "no tests collected" (5) counts as a failure.
# shellcheck disable=SC2317  # teardown runs from a trap
set -euo pipefail

log() { printf 'system: %s\n' "$*" >&2; }
die() { printf 'system: ERROR: %s\n' "$*" >&2; exit 1; }

(($# >= 1)) || die "usage: tests/system/run.sh BUILD_DIR [PYTEST_ARGS...]"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=$1; shift
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$REPO/$BUILD_DIR

export FEEGATE_BIN=$BUILD_DIR/feegate
export BANKSIM_BIN=$BUILD_DIR/banksim
export FEEGATE_MIGRATIONS=${FEEGATE_MIGRATIONS:-$REPO/migrations}
export STACK_FREE_PORTS=1
[[ -x $FEEGATE_BIN ]] || die "$FEEGATE_BIN not found (run make)"
[[ -x $BANKSIM_BIN ]] || die "$BANKSIM_BIN not found (run make)"

# Debian's python3 has python3-pytest, python3-requests and python3-psycopg; a python3 found
# earlier on PATH (pyenv, a venv) may not.
PYTHON=${PYTHON:-}
if [[ -z $PYTHON ]]; then
  for cand in /usr/bin/python3 python3; do
    if "$cand" -c 'import pytest, requests, psycopg, yaml' >/dev/null 2>&1; then PYTHON=$cand; break; fi
  done
  [[ -n $PYTHON ]] || die "no python3 with pytest, requests, psycopg and yaml (run deploy/install-deps.sh)"
fi

STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/feegate-system.XXXXXX")
chmod 755 "$STACK_DIR" # the PostgreSQL user must reach it
export FEEGATE_STACK_DIR=$STACK_DIR

# A sanitizer build's report fails the run even when no test saw it: a worker that ASan or UBSan
# ends is restarted by its master, so the test that met it may pass. ASan writes its reports to
# files of their own here; GCC's UBSan, when linked with ASan, ignores log_path and writes to
# stderr, which for the gateway, banksim and the fault proxy is their log in this folder, so the
# logs are searched for its reports too. (Without sanitizers these variables are never read.)
SAN_DIR=$STACK_DIR/sanitizer
mkdir -p "$SAN_DIR"
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SAN_DIR/asan
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:log_path=$SAN_DIR/ubsan
SAN_REPORT='^[^ ]+:[0-9]+:[0-9]+: runtime error: |^==[0-9]+==ERROR: [A-Za-z]+Sanitizer|^SUMMARY: [A-Za-z]+Sanitizer'

teardown() {
  local rc=$?
  trap - EXIT INT TERM
  log "tearing down the stack in $STACK_DIR"
  bash "$REPO/deploy/stack.sh" destroy "$STACK_DIR" || log "warning: stack destroy failed"
  rm -rf -- "$STACK_DIR"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting PostgreSQL and Redis in $STACK_DIR"
bash "$REPO/deploy/stack.sh" start "$STACK_DIR"

cd "$REPO"
# test files or node ids among the arguments run alone; otherwise the whole folder
TARGETS=(tests/system)
for a in "$@"; do [[ $a == tests/system/* ]] && TARGETS=(); done
log "running: $PYTHON -m pytest -q ${TARGETS[*]} $*"
rc=0
"$PYTHON" -m pytest -q -p no:cacheprovider "${TARGETS[@]}" "$@" || rc=$?
if ((rc == 5)); then
  log "FAILED: pytest collected no tests"
  rc=1
elif ((rc != 0)); then
  log "FAILED: pytest exited with status $rc"
fi
mapfile -t reports < <(find "$SAN_DIR" -type f; grep -rlIE --include='*.log' "$SAN_REPORT" "$STACK_DIR" || true)
if ((${#reports[@]})); then
  for f in "${reports[@]}"; do
    log "sanitizer report in ${f#"$STACK_DIR"/}:"
    if [[ $f == "$SAN_DIR"/* ]]; then cat "$f" >&2; else grep -E -A 30 "$SAN_REPORT" "$f" | head -n 80 >&2; fi
  done
  log "FAILED: sanitizer reports in ${#reports[@]} file(s)"
  ((rc != 0)) || rc=1
fi
exit "$rc"
