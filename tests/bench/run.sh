#!/usr/bin/env bash
# What `make bench` runs: every benchmark scenario against a private stack, one table, the same
# figures in bench/results.json and a plot in bench/latency.png.
#
# Usage: tests/bench/run.sh BUILD_DIR [full|quick]
#   full   about 6 minutes on a 2-core machine (at most 10); quick (QUICK=1) under 2 minutes
# Environment (optional):
#   BENCH_SCENARIOS="intake status_reads"   run only these (default: all of SCENARIOS below)
#   BENCH_WORKERS=2       gateway workers, and ceiling server processes (default 2)
#   BENCH_CONNECTIONS=128 keep-alive connections of the load generator
#   BENCH_IDLE_CONNS=10000
#
# Fair rules (issue 5): fsync and synchronous_commit stay on; pgbench's naive posting runs with
# -c 16 -j 2; the ceiling server runs as many processes as the gateway has workers; a rate is
# saturated when a step achieves < 99 % of it, has any error, or p99 > 100 ms; RSS is summed
# over every gateway process.
#
# Adding a scenario: write a function scenario_NAME that first calls `record NAME kind=...
# label=... [ceiling=... target_...=...]` (fields: tests/bench/report.py) and then leaves its
# raw figures in $RAW (for an HTTP scenario, `saturate NAME LOADGEN_ARGS...` does it all; set
# NEEDS_GATEWAY=0 first if it does not use the gateway), and add NAME to SCENARIOS. Requests
# prepared beforehand (signed notifications, refunds) go through loadgen's vnpay_ipn or
# requests scenarios (--file); tests/bench/vnpay_ipn.py signs VNPAY IPNs. Requests that need an
# earlier answer are a flow scenario in loadgen.c (see its top comment and scenario_flow).
set -euo pipefail
BENCH_PROG=bench
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# >= 1 && $# <= 2)) || die "usage: tests/bench/run.sh BUILD_DIR [full|quick]"
MODE=${2:-full}
case $MODE in
  full)
    SAT_ARGS=(--rate-factor 1.4 --step-duration 3 --step-warmup 1 --step-pause 0.5 --refine 2
      --duration 10 --warmup 2 --max-steps 18)
    SAT_TIMEOUT=150 # a bound, never reached when the server answers: 18 steps take about 100 s
    PGBENCH_SECONDS=15
    WARMUP_SECONDS=5
    NOTIFY_ATTEMPTS=320000 # enough signed IPNs for every step of the search (each is sent once)
    REFUND_ORDERS=20000    # paid orders; each takes 10 partial refunds, so 200,000 requests
    APPLY_ORDERS=40000     # attempts posted by pgbench_apply.sql (a multiple of 400)
    REPORT_PAYMENTS=1000000 # payments of one business day in the settlement export scenarios
    IMPORT_LINES=1000000    # lines of the VNPAY settlement file in the import scenarios
    LEDGER_PAYMENTS=1000000 # paid orders with their payment transfers in the ledger check scenarios
    ;;
  quick)
    SAT_ARGS=(--rate-factor 2 --step-duration 1 --step-warmup 0.3 --step-pause 0.2 --refine 1
      --duration 2 --warmup 0.5 --max-steps 6 --drain 1)
    SAT_TIMEOUT=45
    PGBENCH_SECONDS=5
    WARMUP_SECONDS=2
    NOTIFY_ATTEMPTS=60000
    REFUND_ORDERS=3000
    APPLY_ORDERS=20000
    REPORT_PAYMENTS=20000
    IMPORT_LINES=20000
    LEDGER_PAYMENTS=20000
    ;;
  *) die "mode must be full or quick, not $MODE" ;;
esac
CONNS=${BENCH_CONNECTIONS:-128}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}

SCENARIOS=(http_ceiling intake notify_posted refund_burst status_reads flow pg_insert pg_naive_posting
  pg_ledger pg_apply idle_memory report_copy report_csv report_xlsx import_copy import ledger_check ledger_check_incremental
  scale_workers scale_gateways)

# ---------------------------------------------------------------- helpers

ORDER=0
ROWS=() # the rows the running scenario recorded (most record one, named as the scenario)
# record NAME key=value...: the scenario's description for the report (see report.py).
record() {
  local name=$1; shift
  ORDER=$((ORDER + 1))
  ROWS+=("$name")
  "$PYTHON" "$BENCH_LIB_DIR/report.py" meta "$RAW/$name.meta.json" "name=$name" "order=$ORDER" "$@"
}

# saturate NAME LOADGEN_ARGS...: find the saturation rate, then measure at half of it.
saturate() {
  local name=$1; shift
  timeout -k 10 "$SAT_TIMEOUT" "$BENCH_BIN/loadgen" --find-saturation --connections "$CONNS" \
    "${SAT_ARGS[@]}" "$@" --output "$RAW/$name.json"
}

# pgbench_run NAME SCRIPT: pgbench -c 16 -j 2 on the stack's PostgreSQL.
pgbench_run() {
  local name=$1 script=$2
  timeout -k 10 $((PGBENCH_SECONDS + 60)) "$PG_BIN/pgbench" -n -c 16 -j 2 -T "$PGBENCH_SECONDS" \
    -f "$BENCH_LIB_DIR/$script" "$DATABASE_URL" >"$RAW/$name.txt" 2>&1
  local rc=$?
  grep -E '^(tps|latency average|number of failed)' "$RAW/$name.txt" | sed 's/^/  /' >&2 || true
  return "$rc"
}

PGBENCH_READY=0
pgbench_setup() {
  ((PGBENCH_READY)) && return 0
  bench_psql -f "$BENCH_LIB_DIR/pgbench_setup.sql" >/dev/null 2>&1 || return 1
  PGBENCH_READY=1
}

# ---------------------------------------------------------------- scenarios

