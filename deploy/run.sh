#!/usr/bin/env bash
# What `make run` runs after building: the local stack (PostgreSQL, Redis via deploy/stack.sh),
# the bank simulator and the gateway, in the foreground. Ctrl-C or SIGTERM stops all of it;
# the data under .run/ is kept for the next run.
#
# Usage: deploy/run.sh
# Environment (optional): FEEGATE_PORT (gateway port, default 8080 or a free one),
#   FEEGATE_WORKERS (default 2), FEEGATE_BIN (default build/feegate),
#   BANKSIM_BIN (default build/banksim), FEEGATE_RUN_DIR (default <repo>/.run).
# shellcheck disable=SC2317  # functions called from traps
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${FEEGATE_RUN_DIR:-$REPO/.run}
STACK=$REPO/deploy/stack.sh
FEEGATE_BIN=${FEEGATE_BIN:-$REPO/build/feegate}
BANKSIM_BIN=${BANKSIM_BIN:-$REPO/build/banksim}
FEEGATE_MIGRATIONS=${FEEGATE_MIGRATIONS:-$REPO/migrations}
export FEEGATE_BIN BANKSIM_BIN FEEGATE_MIGRATIONS
export FEEGATE_WORKERS=${FEEGATE_WORKERS:-2}

log() { printf 'run: %s\n' "$*" >&2; }
die() { printf 'run: ERROR: %s\n' "$*" >&2; exit 1; }

[[ -x $FEEGATE_BIN ]] || die "$FEEGATE_BIN not found: build it with 'make'"
[[ -x $BANKSIM_BIN ]] || die "$BANKSIM_BIN not found: build it with 'make'"

GW_PID=
BS_PID=
STACK_STARTED=0
CLEANED=0

# stop_proc NAME PID SECONDS: SIGTERM, wait, then SIGKILL its whole process group.
stop_proc() {
  local name=$1 pid=$2 secs=$3 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop within ${secs}s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  # leftovers of its group (workers), if any
  kill -KILL -- "-$pid" 2>/dev/null || true
}

cleanup() {
  ((CLEANED)) && return 0
  CLEANED=1
  trap '' INT TERM
  stop_proc gateway "$GW_PID" 30
  stop_proc banksim "$BS_PID" 10
  if ((STACK_STARTED)); then bash "$STACK" stop "$RUN_DIR" || true; fi
  log "stopped; data kept in $RUN_DIR (remove it with: bash deploy/stack.sh destroy .run)"
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup' EXIT

STACK_STARTED=1
bash "$STACK" start "$RUN_DIR"

set -a
# shellcheck source=/dev/null
. "$RUN_DIR/env"
set +a

mkdir -p "$RUN_DIR/logs"
log "starting banksim on $BANKSIM_URL (log: $RUN_DIR/logs/banksim.log)"
# setsid: own session and process group, so Ctrl-C reaches only this script, which then
# stops the gateway first (graceful SIGTERM), then banksim, then the stack.
setsid "$BANKSIM_BIN" </dev/null >>"$RUN_DIR/logs/banksim.log" 2>&1 &
BS_PID=$!

# PostgreSQL and Redis write their own logs in the stack (plain text); linked here beside ours
for key in PG_LOG REDIS_LOG; do
  f=$(sed -n "s/^$key=//p" "$RUN_DIR/stack.env" 2>/dev/null | tr -d "'\"")
  [[ -n $f ]] && ln -sfn "$f" "$RUN_DIR/logs/$(basename "$f")"
done
log "starting the gateway on $FEEGATE_URL with $FEEGATE_WORKERS workers (log: $RUN_DIR/logs/gateway.log)"
setsid "$FEEGATE_BIN" serve </dev/null >>"$RUN_DIR/logs/gateway.log" 2>&1 &
GW_PID=$!

ready=0
for ((i = 0; i < 300; i++)); do
  if ! kill -0 "$GW_PID" 2>/dev/null; then
    tail -n 30 "$RUN_DIR/logs/gateway.log" >&2 || true
    die "the gateway exited during startup"
  fi
  if ! kill -0 "$BS_PID" 2>/dev/null; then
    tail -n 30 "$RUN_DIR/logs/banksim.log" >&2 || true
    die "banksim exited during startup"
  fi
  if curl -fsS -o /dev/null --max-time 1 "$FEEGATE_URL/healthz" 2>/dev/null; then ready=1; break; fi
  sleep 0.1
done
((ready)) || die "the gateway did not answer $FEEGATE_URL/healthz within 30 s"

ENV_SHOWN=$RUN_DIR/env
[[ $ENV_SHOWN == "$PWD"/* ]] && ENV_SHOWN=${ENV_SHOWN#"$PWD"/}
cat <<EOF

  feegate is running.
    gateway        $FEEGATE_URL   (healthz, readyz, metrics)
    bank simulator $BANKSIM_URL
    credentials    $RUN_DIR/env   (demo API key, staff tokens, DATABASE_URL, ...)
    logs           $RUN_DIR/logs/ (gateway.log and banksim.log as JSON lines; PostgreSQL's, Redis's)
    staff console  $FEEGATE_URL/console/   (sign-ins: FEEGATE_FINANCE_EMAIL/_PASSWORD/_TOTP_SECRET,
                   FEEGATE_AGENCY_EMAIL/_PASSWORD in $RUN_DIR/env)

  Create a fee order (its checkout_url is the citizen's payment page):
    set -a; . $ENV_SHOWN; set +a
    curl -sS -X POST "\$FEEGATE_URL/v1/orders" \\
      -H "Authorization: Bearer \$FEEGATE_API_KEY" -H 'Content-Type: application/json' \\
      -d '{"reference":"HS-$(date +%Y%m%d%H%M%S)","agency":"XNC","description":"Lệ phí cấp hộ chiếu",
           "amount":200000,"return_url":"http://127.0.0.1:8000/done"}'

  Ctrl-C stops everything; the data is kept for the next 'make run'.

EOF

# Stay in the foreground until a signal, or until one of the two exits on its own.
set +e
wait -n "$GW_PID" "$BS_PID"
rc=$?
set -e
if ! kill -0 "$GW_PID" 2>/dev/null; then
  log "the gateway exited (status $rc); stopping everything"
  tail -n 30 "$RUN_DIR/logs/gateway.log" >&2 || true
else
  log "banksim exited (status $rc); stopping everything"
  tail -n 30 "$RUN_DIR/logs/banksim.log" >&2 || true
fi
exit 1
