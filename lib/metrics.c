#include "lib/metrics.h"

#include <event2/buffer.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/util.h"

static const int status_codes[] = {200, 201, 204, 303, 400, 401, 403, 404, 405, 408, 409,
				   413, 422, 429, 431, 500, 502, 503, 0};
#define N_STATUS ARRAY_LEN(status_codes)
static const double buckets_ms[] = {0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define N_BUCKETS ARRAY_LEN(buckets_ms)
static const char *const counter_names[] = {
	"intake_batches", "intake_orders", "db_timeouts", "db_connect_failures",
	"redis_errors",   "auth_cache_hits", "bad_signatures", "notifications_applied",
	"webhooks_delivered", "webhooks_failed", "notification_batches", "webhooks_handed",
	"http_slow_clients", "http_connections_refused",
};
#define N_COUNTERS ARRAY_LEN(counter_names)

struct worker_gauges {
	struct pool_gauges db;
	int32_t redis_up;
	int32_t alive;
};

struct shm {
	uint64_t requests[METRICS_MAX_ROUTES][N_STATUS];
	uint64_t latency[METRICS_MAX_ROUTES][N_BUCKETS + 1];
	uint64_t latency_sum_us[METRICS_MAX_ROUTES];
	uint64_t counters[N_COUNTERS];
	struct worker_gauges workers[METRICS_MAX_WORKERS];
};

static struct shm *shm;
static const char *const *routes;
static int nroutes;
static int my_slot;

bool metrics_init(const char *const *route_names, int n)
{
	if (n > METRICS_MAX_ROUTES)
		return false;
	void *p = mmap(NULL, sizeof(struct shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return false;
	memset(p, 0, sizeof(struct shm));
	shm = p;
	routes = route_names;
	nroutes = n;
	return true;
}

void metrics_set_worker(int slot)
{
	my_slot = slot % METRICS_MAX_WORKERS;
	if (shm)
		__atomic_store_n(&shm->workers[my_slot].alive, 1, __ATOMIC_RELAXED);
}

void metrics_request(int route, int status, int64_t latency_us)
{
	if (!shm || route < 0 || route >= nroutes)
		return;
	size_t s;
	for (s = 0; s < N_STATUS - 1; s++) {
		if (status_codes[s] == status)
			break;
	}
	__atomic_add_fetch(&shm->requests[route][s], 1, __ATOMIC_RELAXED);
	size_t b;
	for (b = 0; b < N_BUCKETS; b++) {
		if ((double)latency_us <= buckets_ms[b] * 1000.0)
			break;
	}
	__atomic_add_fetch(&shm->latency[route][b], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&shm->latency_sum_us[route], (uint64_t)latency_us, __ATOMIC_RELAXED);
}

void metrics_db_pool(const struct pool_gauges *g)
{
	if (shm)
		shm->workers[my_slot].db = *g;
}

void metrics_redis_up(bool up)
{
	if (shm)
		__atomic_store_n(&shm->workers[my_slot].redis_up, up ? 1 : 0, __ATOMIC_RELAXED);
}

void metrics_count(const char *name)
{
	if (!shm)
		return;
	for (size_t i = 0; i < N_COUNTERS; i++) {
		if (strcmp(counter_names[i], name) == 0) {
			__atomic_add_fetch(&shm->counters[i], 1, __ATOMIC_RELAXED);
			return;
		}
	}
}

void metrics_worker_gone(int slot)
{
	if (shm)
		memset(&shm->workers[slot % METRICS_MAX_WORKERS], 0, sizeof(struct worker_gauges));
}

void metrics_render(struct evbuffer *out)
{
	if (!shm)
		return;
	evbuffer_add_printf(out, "# HELP feegate_http_requests_total HTTP requests by route and status.\n"
				 "# TYPE feegate_http_requests_total counter\n");
	for (int r = 0; r < nroutes; r++) {
		for (size_t s = 0; s < N_STATUS; s++) {
			uint64_t v = __atomic_load_n(&shm->requests[r][s], __ATOMIC_RELAXED);
			if (!v)
				continue;
			if (status_codes[s])
				evbuffer_add_printf(out, "feegate_http_requests_total{route=\"%s\",status=\"%d\"} %lu\n",
						    routes[r], status_codes[s], (unsigned long)v);
			else
				evbuffer_add_printf(out, "feegate_http_requests_total{route=\"%s\",status=\"other\"} %lu\n",
						    routes[r], (unsigned long)v);
		}
	}
	evbuffer_add_printf(out, "# HELP feegate_http_request_duration_seconds Request latency by route.\n"
				 "# TYPE feegate_http_request_duration_seconds histogram\n");
	for (int r = 0; r < nroutes; r++) {
		uint64_t cum = 0;
		for (size_t b = 0; b <= N_BUCKETS; b++)
			cum += __atomic_load_n(&shm->latency[r][b], __ATOMIC_RELAXED);
		if (!cum)
			continue;
		uint64_t total = cum;
		cum = 0;
		for (size_t b = 0; b < N_BUCKETS; b++) {
			cum += __atomic_load_n(&shm->latency[r][b], __ATOMIC_RELAXED);
			evbuffer_add_printf(out,
					    "feegate_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %lu\n",
					    routes[r], buckets_ms[b] / 1000.0, (unsigned long)cum);
		}
		evbuffer_add_printf(out, "feegate_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %lu\n",
				    routes[r], (unsigned long)total);
		evbuffer_add_printf(out, "feegate_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", routes[r],
				    (double)__atomic_load_n(&shm->latency_sum_us[r], __ATOMIC_RELAXED) / 1e6);
		evbuffer_add_printf(out, "feegate_http_request_duration_seconds_count{route=\"%s\"} %lu\n", routes[r],
				    (unsigned long)total);
	}
	struct pool_gauges sum = {0};
	int redis_up = 0, workers = 0;
	for (int w = 0; w < METRICS_MAX_WORKERS; w++) {
		const struct worker_gauges *g = &shm->workers[w];
		if (!g->alive)
			continue;
		workers++;
		sum.total += g->db.total;
		sum.idle += g->db.idle;
		sum.busy += g->db.busy;
		sum.queued += g->db.queued;
		sum.connected += g->db.connected;
		redis_up += g->redis_up;
	}
	evbuffer_add_printf(out,
			    "# HELP feegate_workers Worker processes serving the port.\n# TYPE feegate_workers gauge\n"
			    "feegate_workers %d\n"
			    "# HELP feegate_db_pool_connections PostgreSQL pool connections by state, all workers.\n"
			    "# TYPE feegate_db_pool_connections gauge\n"
			    "feegate_db_pool_connections{state=\"configured\"} %d\n"
			    "feegate_db_pool_connections{state=\"connected\"} %d\n"
			    "feegate_db_pool_connections{state=\"idle\"} %d\n"
			    "feegate_db_pool_connections{state=\"busy\"} %d\n"
			    "# HELP feegate_db_pool_queued Queries waiting for a connection, all workers.\n"
			    "# TYPE feegate_db_pool_queued gauge\nfeegate_db_pool_queued %d\n"
			    "# HELP feegate_redis_connected Workers connected to Redis.\n"
			    "# TYPE feegate_redis_connected gauge\nfeegate_redis_connected %d\n",
			    workers, sum.total, sum.connected, sum.idle, sum.busy, sum.queued, redis_up);
	for (size_t i = 0; i < N_COUNTERS; i++) {
		evbuffer_add_printf(out, "# TYPE feegate_%s_total counter\nfeegate_%s_total %lu\n", counter_names[i],
				    counter_names[i], (unsigned long)__atomic_load_n(&shm->counters[i], __ATOMIC_RELAXED));
	}
}