scenario_http_ceiling() {
  NEEDS_GATEWAY=0
  record http_ceiling kind=http raw=http_ceiling.json \
    "label=HTTP ceiling (evhttp, $WORKERS procs)"
  rm -f "$TMP/ceiling.port"
  "$BENCH_BIN/ceiling" --workers "$WORKERS" --port-file "$TMP/ceiling.port" >"$TMP/ceiling.log" 2>&1 &
  local pid=$! i rc=0
  bg_track "$pid"
  for ((i = 0; i < 100; i++)); do
    [[ -s $TMP/ceiling.port ]] && break
    sleep 0.1
  done
  [[ -s $TMP/ceiling.port ]] || { cat "$TMP/ceiling.log" >&2; stop_pid "$pid"; return 1; }
  saturate http_ceiling --url "http://127.0.0.1:$(cat "$TMP/ceiling.port")" --scenario fixed \
    --rate-start 5000 || rc=$?
  stop_pid "$pid"
  return "$rc"
}

scenario_intake() {
  record intake kind=http raw=intake.json "label=order intake (POST /v1/orders)" \
    ceiling=http_ceiling target_rate=20000 target_ratio=0.4 target_p99_ms=10
  saturate intake --url "$FEEGATE_URL" --scenario orders --rate-start 1000
}

# prepare_attempts N TAG REFERENCE_PREFIX BANK REF_PREFIX: N pending orders of the demo client
# at the demo agency, each with one open attempt at BANK whose bank_order_ref is REF_PREFIX, TAG
# and the order's number in 8 digits. Ids are time-ordered (version 7), as the gateway makes them.
prepare_attempts() {
  bench_psql -v n="$1" -v tag="$2" -v prefix="$3" -v bank="$4" -v refprefix="$5" -v client="$FEEGATE_CLIENT_ID" \
    -v agency="$FEEGATE_AGENCY" <<'SQL'
WITH o AS (
  INSERT INTO orders (id, client_id, agency_id, reference, description, amount, status, return_url,
                      checkout_token, created_at, updated_at, expires_at)
  SELECT feegate_uuid7(), :'client'::uuid, (SELECT id FROM agencies WHERE code = :'agency'),
         :'prefix' || :'tag' || g, 'Le phi ho chieu', 200000, 'pending', 'https://portal.example/return',
         md5(:'tag' || g || random()::text), now(), now(), now() + interval '1 day'
    FROM generate_series(1, :n) g
  RETURNING id, reference)
INSERT INTO attempts (id, order_id, bank, bank_order_ref, amount)
SELECT feegate_uuid7(), o.id, :'bank', :'refprefix' || :'tag'
       || lpad(substr(o.reference, length(:'prefix') + length(:'tag') + 1), 8, '0'), 200000 FROM o;
-- statistics as a database that grew over days would have them (autovacuum's ANALYZE)
ANALYZE orders;
ANALYZE attempts;
SQL
}

# Every payment to one agency (the hot account): pending VNPAY attempts prepared in the database,
# their signed success IPNs sent once each; a 2xx without RspCode 00 counts as an error, so a
# rate is only counted when each notification was applied (state change, ledger transfer and
# webhook row committed) before its answer.
scenario_notify_posted() {
  record notify_posted kind=http raw=notify_posted.json \
    "label=notification -> posted, one agency (VNPAY IPN)" \
    ceiling=pg_naive_posting target_ratio=10 target_p99_ms=10
  local tag
  tag=$(tr -dc 'A-Z' </dev/urandom | head -c 2)
  prepare_attempts "$NOTIFY_ATTEMPTS" "$tag" BENCH- vnpay BN || return 1
  bench_psql -F ' ' -c "SELECT bank_order_ref, amount FROM attempts WHERE bank_order_ref LIKE 'BN${tag}%' ORDER BY bank_order_ref" \
    | "$PYTHON" "$BENCH_LIB_DIR/vnpay_ipn.py" >"$TMP/ipn.txt" || return 1
  log "prepared $(wc -l <"$TMP/ipn.txt") signed notifications"
  saturate notify_posted --url "$FEEGATE_URL" --scenario vnpay_ipn --file "$TMP/ipn.txt" \
    --expect-body '"RspCode":"00"' --rate-start 1000 || return 1
  # Every payment is also a portal webhook: how far behind the relay was when the run ended.
  local sql="SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'delivered') FROM webhook_deliveries"
  local queued delivered left waited=0
  read -r queued delivered < <(bench_psql -F ' ' -c "$sql")
  left=$queued
  while ((left > 0 && waited < 30)); do
    sleep 1
    waited=$((waited + 1))
    read -r left delivered < <(bench_psql -F ' ' -c "$sql")
  done
  log "portal webhooks: $delivered delivered; $queued queued when the run ended, $left ${waited} s later"
  "$PYTHON" "$BENCH_LIB_DIR/report.py" set "$RAW/notify_posted.meta.json" \
    "note=portal webhooks: $delivered delivered; $queued queued when the run ended, $left ${waited} s later"
}

# Finance refunding many paid orders at once: POST /v1/orders/{id}/refunds with the finance
# token, 1,000 VND at a time, ten per order, orders interleaved. The orders are paid by VietQR,
# whose refunds wait as payout instructions, so this measures feegate (the order lock, the
# refundable sum, the refund row and its idempotency record), not a bank's refund API.
scenario_refund_burst() {
  record refund_burst kind=http raw=refund_burst.json \
    "label=refund burst (POST /v1/orders/{id}/refunds, finance)" target_p99_ms=10
  local tag
  tag=$(tr -dc 'A-Z' </dev/urandom | head -c 2)
  prepare_attempts "$REFUND_ORDERS" "$tag" REFUND- vietqr RB || return 1
  bench_psql -v tag="$tag" <<'SQL' || return 1
-- paid through the same function the notifications use, so the ledger stays consistent
SELECT count(*) FROM (
  SELECT feegate_apply_notifications(json_agg(json_build_object('i', 0, 'bank', 'vietqr', 'kind', 'payment',
           'ref', bank_order_ref, 'amount', amount, 'success', true, 'txn_id', 'T' || bank_order_ref)))
    FROM (SELECT bank_order_ref, amount, (row_number() OVER (ORDER BY bank_order_ref) - 1) / 500 AS chunk
            FROM attempts WHERE bank_order_ref LIKE 'RB' || :'tag' || '%') a
   GROUP BY chunk) x;
SQL
  bench_psql -c "SELECT json_build_object('method', 'POST', 'path', '/v1/orders/' || o.id || '/refunds',
                   'body', json_build_object('amount', 1000, 'reason', 'Hoàn tiền nộp thừa'))
                   FROM generate_series(1, 10) k, orders o WHERE o.reference LIKE 'REFUND-${tag}%'
                  ORDER BY k, o.id" >"$TMP/refunds.txt" || return 1
  log "prepared $(wc -l <"$TMP/refunds.txt") refund requests"
  saturate refund_burst --url "$FEEGATE_URL" --scenario requests --file "$TMP/refunds.txt" \
    --bearer "$FEEGATE_FINANCE_TOKEN" --expect-body '"status":"pending"' --rate-start 500
}

