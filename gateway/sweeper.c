/*
 * Background work, run only by worker 0 of the gateway that holds the duty lock (duty.c): expire
 * orders nobody took to a bank, ask banks about
 * attempts still pending (a bank that says "paid" wins over the clock; a lost notification is
 * recovered), and drop idempotency records older than 48 hours. Every call has a timeout and
 * nothing waits on the loop.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/banks.h"
#include "gateway/db.h"
#include "gateway/gateway.h"
#include "gateway/notify.h"
#include "gateway/refunds.h"
#include "gateway/sweeper.h"
#include "lib/breaker.h"
#include "lib/config.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"

static struct event *timer;
static int busy; /* queries and calls of the current sweep still running */
static int64_t last_cleanup_us;
static metric_id m_lag, m_outbox_due, m_outbox_oldest, m_ledger_violations, m_ledger_checked;

struct query_job {
	char attempt_id[37];
	char bank[24];
	char ref[24];
	char txn[65];
	char request_id[33];
	char *description;
	int64_t amount;
	int64_t past_expiry_s; /* negative while the order can still be paid */
	adapter_query q;
};

static void job_free(struct query_job *j)
{
	free(j->description);
	free(j);
	busy--;
}

static void closed(void *arg, PGresult *res, enum pg_status st)
{
	struct query_job *j = arg;
	if (st != PG_OK)
		log_warn(NULL, "closing attempt %s failed", j->ref);
	job_free(j);
}

static void close_attempt(struct query_job *j, const char *status, const char *code)
{
	log_info(NULL, "attempt %s at %s closed as %s (%s)", j->ref, j->bank, status, code);
	const char *params[3] = {j->attempt_id, status, code};
	pg_query(gw.db, "close_attempt", 3, params, cfg.db_timeout_ms, closed, j);
}

static void applied(void *arg, adapter_outcome o, const char *order_id, const char *status)
{
	struct query_job *j = arg;
	log_info(NULL, "bank %s says attempt %s was paid: %s", j->bank, j->ref,
		 o == ADAPTER_APPLIED ? "applied" : o == ADAPTER_REPLAYED ? "already applied" : "not applied");
	job_free(j);
}

static void answered(void *arg, int status, const char *body, size_t len, const char *err)
{
	struct query_job *j = arg;
	const struct bank *bk = bank_find(j->bank);
	adapter_txn txn;
	adapter_response resp = {.status = status, .body = body, .body_len = len};
	adapter_rc rc = bk && status ? adapter_parse_query_response(bk->adapter, &bk->config, &j->q, &resp, &txn)
				     : ADAPTER_UNAVAILABLE;
	breaker_record(j->bank, rc != ADAPTER_UNAVAILABLE);
	if (rc == ADAPTER_OK && txn.state == ADAPTER_TXN_SUCCEEDED) {
		if (!txn.bank_order_ref[0])
			snprintf(txn.bank_order_ref, sizeof txn.bank_order_ref, "%s", j->ref);
		notify_apply(notify_item(j->bank, &txn, body, len, "query"), applied, j);
		return;
	}
	if (rc == ADAPTER_OK && txn.state == ADAPTER_TXN_FAILED) {
		close_attempt(j, "failed", txn.failure_code[0] ? txn.failure_code : "declined");
		return;
	}
	if (rc == ADAPTER_OK && txn.state == ADAPTER_TXN_NOT_FOUND && j->past_expiry_s >= 0) {
		close_attempt(j, "expired", "not_at_bank");
		return;
	}
	if (j->past_expiry_s >= cfg.query_grace_s) {
		close_attempt(j, "expired", "no_answer");
		return;
	}
	if (rc != ADAPTER_OK)
		log_warn(NULL, "status query for %s at %s: %s%s%s", j->ref, j->bank, adapter_rc_name(rc), err ? ", " : "",
			 err ? err : "");
	job_free(j);
}

static void ask_bank(struct query_job *j)
{
	const struct bank *bk = bank_find(j->bank);
	if (!bk || !bk->adapter->build_query) {
		/* A bank with no status API: the clock decides. */
		if (j->past_expiry_s >= 0) {
			close_attempt(j, "expired", "expired");
			return;
		}
		job_free(j);
		return;
	}
	unsigned char rnd[8];
	util_random(rnd, sizeof rnd);
	util_hex(rnd, sizeof rnd, j->request_id);
	j->q = (adapter_query){.request_id = j->request_id,
			       .bank_order_ref = j->ref,
			       .bank_txn_id = j->txn[0] ? j->txn : NULL,
			       .amount = j->amount,
			       .description = j->description,
			       .attempt_created_at = j->q.attempt_created_at,
			       .now = time(NULL)};
	adapter_request req;
	if (adapter_build_query(bk->adapter, &bk->config, &j->q, &req) != ADAPTER_OK) {
		job_free(j);
		return;
	}
	bank_send(&req, answered, j);
	adapter_request_free(&req);
}

