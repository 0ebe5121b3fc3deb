/*
 * Order intake through the group-commit batcher (lib/batch.c): rows from concurrent requests
 * share one call of feegate_intake(), one transaction, one WAL flush. A row whose
 * Idempotency-Key is held by a transaction still in flight comes back 'busy' at once (it never
 * makes its batch wait) and is retried alone with backoff until FEEGATE_IDEMPOTENCY_WAIT_MS.
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/db.h"
#include "gateway/gateway.h"
#include "lib/batch.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"

static struct batcher *batcher;
static int waiting_retries;

struct intake_wait {
	intake_done_fn done;
	void *arg;
	json_t *row;          /* kept for retries */
	int64_t deadline_us;  /* of waiting for a key in use */
	int delay_ms;
	struct event *timer;
};

static void item_done(void *arg, PGresult *res, int row, enum pg_status st);

static void wait_free(struct intake_wait *w)
{
	if (w->timer)
		event_free(w->timer);
	json_decref(w->row);
	free(w);
}

static void retry_now(evutil_socket_t fd, short what, void *arg)
{
	struct intake_wait *w = arg;
	waiting_retries--;
	batcher_submit(batcher, json_incref(w->row), item_done, w);
}

/* intake: one row per order */
struct intake_row {
	int64_t r_idx;
	int r_outcome; /* enum db_outcome */
	int64_t r_status;
	const char *r_body, *r_order_id;
};
static const struct pg_col intake_cols[] = {
	PG_COL(struct intake_row, r_idx, PG_INT64),
	PG_COL_WORD(struct intake_row, r_outcome, db_outcomes),
	PG_COL(struct intake_row, r_status, PG_INT64),
	PG_COL(struct intake_row, r_body, PG_TEXT_NULL),
	PG_COL(struct intake_row, r_order_id, PG_TEXT_NULL),
};

static enum intake_outcome intake_outcome_of(enum db_outcome o)
{
	switch (o) {
	case OUTCOME_CREATED:
		return INTAKE_CREATED;
	case OUTCOME_REPLAY:
		return INTAKE_REPLAY;
	case OUTCOME_DUPLICATE:
		return INTAKE_DUPLICATE;
	default: /* key_reused */
		return INTAKE_KEY_REUSED;
	}
}

static void item_done(void *arg, PGresult *res, int row, enum pg_status st)
{
	struct intake_wait *w = arg;
	struct intake_result r = {.outcome = INTAKE_UNAVAILABLE, .status = 503};
	struct intake_row ir;
	if (st == PG_OK && (row < 0 || !PG_ROW(res, row, intake_cols, &ir))) {
		log_error(NULL, "intake row failed: no result row");
		r.outcome = INTAKE_FAILED;
		r.status = 500;
	} else if (st == PG_OK) {
		if (ir.r_outcome == OUTCOME_BUSY) {
			if (util_monotonic_us() < w->deadline_us && !gw.draining) {
				/* 10 ms doubling to 200 ms: quick when the other request is quick */
				w->delay_ms = w->delay_ms ? (w->delay_ms * 2 > 200 ? 200 : w->delay_ms * 2) : 10;
				if (!w->timer)
					w->timer = evtimer_new(gw.base, retry_now, w);
				struct timeval tv = {0, w->delay_ms * 1000};
				evtimer_add(w->timer, &tv);
				waiting_retries++;
				return;
			}
			r.outcome = INTAKE_KEY_IN_USE;
			r.status = 409;
		} else {
			r.status = (int)ir.r_status;
			r.body = ir.r_body;
			r.order_id = ir.r_order_id;
			r.outcome = intake_outcome_of((enum db_outcome)ir.r_outcome);
			if (r.outcome == INTAKE_CREATED)
				metrics_count("intake_orders");
		}
	} else if (st == PG_SQL_ERROR && strcmp(pg_sqlstate(res), "55P03") == 0) {
		r.outcome = INTAKE_KEY_IN_USE;
		r.status = 409;
	} else if (st == PG_SQL_ERROR) {
		log_error(NULL, "intake row failed: %s", res ? PQresultErrorMessage(res) : "no result row");
		r.outcome = INTAKE_FAILED;
		r.status = 500;
	}
	w->done(w->arg, &r);
	wait_free(w);
}

void intake_submit(json_t *row, intake_done_fn done, void *arg)
{
	struct intake_wait *w = xcalloc(1, sizeof *w);
	w->done = done;
	w->arg = arg;
	w->row = json_incref(row);
	w->deadline_us = util_monotonic_us() + (int64_t)cfg.idempotency_wait_ms * 1000;
	batcher_submit(batcher, row, item_done, w);
}

int intake_pending(void)
{
	return (batcher ? batcher_pending(batcher) : 0) + waiting_retries;
}

void intake_init(void)
{
	batcher = batcher_new(gw.base, gw.db, "intake", cfg.batch_window_us, cfg.batch_max, cfg.batch_inflight,
			      cfg.db_timeout_ms * 2, "intake_batches");
	(void)metrics_counter("feegate_intake_orders_total", NULL, "Orders created (201 answers of POST /v1/orders).");
}

void intake_shutdown(void)
{
	if (batcher)
		batcher_flush(batcher);
}