scenario_status_reads() {
  record status_reads kind=http raw=status_reads.json "label=status reads (GET /v1/orders/{id})" \
    ceiling=http_ceiling target_p99_ms=10
  local id
  id=$(create_order) || return 1
  saturate status_reads --url "$FEEGATE_URL" --scenario get --path "/v1/orders/$id" --rate-start 2000
}

# The full flow of one payment, each step sent when the previous answer is in (loadgen's flow
# scenario): the portal's order (201), the citizen choosing VNPAY at checkout (303 to the pay
# page), VNPAY's signed success IPN for the attempt in that redirect (RspCode 00: applied and
# posted), the portal's status read (succeeded). Rates are flows per second, four requests
# each; loadgen also reports every step's latency, kept in results.json.
scenario_flow() {
  record flow kind=http raw=flow.json "label=full flow (order, checkout, IPN, status)"
  saturate flow --url "$FEEGATE_URL" --scenario flow --rate-start 100
}

scenario_pg_insert() {
  NEEDS_GATEWAY=0
  record pg_insert kind=pgbench raw=pg_insert.txt "label=pgbench insert-only (-c 16 -j 2)"
  pgbench_setup || return 1
  pgbench_run pg_insert pgbench_insert.sql
}

scenario_pg_naive_posting() {
  NEEDS_GATEWAY=0
  record pg_naive_posting kind=pgbench raw=pg_naive_posting.txt \
    "label=pgbench naive posting, 1 hot row (-c 16 -j 2)"
  pgbench_setup || return 1
  pgbench_run pg_naive_posting pgbench_posting.sql
}

# The ledger alone: 100 payment postings per transaction to one agency's account through
# feegate_ledger_write, as the ledger design was sized "100 postings per transaction" (-c 16 -j 2, like
# the naive posting next to it). The hot account and the hash chain, without the rest of a
# notification.
scenario_pg_ledger() {
  NEEDS_GATEWAY=0
  record pg_ledger kind=pgbench raw=pg_ledger.txt per_transaction=100 ceiling=pg_naive_posting \
    "label=ledger alone: 100 postings per transaction, one agency (pgbench -c 16)"
  pgbench_run pg_ledger pgbench_ledger.sql
}

# The database alone: what feegate_apply_notifications posts per second in batches of 100, from
# 4 pgbench clients (the gateway's default of 2 workers with 2 batches in flight each), with no
# HTTP in front. Every payment to one agency. The webhook rows wait in the outbox (the relay
# sends them during and after the run). It bounds what the HTTP path can reach on this machine
# (see docs/performance.md).
scenario_pg_apply() {
  NEEDS_GATEWAY=0
  record pg_apply kind=pgbench raw=pg_apply.txt per_transaction=100 ceiling=pg_naive_posting \
    "label=database alone: notifications posted in batches of 100 (pgbench -c 4)"
  pgbench_setup || return 1
  local per_client=$((APPLY_ORDERS / 400))
  prepare_attempts "$APPLY_ORDERS" QQ BENCHQ- vnpay BQ || return 1
  bench_psql -c "SELECT setval('bench.apply_block', 1, false)" >/dev/null || return 1
  timeout -k 10 120 "$PG_BIN/pgbench" -n -c 4 -j 2 -t "$per_client" -f "$BENCH_LIB_DIR/pgbench_apply.sql" \
    "$DATABASE_URL" >"$RAW/pg_apply.txt" 2>&1 || { tail -n 5 "$RAW/pg_apply.txt" >&2; return 1; }
  grep -E '^(tps|latency average|number of failed)' "$RAW/pg_apply.txt" | sed 's/^/  /' >&2 || true
  local posted
  posted=$(bench_psql -c "SELECT count(*) FROM attempts WHERE bank_order_ref LIKE 'BQQQ%' AND status = 'succeeded'")
  log "$posted of $APPLY_ORDERS prepared attempts paid"
  ((posted == APPLY_ORDERS)) || { log "expected every prepared attempt to be paid"; return 1; }
  # the relay's deliveries of these webhooks are not part of the figure, but must not spill into
  # the next scenario
  local left waited=0
  while left=$(bench_psql -c "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'") && ((left > 0 && waited < 60)); do
    sleep 1
    waited=$((waited + 1))
  done
  log "portal webhooks of these payments delivered ${waited} s after the run ($left still queued)"
}

