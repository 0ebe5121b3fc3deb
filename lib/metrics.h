#ifndef FEEGATE_METRICS_H
#define FEEGATE_METRICS_H
/*
 * Metrics live in one anonymous shared mapping made by the master before it forks, so every
 * worker adds to the same numbers and any worker can answer /metrics for the whole gateway.
 * Counters only go up (atomic adds); gauges are per-worker slots combined at scrape time.
 *
 * Modules register their own series (name, labels, HELP) where they are measured; the
 * registry is in the shared mapping too, so a series a worker registers after the fork is seen
 * by whichever worker answers the scrape. Registering the same name and labels again returns
 * the same series. Names follow Prometheus' rules: base units (seconds, bytes) in the name,
 * counters end in _total.
 */
#include <stdbool.h>
#include <stdint.h>

#define METRICS_MAX_ROUTES 128
#define METRICS_MAX_WORKERS 64
#define METRICS_MAX_SERIES 160
#define METRICS_MAX_BOUNDS 16

struct evbuffer;

/* How a gauge's per-worker values become the one value scraped. */
enum metrics_agg {
	METRICS_SUM,  /* each worker's share, summed (queue lengths) */
	METRICS_MAX,  /* the largest (worst) worker value */
	METRICS_LAST, /* one value for the whole gateway, whoever measured it last */
	METRICS_AGE,  /* set to a unix time; scraped as the seconds since (since start if unset) */
};

typedef int metric_id; /* -1: not registered (the registry is full); using it does nothing */

/* Called once in the master; route names are kept by pointer. */
bool metrics_init(const char *const *route_names, int nroutes);
void metrics_set_worker(int slot); /* which gauge slot this process writes */
void metrics_request(int route, int status, int64_t latency_us);
void metrics_worker_gone(int slot); /* master: a worker exited, zero its gauges */
void metrics_render(struct evbuffer *out);

/* labels: NULL or Prometheus label pairs without braces, e.g. "state=\"idle\"". */
metric_id metrics_counter(const char *name, const char *labels, const char *help);
metric_id metrics_gauge(const char *name, const char *labels, const char *help, enum metrics_agg agg);
/* bounds: ascending upper bounds of the buckets (at most METRICS_MAX_BOUNDS); +Inf is added. */
metric_id metrics_histogram(const char *name, const char *labels, const char *help, const double *bounds,
			    int nbounds);
void metrics_add(metric_id id, uint64_t n);
void metrics_set(metric_id id, double value);
void metrics_observe(metric_id id, double value);
/* A gauge's value as a scrape would show it (whole gateway); 0 for an unknown id. */
double metrics_gauge_read(metric_id id);

/* The counter feegate_<name>_total; registered with a generic HELP on first use when its
 * module has not registered it (with metrics_counter) itself. */
void metrics_count(const char *name);

/* A collector adds series computed at scrape time from state of its own (which must be shared
 * by all workers, e.g. the circuit breakers' mapping). Register in the master before forking. */
typedef void (*metrics_collector_fn)(struct evbuffer *out);
void metrics_collector(metrics_collector_fn fn);

#endif
