/*
 * Group commit for order intake: rows from concurrent requests are collected for a short window
 * (FEEGATE_BATCH_WINDOW_US) or until FEEGATE_BATCH_MAX, then inserted by one call of
 * feegate_intake() — one transaction, one WAL flush for the whole batch — and each request is
 * answered after COMMIT. A batch that fails as a whole is split and its rows retried one by one,
 * so one bad row fails only itself.
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"

struct intake_item {
	json_t *row;
	intake_done_fn done;
	void *arg;
};

struct batch {
	struct intake_item *items;
	int n;
	bool single; /* a retry of one row after its batch failed */
};

static struct intake_item *pending;
static int npending, cap;
static struct event *window_timer;
static int in_flight_batches;

static void flush(void);

int intake_pending(void)
{
	return npending + in_flight_batches;
}

static void answer(struct intake_item *it, enum intake_outcome o, int status, const char *body, const char *order_id)
{
	struct intake_result r = {.outcome = o, .status = status, .body = body, .order_id = order_id};
	it->done(it->arg, &r);
	json_decref(it->row);
}

static void send_batch(struct batch *b);

static void batch_done(void *arg, PGresult *res, enum pg_status st)
{
	struct batch *b = arg;
	in_flight_batches--;
	if (st == PG_SQL_ERROR && b->n > 1) {
		log_warn(NULL, "intake batch of %d failed (%s); retrying its rows one by one", b->n, pg_sqlstate(res));
		for (int i = 0; i < b->n; i++) {
			struct batch *one = xcalloc(1, sizeof *one);
			one->items = xmalloc(sizeof *one->items);
			one->items[0] = b->items[i];
			one->n = 1;
			one->single = true;
			send_batch(one);
		}
		free(b->items);
		free(b);
		return;
	}
	bool *answered = xcalloc((size_t)b->n, sizeof(bool));
	if (st == PG_OK) {
		metrics_count("intake_batches");
		for (int r = 0; r < PQntuples(res); r++) {
			int idx = atoi(PQgetvalue(res, r, 0));
			if (idx < 0 || idx >= b->n || answered[idx])
				continue;
			const char *outcome = PQgetvalue(res, r, 1);
			int status = atoi(PQgetvalue(res, r, 2));
			const char *body = pg_value(res, r, 3);
			const char *oid = pg_value(res, r, 4);
			enum intake_outcome o = strcmp(outcome, "created") == 0     ? INTAKE_CREATED
						: strcmp(outcome, "replay") == 0    ? INTAKE_REPLAY
						: strcmp(outcome, "duplicate") == 0 ? INTAKE_DUPLICATE
										    : INTAKE_KEY_REUSED;
			if (o == INTAKE_CREATED)
				metrics_count("intake_orders");
			answered[idx] = true;
			answer(&b->items[idx], o, status, body, oid);
		}
	}
	for (int i = 0; i < b->n; i++) {
		if (answered[i])
			continue;
		if (st == PG_SQL_ERROR && strcmp(pg_sqlstate(res), "55P03") == 0) {
			answer(&b->items[i], INTAKE_KEY_IN_USE, 409, NULL, NULL);
		} else if (st == PG_SQL_ERROR || st == PG_OK) {
			log_error(NULL, "intake row failed: %s", res ? PQresultErrorMessage(res) : "no result row");
			answer(&b->items[i], INTAKE_FAILED, 500, NULL, NULL);
		} else {
			answer(&b->items[i], INTAKE_UNAVAILABLE, 503, NULL, NULL);
		}
	}
	free(answered);
	free(b->items);
	free(b);
	if (npending && !evtimer_pending(window_timer, NULL))
		flush();
}

static void send_batch(struct batch *b)
{
	json_t *arr = json_array();
	for (int i = 0; i < b->n; i++) {
		json_t *row = json_copy(b->items[i].row);
		json_object_set_new(row, "i", json_integer(i));
		json_array_append_new(arr, row);
	}
	char *text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	const char *params[1] = {text};
	in_flight_batches++;
	/* Long enough to wait out a concurrent request holding the same Idempotency-Key. */
	pg_query(gw.db, "intake", 1, params, cfg.idempotency_wait_ms + cfg.db_timeout_ms, batch_done, b);
	free(text);
}

static void flush(void)
{
	if (!npending)
		return;
	int n = npending < cfg.batch_max ? npending : cfg.batch_max;
	struct batch *b = xcalloc(1, sizeof *b);
	b->items = xmalloc(sizeof(struct intake_item) * (size_t)n);
	memcpy(b->items, pending, sizeof(struct intake_item) * (size_t)n);
	b->n = n;
	memmove(pending, pending + n, sizeof(struct intake_item) * (size_t)(npending - n));
	npending -= n;
	send_batch(b);
	if (npending)
		flush();
}

static void window_cb(evutil_socket_t fd, short what, void *arg)
{
	flush();
}

void intake_submit(json_t *row, intake_done_fn done, void *arg)
{
	if (npending == cap) {
		cap = cap ? cap * 2 : 64;
		pending = xrealloc(pending, sizeof(struct intake_item) * (size_t)cap);
	}
	pending[npending++] = (struct intake_item){row, done, arg};
	if (npending >= cfg.batch_max) {
		evtimer_del(window_timer);
		flush();
		return;
	}
	if (!evtimer_pending(window_timer, NULL)) {
		struct timeval tv = {.tv_sec = 0, .tv_usec = cfg.batch_window_us};
		evtimer_add(window_timer, &tv);
	}
}

void intake_init(void)
{
	window_timer = evtimer_new(gw.base, window_cb, NULL);
}

void intake_shutdown(void)
{
	if (window_timer) {
		evtimer_del(window_timer);
		flush();
		event_free(window_timer);
		window_timer = NULL;
	}
}