scenario_idle_memory() {
  record idle_memory kind=memory raw=idle_memory.json "label=gateway RSS, idle keep-alive" \
    target_rss_mib=64
  gateway_sample "$TMP/procs_before.txt"
  "$BENCH_BIN/loadgen" --url "$FEEGATE_URL" --idle "$IDLE_CONNS" --hold 50 >"$TMP/idle.json" \
    2>"$TMP/idle.err" &
  local pid=$! i
  bg_track "$pid"
  for ((i = 0; i < 600; i++)); do
    [[ -s $TMP/idle.json ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ ! -s $TMP/idle.json ]]; then
    cat "$TMP/idle.err" >&2
    stop_pid "$pid"
    return 1
  fi
  sleep 2 # let the workers settle with every connection open
  gateway_sample "$TMP/procs_during.txt"
  stop_pid "$pid"
  "$PYTHON" "$BENCH_LIB_DIR/report.py" idle "$RAW/idle_memory.json" "$TMP/idle.json" \
    "$TMP/procs_before.txt" "$TMP/procs_during.txt"
  sed 's/^/  /' "$TMP/idle.json" >&2
}

# ---------------------------------------------------------------- settlement exports
# One business day of REPORT_PAYMENTS paid orders of the demo agency (written straight into
# orders and attempts: the export reads them, not the ledger), exported as the settlement
# report. The ceiling is PostgreSQL alone writing the same rows: COPY (the report's lines
# query, in the same order) TO STDOUT CSV, read by psql into /dev/null.
# seed_payments PREFIX N DAY BANKS: N paid orders of the demo agency on business day DAY, each
# with one succeeded attempt at a bank of BANKS (a SQL text array), written straight into orders
# and attempts. References are HS-PREFIX-n, bank_order_refs PREFIX and n on 12 digits, bank
# transaction ids TXPREFIXn (PREFIX: three capitals).
seed_payments() {
  bench_psql -v prefix="$1" -v n="$2" -v day="$3" -v banks="$4" -v client="$FEEGATE_CLIENT_ID" \
    -v agency="$FEEGATE_AGENCY" <<'SQL'
WITH o AS (
  INSERT INTO orders (id, client_id, agency_id, reference, description, amount, status, return_url,
                      checkout_token, created_at, updated_at, expires_at, procedure, payer, metadata)
  SELECT feegate_uuid7(), :'client'::uuid, (SELECT id FROM agencies WHERE code = :'agency'),
         'HS-' || :'prefix' || '-' || g, 'Lệ phí cấp hộ chiếu', 200000 + g % 1000, 'succeeded',
         'https://portal.example/return', md5(:'prefix' || g), now(), now(), now() + interval '1 day', 'PP-0' || g % 3,
         json_build_object('name', 'Nguyễn Văn An ' || g, 'id_number', '0792030' || lpad(g::text, 5, '0')),
         json_build_object('ho_so', 'HS-' || g, 'kenh', CASE WHEN g % 2 = 0 THEN 'web' ELSE 'app' END)
    FROM generate_series(1, :n) g
  RETURNING id, amount, reference)
INSERT INTO attempts (id, order_id, bank, bank_order_ref, amount, status, bank_txn_id, paid_at)
SELECT feegate_uuid7(), o.id, (:'banks'::text[])[1 + abs(hashtext(o.reference)) % cardinality(:'banks'::text[])],
       :'prefix' || lpad(substr(o.reference, 8), 12, '0'), o.amount, 'succeeded', 'TX' || :'prefix' || substr(o.reference, 8),
       feegate_business_day_start(:'day'::date) + (substr(o.reference, 8)::int % 86400) * interval '1 second'
  FROM o;
ANALYZE orders;
ANALYZE attempts;
SQL
}

# settle_payments DAY PREFIX: each bank's settlement file for DAY, imported and every line
# matched to its payment (written straight into statements and statement_lines, fees at 1.1 %),
# so the report reads a reconciled day as finance sees it.
settle_payments() {
  bench_psql -v day="$1" -v prefix="$2" <<'SQL'
WITH s AS (
  INSERT INTO statements (source, sha256, business_date, lines, total)
  SELECT b, encode(sha256(convert_to(b || :'prefix' || :'day', 'UTF8')), 'hex'), :'day'::date, 0, 0
    FROM unnest(ARRAY['vnpay', 'momo', 'vietqr']) b
  RETURNING id, source)
INSERT INTO statement_lines (statement_id, line, kind, bank, bank_order_ref, bank_txn_id, amount, fee, at,
                             outcome, attempt_id, agency_id)
SELECT s.id, row_number() OVER (PARTITION BY a.bank ORDER BY a.id), 'payment', a.bank, a.bank_order_ref,
       a.bank_txn_id, a.amount, a.amount * 11 / 1000, a.paid_at, 'matched', a.id, o.agency_id
  FROM attempts a JOIN orders o ON o.id = a.order_id JOIN s ON s.source = a.bank
 WHERE a.status = 'succeeded' AND a.bank_order_ref LIKE :'prefix' || '%'
   AND a.paid_at >= feegate_business_day_start(:'day'::date) AND a.paid_at < feegate_business_day_start(:'day'::date + 1);
ANALYZE statements;
ANALYZE statement_lines;
SQL
}

REPORT_DAY=2026-01-15
REPORT_READY=0
report_seed() {
  ((REPORT_READY)) && return 0
  log "writing $REPORT_PAYMENTS payments of $REPORT_DAY for the export scenarios, reconciled"
  seed_payments RPT "$REPORT_PAYMENTS" "$REPORT_DAY" '{vnpay,momo,vietqr}' || return 1
  settle_payments "$REPORT_DAY" RPT || return 1
  REPORT_READY=1
}

report_lines() {
  bench_psql -c "SELECT count(*) FROM feegate_report_lines('$REPORT_DAY', '$REPORT_DAY', NULL, NULL)"
}

# rss_watch_start / rss_watch_stop: the gateway's resident memory (all its processes) before,
# in RSS_BEFORE, and the most seen while a request ran, in RSS_DURING (KiB; sampled every 0.1 s).
rss_watch_start() {
  gateway_sample "$TMP/procs_before.txt"
  RSS_BEFORE=$(awk '{s += $3} END {print s + 0}' "$TMP/procs_before.txt")
  : >"$TMP/rss_samples.txt"
  (while :; do
    gateway_sample "$TMP/procs_now.txt"
    awk '{s += $3} END {print s + 0}' "$TMP/procs_now.txt" >>"$TMP/rss_samples.txt"
    sleep 0.1
  done) &
  RSS_PID=$!
  bg_track "$RSS_PID"
}
rss_watch_stop() {
  stop_pid "$RSS_PID"
  RSS_DURING=$(sort -n "$TMP/rss_samples.txt" | tail -n 1)
  RSS_DURING=${RSS_DURING:-$RSS_BEFORE}
}

