# shellcheck shell=bash
# Shared by tests/bench/run.sh and tests/bench/soak.sh: a private stack (PostgreSQL, Redis,
# banksim, the gateway) in a temporary folder, process sampling, and a cleanup that stops
# everything they started. Source it, then call bench_init BUILD_DIR.
# shellcheck disable=SC2317  # functions run from traps

BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_LIB_DIR/../.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
[[ -x $PYTHON ]] || PYTHON=python3

log() { printf '%s: %s\n' "${BENCH_PROG:-bench}" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "${BENCH_PROG:-bench}" "$*" >&2; exit 1; }

BG_PIDS=()      # processes to stop at the end, in start order
STACK_DIR=      # set once deploy/stack.sh start has been called
GW_PID=
BANKSIM_PID=

# bench_init BUILD_DIR: absolute paths, output folders, the temporary folder and the trap.
bench_init() {
  BUILD=${1:?BUILD_DIR missing}
  [[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
  BENCH_BIN=$BUILD/bench
  OUT=$REPO/bench
  mkdir -p "$OUT"
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/feegate-bench.XXXXXX")
  chmod 755 "$TMP" # the PostgreSQL user must reach the stack under it
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # 10,000 idle connections need as many descriptors, in the load generator and in the gateway
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  WORKERS=${BENCH_WORKERS:-2}
}

bench_build() {
  [[ -x $BUILD/feegate ]] || die "$BUILD/feegate not found (run make)"
  make --no-print-directory -s -C "$BENCH_LIB_DIR" BUILD="$BUILD" || die "building the bench tools failed"
}

bg_track() { BG_PIDS+=("$1"); }

# All descendants of a process, depth first.
descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

# stop_pid PID [SECONDS]: SIGTERM, wait, then SIGKILL (its descendants too).
stop_pid() {
  local pid=$1 wait_s=${2:-20} i kids
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kids=$(descendants "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < wait_s * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "process $pid did not stop in ${wait_s}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  local k
  for k in $kids; do
    kill -0 "$k" 2>/dev/null && kill -KILL "$k" 2>/dev/null
  done
  return 0
}

bench_cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#BG_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${BG_PIDS[i]}"; done
  if [[ -n $STACK_DIR ]]; then
    bash "$REPO/deploy/stack.sh" destroy "$STACK_DIR" >/dev/null 2>&1 || log "warning: stack destroy failed"
  fi
  [[ -n ${TMP:-} ]] && rm -rf -- "$TMP"
  exit "$rc"
}

# PostgreSQL and Redis on free ports, migrations, demo data; exports DIR/env and DIR/stack.env.
stack_start() {
  STACK_DIR=$TMP/stack
  log "starting PostgreSQL and Redis in $STACK_DIR"
  if ! STACK_FREE_PORTS=1 FEEGATE_BIN=$BUILD/feegate FEEGATE_MIGRATIONS=$REPO/migrations \
    bash "$REPO/deploy/stack.sh" start "$STACK_DIR" >"$TMP/stack.log" 2>&1; then
    tail -n 40 "$TMP/stack.log" >&2
    die "the stack did not start"
  fi
  set -a
  # shellcheck disable=SC1091
  source "$STACK_DIR/env"
  # shellcheck disable=SC1091
  source "$STACK_DIR/stack.env"
  set +a
}

# psql on the bench stack's database, as the application role.
bench_psql() { "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"; }

# The fair rules: durable commits. Refuses to go on otherwise.
check_durability() {
  local fsync sync
  fsync=$(bench_psql -c 'SHOW fsync')
  sync=$(bench_psql -c 'SHOW synchronous_commit')
  [[ $fsync == on && $sync == on ]] || die "PostgreSQL must run with fsync=on and synchronous_commit=on (has $fsync, $sync)"
}

# wait_http URL SECONDS PID: until URL answers 2xx, while PID lives.
wait_http() {
  local url=$1 secs=$2 pid=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# banksim, when it has been built; it must answer at once (no simulated delays).
banksim_start() {
  if [[ ! -x $BUILD/banksim ]]; then
    log "no $BUILD/banksim yet: scenarios that need the bank are skipped"
    return 0
  fi
  BANKSIM_DELAY_MS=0 "$BUILD/banksim" >"$TMP/banksim.log" 2>&1 &
  BANKSIM_PID=$!
  bg_track "$BANKSIM_PID"
  local i
  for ((i = 0; i < 100; i++)); do
    # any HTTP answer means it listens
    if curl -s -o /dev/null --max-time 1 "$BANKSIM_URL/" 2>/dev/null; then return 0; fi
    kill -0 "$BANKSIM_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$TMP/banksim.log" >&2 || true
  log "warning: banksim does not answer on $BANKSIM_URL"
  BANKSIM_PID=
}

# The per-client rate limit (FEEGATE_RATE_LIMIT_RPS, 429 above it) would cap every scenario at
# its default, since the load comes from one demo client: it is set out of reach but stays on,
# so its cost is still measured.
RATE_LIMIT_RPS=${BENCH_RATE_LIMIT_RPS:-10000000}
gateway_start() {
  log "starting the gateway ($WORKERS workers) on $FEEGATE_URL"
  # BENCH_RECEIPT_KEY= (set, empty) runs without the receipt numberer, to measure its cost
  FEEGATE_RECEIPT_KEY=${BENCH_RECEIPT_KEY-${FEEGATE_RECEIPT_KEY:-}} \
  FEEGATE_WORKERS=$WORKERS FEEGATE_RATE_LIMIT_RPS=$RATE_LIMIT_RPS "$BUILD/feegate" serve \
    >>"$TMP/gateway.log" 2>&1 &
  GW_PID=$!
  bg_track "$GW_PID"
  if ! wait_http "$FEEGATE_URL/readyz" 30 "$GW_PID"; then
    tail -n 40 "$TMP/gateway.log" >&2 || true
    die "the gateway is not ready on $FEEGATE_URL"
  fi
}

gateway_alive() {
  kill -0 "$GW_PID" 2>/dev/null && curl -fsS -o /dev/null --max-time 5 "$FEEGATE_URL/healthz" 2>/dev/null
}

# Before a scenario: the gateway must be up. When it is gone (it crashed, or something on this
# machine stopped it), say so, show how it ended, and start it again.
GW_RESTARTS=0
gateway_ensure() {
  gateway_alive && return 0
  log "the gateway (pid $GW_PID) is not serving; the end of its log:"
  tail -n 8 "$TMP/gateway.log" | cut -c1-240 >&2 || true
  stop_pid "$GW_PID" 5
  GW_RESTARTS=$((GW_RESTARTS + 1))
  gateway_start
}

# gateway_sample FILE: one line per gateway process (master and all descendants):
# "pid role rss_kib open_fds".
gateway_sample() {
  local out=$1 pid role rss fds
  : >"$out"
  for pid in "$GW_PID" $(descendants "$GW_PID"); do
    role=worker
    [[ $pid == "$GW_PID" ]] && role=master
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
    [[ -n $rss ]] || continue
    fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    echo "$pid $role $rss $fds" >>"$out"
  done
}

# cpu_busy_pct [SECONDS]: how busy all CPUs were over a short interval (default 0.5 s), in
# percent. Taken between scenarios, when the bench's own processes are idle, it shows what other
# programs on the machine take.
cpu_busy_pct() {
  local a b
  a=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat)
  sleep "${1:-0.5}"
  b=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {split(a, x, " "); split(b, y, " "); busy = y[1] - x[1];
    total = busy + y[2] - x[2]; pct = 0; if (total > 0) pct = 100 * busy / total + 0.5;
    printf "%d\n", pct}'
}

# A short run at a modest rate so that pools, caches and the page cache are warm.
warm_up() {
  local secs=$1
  log "warming up for ${secs}s"
  timeout -k 5 $((secs + 30)) "$BENCH_BIN/loadgen" --url "$FEEGATE_URL" --scenario orders --rate 500 \
    --duration "$secs" --warmup 0 --connections 16 --output "$TMP/warmup.json" 2>/dev/null ||
    log "warning: the warm-up run failed"
}

# create_order: prints the id of a new order of the demo client.
create_order() {
  curl -fsS --max-time 10 -X POST "$FEEGATE_URL/v1/orders" \
    -H "Authorization: Bearer $FEEGATE_API_KEY" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: bench-$$-$RANDOM-$SECONDS" \
    --data "{\"reference\":\"BENCH-$$-$RANDOM-$SECONDS\",\"agency\":\"$FEEGATE_AGENCY\",\"description\":\"Lệ phí cấp hộ chiếu\",\"amount\":200000,\"return_url\":\"https://portal.example/return\"}" |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