/* attempts_to_query (feegate_attempts_to_query) */
struct pending_row {
	const char *r_id, *r_bank, *r_ref, *r_txn;
	int64_t r_amount;
	const char *r_description;
	int64_t r_created, r_past_expiry_s;
};
static const struct pg_col pending_cols[] = {
	PG_COL(struct pending_row, r_id, PG_TEXT),
	PG_COL(struct pending_row, r_bank, PG_TEXT),
	PG_COL(struct pending_row, r_ref, PG_TEXT),
	PG_COL(struct pending_row, r_txn, PG_TEXT),
	PG_COL(struct pending_row, r_amount, PG_INT64),
	PG_COL(struct pending_row, r_description, PG_TEXT),
	PG_COL(struct pending_row, r_created, PG_INT64),
	PG_COL(struct pending_row, r_past_expiry_s, PG_INT64),
};

static void got_attempts(void *arg, PGresult *res, enum pg_status st)
{
	busy--;
	if (st != PG_OK)
		return;
	struct pending_row a;
	for (int r = 0; r < PQntuples(res) && PG_ROW(res, r, pending_cols, &a); r++) {
		struct query_job *j = xcalloc(1, sizeof *j);
		busy++;
		snprintf(j->attempt_id, sizeof j->attempt_id, "%s", a.r_id);
		snprintf(j->bank, sizeof j->bank, "%s", a.r_bank);
		snprintf(j->ref, sizeof j->ref, "%s", a.r_ref);
		snprintf(j->txn, sizeof j->txn, "%s", a.r_txn);
		j->amount = a.r_amount;
		j->description = xstrdup(a.r_description);
		j->q.attempt_created_at = (time_t)a.r_created;
		j->past_expiry_s = a.r_past_expiry_s;
		ask_bank(j);
	}
}

static void refund_retried(void *arg, const char *refund_json)
{
	busy--;
}

/* refunds_to_retry (feegate_refunds_to_retry): the refund, then its paid attempt's columns */
#define RETRY_ATTEMPT_COL 5
struct retry_row {
	const char *r_id, *r_ref;
	int64_t r_amount;
	const char *r_reason, *r_created_by;
};
static const struct pg_col retry_cols[] = {
	PG_COL(struct retry_row, r_id, PG_TEXT),
	PG_COL(struct retry_row, r_ref, PG_TEXT),
	PG_COL(struct retry_row, r_amount, PG_INT64),
	PG_COL(struct retry_row, r_reason, PG_TEXT),
	PG_COL(struct retry_row, r_created_by, PG_TEXT),
};

static void got_refunds(void *arg, PGresult *res, enum pg_status st)
{
	busy--;
	if (st != PG_OK)
		return;
	struct retry_row f;
	for (int r = 0; r < PQntuples(res) && PG_ROW(res, r, retry_cols, &f); r++) {
		struct refund_to_send in = {
			.refund_id = f.r_id,
			.refund_ref = f.r_ref,
			.amount = f.r_amount,
			.reason = f.r_reason,
			.created_by = f.r_created_by,
		};
		if (!refund_attempt_from(res, r, RETRY_ATTEMPT_COL, &in))
			break;
		const struct bank *bk = bank_find(in.bank);
		if (!bk || !bk->adapter->build_refund)
			continue; /* payout instructions wait for finance */
		busy++;
		refund_send(&in, refund_retried, NULL);
	}
}

static void simple_done(void *arg, PGresult *res, enum pg_status st)
{
	busy--;
}

/* expire_due */
struct expired_row {
	int64_t expired;
};
static const struct pg_col expired_cols[] = {PG_COL(struct expired_row, expired, PG_INT64)};

static void expired(void *arg, PGresult *res, enum pg_status st)
{
	busy--;
	struct expired_row r;
	if (st == PG_OK && PQntuples(res) == 1 && PG_ROW(res, 0, expired_cols, &r) && r.expired > 0)
		log_info(NULL, "%lld orders expired", (long long)r.expired);
}