# report_measure NAME FORMAT: GET the day's settlement report (all agencies) once with curl,
# watching the gateway's resident memory meanwhile; writes RAW/NAME.json.
report_measure() {
  local name=$1 format=$2 t lines code first total bytes
  lines=$(report_lines) || return 1
  rss_watch_start
  t=$(curl -sS -o /dev/null --max-time 300 -H "Authorization: Bearer $FEEGATE_FINANCE_TOKEN" \
    -w '%{http_code} %{time_starttransfer} %{time_total} %{size_download}' \
    "$FEEGATE_URL/v1/reports/settlement?date=$REPORT_DAY&format=$format")
  rss_watch_stop
  read -r code first total bytes <<<"$t"
  log "$format: HTTP $code, first byte ${first}s, last byte ${total}s, $bytes bytes, $lines lines, gateway RSS +$(((RSS_DURING - RSS_BEFORE) / 1024)) MiB"
  [[ $code == 200 ]] || return 1
  "$PYTHON" -c 'import json, sys
a = sys.argv
json.dump({"rows": int(a[2]), "seconds": float(a[3]), "first_byte_s": float(a[4]), "bytes": int(a[5]),
           "rss_growth_kib": max(0, int(a[7]) - int(a[6]))}, open(a[1], "w"), indent=1)' \
    "$RAW/$name.json" "$lines" "$total" "$first" "$bytes" "$RSS_BEFORE" "$RSS_DURING"
}

scenario_report_copy() {
  NEEDS_GATEWAY=0
  record report_copy kind=export raw=report_copy.json \
    "label=settlement lines: COPY (SELECT ...) TO STDOUT CSV (rows/s)"
  report_seed || return 1
  local t0 t1 lines
  lines=$(report_lines) || return 1
  t0=$(date +%s.%N)
  # the session settings an export runs with (gateway/reports.c), so only the gateway differs
  PGOPTIONS="-c work_mem=64MB -c jit=off" bench_psql -c "COPY (SELECT kind, business_date, agency, bank, order_id,
    reference, procedure, payer, bank_txn_id, amount, fee, net, reconciliation, chapter, ndkt, dbhc, metadata, at_s
    FROM feegate_report_lines('$REPORT_DAY', '$REPORT_DAY', NULL, NULL) ORDER BY at, kind, order_id)
    TO STDOUT CSV" >/dev/null || return 1
  t1=$(date +%s.%N)
  "$PYTHON" -c 'import json, sys
a = sys.argv
json.dump({"rows": int(a[2]), "seconds": float(a[3]) - float(a[4])}, open(a[1], "w"), indent=1)' \
    "$RAW/report_copy.json" "$lines" "$t1" "$t0"
  log "COPY of $lines lines: $("$PYTHON" -c 'import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 2))' "$t1" "$t0")s"
}

scenario_report_csv() {
  record report_csv kind=export raw=report_csv.json \
    "label=settlement report CSV, one day (rows/s)" ceiling=report_copy target_ratio=0.5 \
    target_seconds=3 target_rss_mib=16
  report_seed || return 1
  report_measure report_csv csv
}

scenario_report_xlsx() {
  record report_xlsx kind=export raw=report_xlsx.json \
    "label=settlement report XLSX, one day (rows/s)" target_seconds=20 target_rss_mib=16
  report_seed || return 1
  report_measure report_xlsx xlsx
}

# ---------------------------------------------------------------- settlement import
# One business day of IMPORT_LINES paid VNPAY attempts (written straight into orders and
# attempts) and the bank's settlement file listing each of them once, in banksim's format. The
# ceiling is PostgreSQL alone taking the same file: a plain COPY of its lines into an unindexed
# table. The import is POST /v1/statements?source=vnpay: parse, store, match, post the fees,
# open the cases (none here: every line matches).
IMPORT_DAY=2026-01-20
IMPORT_READY=0
import_seed() {
  ((IMPORT_READY)) && return 0
  log "writing $IMPORT_LINES VNPAY payments of $IMPORT_DAY and their settlement file"
  seed_payments IMP "$IMPORT_LINES" "$IMPORT_DAY" '{vnpay}' || return 1
  local day=${IMPORT_DAY//-/}
  {
    printf 'TmnCode,TransactionType,TxnRef,TransactionNo,RefundRequestId,RefundTransactionNo,Amount,Fee,PayDate\r\n'
    bench_psql -c "COPY (SELECT '$FEEGATE_VNPAY_TMN_CODE', '01', bank_order_ref, bank_txn_id, '', '', amount * 100,
        (amount * 11 / 1000) * 100, to_char(paid_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYYMMDDHH24MISS')
      FROM attempts WHERE bank = 'vnpay' AND bank_order_ref LIKE 'IMP%' ORDER BY paid_at, id) TO STDOUT CSV"
    bench_psql -c "SELECT 'TOTAL,$day,' || count(*) || ',' || sum(amount) FROM attempts
      WHERE bank = 'vnpay' AND bank_order_ref LIKE 'IMP%'"
  } >"$TMP/import.csv" || return 1
  grep -q '^TmnCode,' "$TMP/import.csv" || { log "the bench's header is not the adapter's"; return 1; }
  IMPORT_READY=1
}

scenario_import_copy() {
  NEEDS_GATEWAY=0
  record import_copy kind=export raw=import_copy.json \
    "label=settlement file: plain COPY into an unindexed table (lines/s)"
  import_seed || return 1
  sed '1d;$d' "$TMP/import.csv" >"$TMP/import_body.csv"
  bench_psql -c "DROP TABLE IF EXISTS bench_import_ceiling" -c "CREATE TABLE bench_import_ceiling (tmn text,
    type text, ref text, txn text, refund_ref text, refund_txn text, amount bigint, fee bigint, paid text)"
  local t0 t1
  t0=$(date +%s.%N)
  bench_psql -c "\\copy bench_import_ceiling FROM '$TMP/import_body.csv' CSV" || return 1
  t1=$(date +%s.%N)
  bench_psql -c "DROP TABLE bench_import_ceiling"
  "$PYTHON" -c 'import json, sys
a = sys.argv
json.dump({"rows": int(a[2]), "seconds": float(a[3]) - float(a[4])}, open(a[1], "w"), indent=1)' \
    "$RAW/import_copy.json" "$IMPORT_LINES" "$t1" "$t0"
}

