#ifndef FEEGATE_BATCH_H
#define FEEGATE_BATCH_H
/*
 * Group commit. Rows (JSON objects) from concurrent requests are collected for a short window
 * or until a batch is full, then sent as one JSON array to one set-returning SQL function —
 * one transaction, one WAL flush — and each caller is answered after COMMIT. The function must
 * return one row per item whose first column, r_idx, is the item's index "i". A batch that fails as a
 * whole is split and its items retried one by one, so one bad item fails only itself.
 */
#include <jansson.h>

#include "lib/pgpool.h"

struct batcher;

/* Called once per item. On PG_OK, res/row is the item's result row (row -1: the function
 * returned none for it). Otherwise res may hold the SQL error (PG_SQL_ERROR) or be NULL. */
typedef void (*batch_done_fn)(void *arg, PGresult *res, int row, enum pg_status status);

/* At most max_batches are in flight at once; rows arriving meanwhile wait for the next one.
 * counter names the metrics counter bumped per committed batch (NULL: none). */
struct batcher *batcher_new(struct event_base *base, struct pg_pool *pool, const char *stmt, int window_us,
			    int max_items, int max_batches, int timeout_ms, const char *counter);
/* Queues row (stolen) for the next batch. */
void batcher_submit(struct batcher *b, json_t *row, batch_done_fn done, void *arg);
/* Items queued or in flight. */
int batcher_pending(const struct batcher *b);
/* Sends what is queued now; later submissions still work. */
void batcher_flush(struct batcher *b);
void batcher_free(struct batcher *b);

#endif
