#ifndef FEEGATE_METRICS_H
#define FEEGATE_METRICS_H
/*
 * Counters live in one anonymous shared mapping made by the master before it forks, so every
 * worker adds to the same numbers and any worker can answer /metrics for the whole gateway.
 * Counters only go up (atomic adds); gauges are per-worker slots summed at scrape time.
 */
#include <stdbool.h>
#include <stdint.h>

#define METRICS_MAX_ROUTES 48
#define METRICS_MAX_WORKERS 64

struct evbuffer;

struct pool_gauges {
	int32_t total, idle, busy, queued, connected;
};

/* Called once in the master; route names are kept by pointer. */
bool metrics_init(const char *const *route_names, int nroutes);
void metrics_set_worker(int slot); /* which gauge slot this process writes */
void metrics_request(int route, int status, int64_t latency_us);
void metrics_db_pool(const struct pool_gauges *g);
void metrics_redis_up(bool up);
void metrics_count(const char *name); /* named event counters: see metrics.c for the list */
void metrics_worker_gone(int slot);   /* master: a worker exited, zero its gauges */
void metrics_render(struct evbuffer *out);

#endif