scenario_import() {
  record import kind=export raw=import.json \
    "label=settlement file import + match, VNPAY (lines/s)" ceiling=import_copy target_ratio=0.25 \
    target_seconds=10 target_rss_mib=64
  import_seed || return 1
  local t code total bytes matched
  rss_watch_start
  t=$(curl -sS -o "$TMP/import.json" --max-time 600 -H "Authorization: Bearer $FEEGATE_FINANCE_TOKEN" \
    -H 'Content-Type: text/csv' --data-binary "@$TMP/import.csv" \
    -w '%{http_code} %{time_total} %{size_upload}' "$FEEGATE_URL/v1/statements?source=vnpay")
  rss_watch_stop
  read -r code total bytes <<<"$t"
  matched=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("matched"))' "$TMP/import.json" 2>/dev/null || echo "?")
  log "import: HTTP $code in ${total}s, $bytes bytes, $matched of $IMPORT_LINES lines matched, gateway RSS +$(((RSS_DURING - RSS_BEFORE) / 1024)) MiB"
  [[ $code == 201 && $matched == "$IMPORT_LINES" ]] || { head -c 400 "$TMP/import.json" >&2; return 1; }
  "$PYTHON" -c 'import json, sys
a = sys.argv
json.dump({"rows": int(a[2]), "seconds": float(a[3]), "bytes": int(a[4]),
           "rss_growth_kib": max(0, int(a[6]) - int(a[5]))}, open(a[1], "w"), indent=1)' \
    "$RAW/import.json" "$IMPORT_LINES" "$total" "$bytes" "$RSS_BEFORE" "$RSS_DURING"
}

# ---------------------------------------------------------------- ledger check
# `feegate ledger check` over a ledger of LEDGER_PAYMENTS paid orders, each with its payment
# transfer, in a database of its own (the other scenarios write paid orders without transfers),
# then `--incremental` after one more per cent of payments. The transfers are written by the
# ledger's own function (feegate_ledger_write), so the chain is the one the gateway builds.
LEDGER_READY=0
ledger_db_url() { printf '%s/feegate_ledger_bench' "${DATABASE_URL%/*}"; }
bench_psql_super() {
  local cmd=("$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT"
    -U "${PG_SUPERUSER:-postgres}" -d postgres "$@")
  if ((EUID == 0)) && [[ -n ${PG_USER:-} && $PG_USER != root ]]; then cmd=(runuser -u "$PG_USER" -- "${cmd[@]}"); fi
  (cd / && "${cmd[@]}")
}
# ledger_payments PREFIX N: N paid orders and attempts of the demo agency and their payments.
ledger_payments() {
  "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$(ledger_db_url)" -v prefix="$1" -v n="$2" <<'SQL'
CREATE TEMP TABLE paid AS
WITH o AS (
  INSERT INTO orders (id, client_id, agency_id, reference, description, amount, status, return_url,
                      checkout_token, created_at, updated_at, expires_at)
  SELECT feegate_uuid7(), (SELECT id FROM clients LIMIT 1), (SELECT id FROM agencies WHERE code = 'LCK'),
         'LCK-' || :'prefix' || '-' || g, 'Lệ phí', 100000 + g % 1000, 'succeeded', 'https://portal.example/r',
         md5(:'prefix' || g), now(), now(), now() + interval '1 day'
    FROM generate_series(1, :n) g
  RETURNING id, amount)
SELECT o.id AS order_id, feegate_uuid7() AS attempt_id, o.amount, row_number() OVER () AS k FROM o;
INSERT INTO attempts (id, order_id, bank, bank_order_ref, amount, status, bank_txn_id, paid_at)
SELECT attempt_id, order_id, 'vnpay', 'LCK' || :'prefix' || lpad(k::text, 12, '0'), amount, 'succeeded', 'TX' || :'prefix' || k, now() FROM paid;
DO $$
DECLARE
    clearing bigint := feegate_account_id('bank:vnpay:clearing');
    payable bigint := feegate_account_id('agency:LCK:payable');
    lo bigint := 0;
    top bigint := (SELECT max(k) FROM paid);
BEGIN
    WHILE lo < top LOOP
        PERFORM feegate_ledger_write(array_agg('pay:' || attempt_id ORDER BY k), array_agg(clearing ORDER BY k),
                                     array_agg(payable ORDER BY k), array_agg(amount ORDER BY k),
                                     array_agg('payment'::text ORDER BY k), array_agg(order_id ORDER BY k),
                                     array_agg(attempt_id ORDER BY k), array_agg(NULL::uuid ORDER BY k))
          FROM paid WHERE k > lo AND k <= lo + 20000;
        lo := lo + 20000;
    END LOOP;
END
$$;
ANALYZE orders;
ANALYZE attempts;
ANALYZE ledger_transfers;
ANALYZE ledger_entries;
SQL
}
ledger_seed() {
  ((LEDGER_READY)) && return 0
  log "writing $LEDGER_PAYMENTS paid orders with their payment transfers for the ledger check"
  bench_psql_super -c "DROP DATABASE IF EXISTS feegate_ledger_bench" \
    -c "CREATE DATABASE feegate_ledger_bench OWNER $(bench_psql -c 'SELECT current_user')" >/dev/null || return 1
  local url
  url=$(ledger_db_url)
  DATABASE_URL=$url "$BUILD/feegate" migrate >/dev/null || return 1
  DATABASE_URL=$url "$BUILD/feegate" agency create --code LCK --name "Ledger bench" \
    --account 970436:0011223344:LCK --banks vnpay >/dev/null || return 1
  DATABASE_URL=$url "$BUILD/feegate" client create --name "Ledger bench portal" --agency LCK >/dev/null || return 1
  ledger_payments LA "$LEDGER_PAYMENTS" || return 1
  LEDGER_READY=1
}
# ledger_time NAME ROWS ARGS...: times `feegate ledger check ARGS` into RAW/NAME.json.
ledger_time() {
  local name=$1 rows=$2 t0 t1 out
  shift 2
  t0=$(date +%s.%N)
  out=$(DATABASE_URL=$(ledger_db_url) "$BUILD/feegate" ledger check "$@") || { printf '%s\n' "$out" | tail -n 20 >&2; return 1; }
  t1=$(date +%s.%N)
  log "ledger check $*: $(printf '%s\n' "$out" | tail -n 1)"
  "$PYTHON" -c 'import json, sys
a = sys.argv
json.dump({"rows": int(a[2]), "seconds": float(a[3]) - float(a[4])}, open(a[1], "w"), indent=1)' \
    "$RAW/$name.json" "$rows" "$t1" "$t0"
}

