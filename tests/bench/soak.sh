#!/usr/bin/env bash
# What `make soak` runs: order intake at half the saturation rate for DURATION seconds against a
# private stack, sampling every SAMPLE_EVERY seconds the gateway's resident memory (VmRSS summed
# over all its processes) and open file descriptors. Prints a table, writes bench/soak.json.
#
# Usage: tests/bench/soak.sh BUILD_DIR
# Environment (optional):
#   DURATION=600          seconds of load (try DURATION=30 for a quick look)
#   SAMPLE_EVERY=10       seconds between samples
#   SOAK_RATE=N           requests/s; default: half the intake saturation rate found in
#                         bench/results.json (from `make bench`), else found now by a quick search
#   SOAK_CONNECTIONS=128  keep-alive connections of the load generator
#   BENCH_WORKERS=2       gateway workers
set -euo pipefail
BENCH_PROG=soak
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# == 1)) || die "usage: tests/bench/soak.sh BUILD_DIR"
DURATION=${DURATION:-600}
SAMPLE_EVERY=${SAMPLE_EVERY:-10}
CONNS=${SOAK_CONNECTIONS:-128}
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 ]] || die "DURATION must be a whole number of seconds"
[[ $SAMPLE_EVERY =~ ^[0-9]+$ && $SAMPLE_EVERY -ge 1 ]] || die "SAMPLE_EVERY must be a whole number of seconds"

bench_init "$1"
bench_build
stack_start
check_durability
banksim_start
gateway_start
warm_up 3

RATE=${SOAK_RATE:-}
if [[ -z $RATE && -f $OUT/results.json ]]; then
  RATE=$("$PYTHON" -c '
import json, sys
for s in json.load(open(sys.argv[1]))["scenarios"]:
    if s["name"] == "intake" and s.get("rate"):
        print(int(s["rate"] / 2))' "$OUT/results.json" 2>/dev/null || true)
  [[ -n $RATE ]] && log "half the intake saturation rate in $OUT/results.json: $RATE/s"
fi
if [[ -z $RATE ]]; then
  log "finding the intake saturation rate (quick search)"
  timeout -k 10 120 "$BENCH_BIN/loadgen" --url "$FEEGATE_URL" --scenario orders --find-saturation \
    --connections "$CONNS" --rate-start 1000 --rate-factor 2 --step-duration 1.5 --step-warmup 0.5 \
    --refine 1 --duration 1 --warmup 1 --max-steps 10 --output "$TMP/saturation.json" ||
    die "the saturation search failed"
  RATE=$("$PYTHON" -c 'import json, sys; print(int(json.load(open(sys.argv[1]))["saturation_rate"] / 2))' \
    "$TMP/saturation.json")
fi
[[ $RATE =~ ^[0-9]+$ && $RATE -ge 1 ]] || die "no usable rate (got '$RATE'); set SOAK_RATE"

log "$RATE orders/s for ${DURATION}s, sampling every ${SAMPLE_EVERY}s"
timeout -k 10 $((DURATION + 120)) "$BENCH_BIN/loadgen" --url "$FEEGATE_URL" --scenario orders \
  --rate "$RATE" --duration "$DURATION" --warmup 0 --connections "$CONNS" \
  --timeline "$SAMPLE_EVERY" --output "$TMP/loadgen.json" 2>"$TMP/loadgen.err" &
LG=$!
bg_track "$LG"

SAMPLES=$TMP/samples.txt
: >"$SAMPLES"
sample() {
  local t=$1 rss fds n
  gateway_sample "$TMP/procs.txt"
  read -r rss fds n < <(awk '{r += $3; f += $4; n++} END {print r + 0, f + 0, n + 0}' "$TMP/procs.txt")
  echo "$t $rss $fds $n" >>"$SAMPLES"
  printf '  t=%4ss  rss %6.1f MiB  fds %5s  processes %s\n' "$t" "$(awk "BEGIN {print $rss / 1024}")" "$fds" "$n" >&2
}
T0=$SECONDS
next=0
while kill -0 "$LG" 2>/dev/null && ((SECONDS - T0 <= DURATION + 120)); do
  if ((SECONDS - T0 >= next)); then
    sample $((SECONDS - T0))
    next=$((next + SAMPLE_EVERY))
  fi
  sleep 0.2
done
rc=0
wait "$LG" || rc=$?
sample $((SECONDS - T0)) # after the load
((rc == 0)) || { tail -n 20 "$TMP/loadgen.err" >&2; die "the load generator failed ($rc)"; }

"$PYTHON" "$BENCH_LIB_DIR/report.py" soak "$OUT/soak.json" "$SAMPLES" "$TMP/loadgen.json" "$RATE" \
  "$DURATION" "$SAMPLE_EVERY"
