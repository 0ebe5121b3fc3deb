#include "lib/batch.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"
#include "lib/pgrow.h"
#include "lib/util.h"

struct item {
	json_t *row;
	batch_done_fn done;
	void *arg;
	int64_t queued_us; /* when it was submitted: its wait is a metric */
};

/* Items per batch and the time an item waits for its batch to be sent. */
static const double size_bounds[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
static const double wait_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};

struct batcher {
	struct event_base *base;
	struct pg_pool *pool;
	char *stmt;
	int window_us, max_items, timeout_ms;
	struct item *queue;
	int nqueue, cap;
	int in_flight; /* items sent and not yet answered */
	int batches_in_flight;
	int max_batches; /* more waiting makes the next batch bigger, not more fsyncs */
	struct event *timer;
	metric_id m_size, m_wait, m_queued, m_batches;
};

struct sent {
	struct batcher *b;
	struct item *items;
	int n;
};

static void send_items(struct batcher *b, struct item *items, int n);

/* The batch function's first column: the item's index in the batch. */
struct item_row {
	int64_t r_idx;
};
static const struct pg_col item_cols[] = {PG_COL(struct item_row, r_idx, PG_INT64)};

static void sent_done(void *arg, PGresult *res, enum pg_status st)
{
	struct sent *s = arg;
	struct batcher *b = s->b;
	b->in_flight -= s->n;
	b->batches_in_flight--;
	if (st == PG_SQL_ERROR && s->n > 1) {
		log_warn(NULL, "batch of %d failed in %s (%s); retrying its items one by one", s->n, b->stmt,
			 pg_sqlstate(res));
		for (int i = 0; i < s->n; i++) {
			struct item *one = xmalloc(sizeof *one);
			*one = s->items[i];
			send_items(b, one, 1);
		}
		free(s->items);
		free(s);
		return;
	}
	int *row_of = xmalloc(sizeof(int) * (size_t)s->n);
	for (int i = 0; i < s->n; i++)
		row_of[i] = -1;
	if (st == PG_OK) {
		metrics_add(b->m_batches, 1);
		struct item_row it;
		for (int r = 0; r < PQntuples(res) && PG_ROW(res, r, item_cols, &it); r++) {
			int idx = (int)it.r_idx;
			if (idx >= 0 && idx < s->n && row_of[idx] < 0)
				row_of[idx] = r;
		}
	}
	for (int i = 0; i < s->n; i++) {
		s->items[i].done(s->items[i].arg, res, row_of[i], st);
		json_decref(s->items[i].row);
	}
	free(row_of);
	free(s->items);
	free(s);
	metrics_set(b->m_queued, b->nqueue + b->in_flight);
	if (b->nqueue && !evtimer_pending(b->timer, NULL))
		batcher_flush(b);
}

static void send_items(struct batcher *b, struct item *items, int n)
{
	json_t *arr = json_array();
	int64_t now = util_monotonic_us();
	metrics_observe(b->m_size, n);
	for (int i = 0; i < n; i++) {
		metrics_observe(b->m_wait, (double)(now - items[i].queued_us) / 1e6);
		json_object_set_new(items[i].row, "i", json_integer(i));
		json_array_append(arr, items[i].row);
	}
	char *text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	struct sent *s = xmalloc(sizeof *s);
	s->b = b;
	s->items = items;
	s->n = n;
	b->in_flight += n;
	b->batches_in_flight++;
	const char *params[1] = {text};
	pg_query(b->pool, b->stmt, 1, params, b->timeout_ms, sent_done, s);
	free(text);
}

void batcher_flush(struct batcher *b)
{
	while (b->nqueue > 0 && b->batches_in_flight < b->max_batches) {
		int n = b->nqueue < b->max_items ? b->nqueue : b->max_items;
		struct item *items = xmalloc(sizeof(struct item) * (size_t)n);
		memcpy(items, b->queue, sizeof(struct item) * (size_t)n);
		memmove(b->queue, b->queue + n, sizeof(struct item) * (size_t)(b->nqueue - n));
		b->nqueue -= n;
		send_items(b, items, n);
	}
}

static void window_cb(evutil_socket_t fd, short what, void *arg)
{
	batcher_flush(arg);
}

void batcher_submit(struct batcher *b, json_t *row, batch_done_fn done, void *arg)
{
	if (b->nqueue == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->queue = xrealloc(b->queue, sizeof(struct item) * (size_t)b->cap);
	}
	b->queue[b->nqueue++] = (struct item){row, done, arg, util_monotonic_us()};
	metrics_set(b->m_queued, b->nqueue + b->in_flight);
	if (b->nqueue >= b->max_items && b->batches_in_flight < b->max_batches) {
		evtimer_del(b->timer);
		batcher_flush(b);
		return;
	}
	if (!evtimer_pending(b->timer, NULL)) {
		struct timeval tv = {.tv_sec = b->window_us / 1000000, .tv_usec = b->window_us % 1000000};
		evtimer_add(b->timer, &tv);
	}
}

int batcher_pending(const struct batcher *b)
{
	return b->nqueue + b->in_flight;
}

struct batcher *batcher_new(struct event_base *base, struct pg_pool *pool, const char *stmt, int window_us,
			    int max_items, int max_batches, int timeout_ms, const char *counter)
{
	struct batcher *b = xcalloc(1, sizeof *b);
	b->max_batches = max_batches;
	b->base = base;
	b->pool = pool;
	b->stmt = xstrdup(stmt);
	b->window_us = window_us;
	b->max_items = max_items;
	b->timeout_ms = timeout_ms;
	b->timer = evtimer_new(base, window_cb, b);
	char labels[96], name[64], help[160];
	snprintf(labels, sizeof labels, "batcher=\"%s\"", stmt);
	b->m_size = metrics_histogram("feegate_batch_size_items", labels, "Items per batch sent, by batcher.", size_bounds,
				      (int)ARRAY_LEN(size_bounds));
	b->m_wait = metrics_histogram("feegate_batch_wait_seconds", labels,
				      "Time an item waits in its batcher until its batch is sent, in seconds.", wait_bounds,
				      (int)ARRAY_LEN(wait_bounds));
	b->m_queued = metrics_gauge("feegate_batch_pending_items", labels,
				    "Items queued or in flight in each batcher, all workers.", METRICS_SUM);
	b->m_batches = -1;
	if (counter) {
		snprintf(name, sizeof name, "feegate_%s_total", counter);
		snprintf(help, sizeof help, "Batches committed by the %s batcher (one transaction each).", stmt);
		b->m_batches = metrics_counter(name, NULL, help);
	}
	return b;
}

void batcher_free(struct batcher *b)
{
	if (!b)
		return;
	evtimer_del(b->timer);
	b->max_batches = b->batches_in_flight + 1 + b->nqueue; /* shutting down: send everything */
	batcher_flush(b);
	event_free(b->timer);
	free(b->queue);
	free(b->stmt);
	free(b);
}