scenario_ledger_check() {
  NEEDS_GATEWAY=0
  record ledger_check kind=export raw=ledger_check.json "label=feegate ledger check, full (transfers/s)"
  ledger_seed || return 1
  ledger_time ledger_check "$LEDGER_PAYMENTS"
}

scenario_ledger_check_incremental() {
  NEEDS_GATEWAY=0
  record ledger_check_incremental kind=export raw=ledger_check_incremental.json \
    "label=feegate ledger check --incremental after 1 % more payments (transfers/s)"
  ledger_seed || return 1
  DATABASE_URL=$(ledger_db_url) "$BUILD/feegate" ledger check >/dev/null || return 1 # the checkpoint
  local more=$((LEDGER_PAYMENTS / 100))
  ledger_payments LB "$more" || return 1
  ledger_time ledger_check_incremental "$more" --incremental
}

# ---------------------------------------------------------------- scaling (issue 18)
# Intake and notification throughput with 1, 2 and 4 workers (scale_workers), and with two
# gateway processes on other ports over the same database, the load generator spreading its
# connections over both (scale_gateways). Each row also says how many of the machine's cores
# went to the gateway(s), to PostgreSQL and to the load generator over the row's whole run.

# cpu_ticks PID: CPU ticks used by PID and its descendants (exited children through cutime).
cpu_ticks() {
  local total=0 pid t
  for pid in "$1" $(descendants "$1"); do
    t=$(awk '{sub(/^.*\) /, ""); print $12 + $13 + $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || continue
    total=$((total + ${t:-0}))
  done
  echo "$total"
}

pg_postmaster() { head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null; }

free_tcp_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

GW2_PID=
GW2_URL=
gateway2_start() {
  local port
  port=$(free_tcp_port)
  GW2_URL=http://127.0.0.1:$port
  log "starting a second gateway ($WORKERS workers) on $GW2_URL, same database"
  FEEGATE_PORT=$port FEEGATE_PUBLIC_URL=$GW2_URL FEEGATE_NODE_NAME=bench-second FEEGATE_RECEIPT_KEY= \
  FEEGATE_WORKERS=$WORKERS FEEGATE_RATE_LIMIT_RPS=$RATE_LIMIT_RPS "$BUILD/feegate" serve \
    >>"$TMP/gateway2.log" 2>&1 &
  GW2_PID=$!
  bg_track "$GW2_PID"
  wait_http "$GW2_URL/readyz" 30 "$GW2_PID" || { tail -n 20 "$TMP/gateway2.log" >&2; return 1; }
}

gateway_restart_with() {
  stop_pid "$GW_PID" 20
  WORKERS=$1 gateway_start
}

# signed_ipns NAME: prepares NOTIFY_ATTEMPTS pending VNPAY attempts and their signed IPNs in
# $TMP/NAME.ipn (each is sent once, as in notify_posted).
signed_ipns() {
  local tag
  tag=$(tr -dc 'A-Z' </dev/urandom | head -c 2)
  prepare_attempts "$NOTIFY_ATTEMPTS" "$tag" "SC$1-" vnpay SC || return 1
  bench_psql -F ' ' -c "SELECT bank_order_ref, amount FROM attempts WHERE bank_order_ref LIKE 'SC${tag}%' ORDER BY bank_order_ref" \
    | "$PYTHON" "$BENCH_LIB_DIR/vnpay_ipn.py" >"$TMP/$1.ipn"
}

# scale_row NAME LABEL GATEWAY_PIDS -- LOADGEN_ARGS...: one saturation search, and where the
# CPU went meanwhile.
scale_row() {
  local name=$1 label=$2 pids=() pid
  shift 2
  while [[ $1 != -- ]]; do pids+=("$1"); shift; done
  shift
  record "$name" kind=http raw="$name.json" "label=$label"
  local g0=0 g1=0 p0 p1 t0 t1 rc=0 hz
  hz=$(getconf CLK_TCK)
  for pid in "${pids[@]}"; do g0=$((g0 + $(cpu_ticks "$pid"))); done
  p0=$(cpu_ticks "$(pg_postmaster)")
  t0=$(date +%s.%N)
  local TIMEFORMAT='%U %S'
  { time saturate "$name" "$@" 2>"$TMP/$name.err"; } 2>"$TMP/$name.time" || rc=$?
  cat "$TMP/$name.err" >&2
  t1=$(date +%s.%N)
  for pid in "${pids[@]}"; do g1=$((g1 + $(cpu_ticks "$pid"))); done
  p1=$(cpu_ticks "$(pg_postmaster)")
  local cpu
  cpu=$(awk -v g=$((g1 - g0)) -v p=$((p1 - p0)) -v hz="$hz" -v t0="$t0" -v t1="$t1" -v lg="$(tail -n 1 "$TMP/$name.time")" \
    'BEGIN { split(lg, l, " "); w = t1 - t0; if (w <= 0) w = 1;
      printf "gateway %.2f, PostgreSQL %.2f, load generator %.2f", g / hz / w, p / hz / w, (l[1] + l[2]) / w }')
  log "$name: cores used over the run: $cpu"
  "$PYTHON" "$BENCH_LIB_DIR/report.py" set "$RAW/$name.meta.json" "note=cores used over the run: $cpu"
  return "$rc"
}

scenario_scale_workers() {
  local w rc=0
  for w in 1 2 4; do
    gateway_restart_with "$w" || return 1
    scale_row "scale_intake_w$w" "scaling: order intake, 1 gateway, $w worker(s)" "$GW_PID" -- \
      --url "$FEEGATE_URL" --scenario orders --rate-start 1000 || rc=1
    signed_ipns "scale_notify_w$w" || return 1
    scale_row "scale_notify_w$w" "scaling: notification -> posted, 1 gateway, $w worker(s)" "$GW_PID" -- \
      --url "$FEEGATE_URL" --scenario vnpay_ipn --file "$TMP/scale_notify_w$w.ipn" \
      --expect-body '"RspCode":"00"' --rate-start 1000 || rc=1
  done
  gateway_restart_with "${BENCH_WORKERS:-2}"
  return "$rc"
}

scenario_scale_gateways() {
  local rc=0
  gateway2_start || return 1
  scale_row scale_intake_g2 "scaling: order intake, 2 gateways x $WORKERS workers" "$GW_PID" "$GW2_PID" -- \
    --url "$FEEGATE_URL" --url2 "$GW2_URL" --scenario orders --rate-start 1000 || rc=1
  signed_ipns scale_notify_g2 || rc=1
  scale_row scale_notify_g2 "scaling: notification -> posted, 2 gateways x $WORKERS workers" "$GW_PID" "$GW2_PID" -- \
    --url "$FEEGATE_URL" --url2 "$GW2_URL" --scenario vnpay_ipn --file "$TMP/scale_notify_g2.ipn" \
    --expect-body '"RspCode":"00"' --rate-start 1000 || rc=1
  stop_pid "$GW2_PID" 20
  GW2_PID=
  return "$rc"
}

# run_scenario NAME: runs scenario_NAME and notes what may have spoilt it: the gateway stopping
# (an error when the scenario uses it; set NEEDS_GATEWAY=0 in scenarios that do not), and CPU
# used by other programs on this machine just before and after.
run_scenario() {
  local name=$1 t0=$SECONDS busy_before busy_after
  if ! declare -F "scenario_$name" >/dev/null; then
    log "unknown scenario $name"
    record "$name" kind=failed "error=unknown scenario"
    return 0
  fi
  gateway_ensure
  busy_before=$(cpu_busy_pct)
  log "scenario $name (machine ${busy_before}% busy before it)"
  local pid_before=$GW_PID row
  NEEDS_GATEWAY=1
  ROWS=()
  if ! "scenario_$name"; then
    log "scenario $name FAILED"
    ((${#ROWS[@]})) || record "$name" kind=failed "error=scenario failed"
  fi
  busy_after=$(cpu_busy_pct)
  ((${#ROWS[@]})) || ROWS=("$name")
  for row in "${ROWS[@]}"; do
    "$PYTHON" "$BENCH_LIB_DIR/report.py" set "$RAW/$row.meta.json" "busy_pct_before=$busy_before" \
      "busy_pct_after=$busy_after"
  done
  if [[ $GW_PID != "$pid_before" ]] || ! gateway_alive; then
    local what=error
    ((NEEDS_GATEWAY)) || what=note
    log "the gateway stopped during scenario $name"
    "$PYTHON" "$BENCH_LIB_DIR/report.py" set "$RAW/${ROWS[-1]}.meta.json" \
      "$what=the gateway stopped during this scenario (see gateway.log)"
  fi
  log "scenario $name took $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- main

START=$SECONDS
bench_init "$1"
RAW=$OUT/raw
rm -rf -- "$RAW" "$OUT/results.json" "$OUT/latency.png"
mkdir -p "$RAW"
bench_build
stack_start
check_durability
banksim_start
gateway_start
warm_up "$WARMUP_SECONDS"

"$PYTHON" - "$RAW/env.json" <<EOF
import json, subprocess, sys
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return None
json.dump({
    "command": "make bench" + (" QUICK=1" if "$MODE" == "quick" else ""),
    "git_commit": sh("git", "-C", "$REPO", "rev-parse", "--short", "HEAD"),
    "git_dirty": bool(sh("git", "-C", "$REPO", "status", "--porcelain", "--untracked-files=no")),
    "gateway_workers": $WORKERS,
    "gateway_rate_limit_rps": $RATE_LIMIT_RPS,
    "loadgen_connections": $CONNS,
    "saturation_args": "${SAT_ARGS[*]}",
    "postgres": {
        "version": sh("$PG_BIN/postgres", "--version"),
        "fsync": "on", "synchronous_commit": "on",
    },
    "banksim": bool("${BANKSIM_PID}"),
}, open(sys.argv[1], "w"), indent=1)
EOF

if [[ -n ${BENCH_SCENARIOS:-} ]]; then
  read -r -a SCENARIOS <<<"$BENCH_SCENARIOS"
fi
for s in "${SCENARIOS[@]}"; do run_scenario "$s"; done

rc=0
"$PYTHON" "$BENCH_LIB_DIR/report.py" build "$RAW" "$OUT" "$MODE" || rc=$?
log "done in $((SECONDS - START))s"
exit "$rc"
