/*
 * Order intake through the group-commit batcher (lib/batch.c): rows from concurrent requests
 * share one call of feegate_intake(), one transaction, one WAL flush.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "lib/batch.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"

static struct batcher *batcher;

struct intake_wait {
	intake_done_fn done;
	void *arg;
};

static void item_done(void *arg, PGresult *res, int row, enum pg_status st)
{
	struct intake_wait *w = arg;
	struct intake_result r = {.outcome = INTAKE_UNAVAILABLE, .status = 503};
	if (st == PG_OK && row >= 0) {
		const char *outcome = PQgetvalue(res, row, 1);
		r.status = atoi(PQgetvalue(res, row, 2));
		r.body = pg_value(res, row, 3);
		r.order_id = pg_value(res, row, 4);
		r.outcome = strcmp(outcome, "created") == 0     ? INTAKE_CREATED
			    : strcmp(outcome, "replay") == 0    ? INTAKE_REPLAY
			    : strcmp(outcome, "duplicate") == 0 ? INTAKE_DUPLICATE
								: INTAKE_KEY_REUSED;
		if (r.outcome == INTAKE_CREATED)
			metrics_count("intake_orders");
	} else if (st == PG_SQL_ERROR && strcmp(pg_sqlstate(res), "55P03") == 0) {
		r.outcome = INTAKE_KEY_IN_USE;
		r.status = 409;
	} else if (st == PG_SQL_ERROR || st == PG_OK) {
		log_error(NULL, "intake row failed: %s", res ? PQresultErrorMessage(res) : "no result row");
		r.outcome = INTAKE_FAILED;
		r.status = 500;
	}
	w->done(w->arg, &r);
	free(w);
}

void intake_submit(json_t *row, intake_done_fn done, void *arg)
{
	struct intake_wait *w = xmalloc(sizeof *w);
	w->done = done;
	w->arg = arg;
	batcher_submit(batcher, row, item_done, w);
}

int intake_pending(void)
{
	return batcher ? batcher_pending(batcher) : 0;
}

void intake_init(void)
{
	/* Long enough to wait out a concurrent request holding the same Idempotency-Key. */
	batcher = batcher_new(gw.base, gw.db, "intake", cfg.batch_window_us, cfg.batch_max, cfg.batch_inflight,
			      cfg.idempotency_wait_ms + cfg.db_timeout_ms, "intake_batches");
}

void intake_shutdown(void)
{
	if (batcher)
		batcher_flush(batcher);
}