/* outbox_backlog */
struct backlog_row {
	double due, oldest_s;
};
static const struct pg_col backlog_cols[] = {
	PG_COL(struct backlog_row, due, PG_DOUBLE),
	PG_COL(struct backlog_row, oldest_s, PG_DOUBLE),
};

static void outbox_measured(void *arg, PGresult *res, enum pg_status st)
{
	busy--;
	struct backlog_row r;
	if (st != PG_OK || PQntuples(res) != 1 || !PG_ROW(res, 0, backlog_cols, &r))
		return;
	metrics_set(m_outbox_due, r.due);
	metrics_set(m_outbox_oldest, r.oldest_s);
}

/* ledger_check_status: the settings row "<invariants violated> <unix time>" */
struct check_row {
	const char *value;
};
static const struct pg_col check_cols[] = {PG_COL(struct check_row, value, PG_TEXT)};

static void ledger_check_read(void *arg, PGresult *res, enum pg_status st)
{
	busy--;
	struct check_row r;
	if (st != PG_OK || PQntuples(res) != 1 || !PG_ROW(res, 0, check_cols, &r))
		return;
	long failed = 0, at = 0;
	if (sscanf(r.value, "%ld %ld", &failed, &at) == 2) {
		metrics_set(m_ledger_violations, (double)failed);
		metrics_set(m_ledger_checked, (double)at);
	}
}

static void sweep(evutil_socket_t fd, short what, void *arg)
{
	if (!gw.draining && busy == 0 && pg_pool_connected(gw.db)) {
		/* a pass starts only when the last one has finished: the time since is the lag */
		metrics_set(m_lag, (double)util_now_ms() / 1000.0);
		busy++;
		pg_query(gw.db, "outbox_backlog", 0, NULL, cfg.db_timeout_ms, outbox_measured, NULL);
		busy++;
		pg_query(gw.db, "ledger_check_status", 0, NULL, cfg.db_timeout_ms, ledger_check_read, NULL);
		char after[16];
		snprintf(after, sizeof after, "%d", cfg.query_after_s);
		busy += 2;
		const char *limit[1] = {"200"};
		pg_query(gw.db, "expire_due", 1, limit, cfg.db_timeout_ms, expired, NULL);
		const char *qp[2] = {after, "20"};
		pg_query(gw.db, "attempts_to_query", 2, qp, cfg.db_timeout_ms, got_attempts, NULL);
		const char *rp[2] = {"30", "20"};
		busy++;
		pg_query(gw.db, "refunds_to_retry", 2, rp, cfg.db_timeout_ms, got_refunds, NULL);
		if (util_monotonic_us() - last_cleanup_us > 600LL * 1000000) {
			last_cleanup_us = util_monotonic_us();
			busy++;
			pg_query(gw.db, "idempotency_cleanup", 0, NULL, cfg.db_timeout_ms, simple_done, NULL);
		}
	}
	struct timeval tv = {.tv_sec = cfg.sweep_interval_ms / 1000, .tv_usec = (cfg.sweep_interval_ms % 1000) * 1000};
	evtimer_add(timer, &tv);
}

void sweeper_start(void)
{
	m_lag = metrics_gauge("feegate_sweeper_lag_seconds", NULL,
			      "Seconds since the sweeper (expiry, bank queries, refund retries) last started a pass; "
			      "about the sweep interval when healthy, growing while a pass hangs or the database is away.",
			      METRICS_AGE);
	m_outbox_due = metrics_gauge("feegate_outbox_due", NULL,
				     "Webhook outbox rows due for delivery now (counted up to 100000), as of the last sweep.",
				     METRICS_LAST);
	m_outbox_oldest = metrics_gauge("feegate_outbox_oldest_due_seconds", NULL,
					"How long the oldest due webhook outbox row has been due, in seconds, as of the last sweep.",
					METRICS_LAST);
	m_ledger_violations = metrics_gauge("feegate_ledger_check_violations", NULL,
					    "Invariants the last `feegate ledger check` found violated (0: all hold).",
					    METRICS_LAST);
	m_ledger_checked = metrics_gauge("feegate_ledger_check_last_run_timestamp_seconds", NULL,
					 "When `feegate ledger check` last ran, unix seconds (0: never).", METRICS_LAST);
	timer = evtimer_new(gw.base, sweep, NULL);
	struct timeval tv = {0, 200000};
	evtimer_add(timer, &tv);
}

void sweeper_stop(void)
{
	if (timer) {
		event_free(timer);
		timer = NULL;
	}
}

int sweeper_busy(void)
{
	return busy;
}
