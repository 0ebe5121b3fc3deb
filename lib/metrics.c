#include "lib/metrics.h"

#include <dirent.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#define MIN_STATUS 100
#define MAX_STATUS 599
#define N_STATUS (MAX_STATUS - MIN_STATUS + 1)
static const double buckets_ms[] = {0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define N_BUCKETS ARRAY_LEN(buckets_ms)
#define MAX_COLLECTORS 8

enum series_kind { KIND_FREE, KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

struct series_def {
	char name[64];
	char labels[96];
	char help[192];
	int32_t kind; /* enum series_kind; written last, with release order, so readers see a whole def */
	int32_t agg;  /* enum metrics_agg, gauges only */
	int32_t nbounds;
	double bounds[METRICS_MAX_BOUNDS];
};

/* Counter: v[0]. Gauge: v[worker], a double's bits. Histogram: v[0..nbounds] bucket counts
 * (not cumulative), v[HIST_SUM] the sum (a double's bits). */
#define HIST_SUM (METRICS_MAX_BOUNDS + 1)
struct series_val {
	uint64_t v[METRICS_MAX_WORKERS];
};

struct worker_gauges {
	int32_t alive;
	int32_t pid;
};

struct shm {
	uint64_t requests[METRICS_MAX_ROUTES][N_STATUS];
	uint64_t latency[METRICS_MAX_ROUTES][N_BUCKETS + 1];
	uint64_t latency_sum_us[METRICS_MAX_ROUTES];
	struct worker_gauges workers[METRICS_MAX_WORKERS];
	int32_t master_pid;
	double start_time; /* unix seconds */
	int32_t registry_lock;
	int32_t nseries;
	struct series_def defs[METRICS_MAX_SERIES];
	struct series_val vals[METRICS_MAX_SERIES];
};

static struct shm *shm;
static const char *const *routes;
static int nroutes;
static int my_slot;
static metrics_collector_fn collectors[MAX_COLLECTORS];
static int ncollectors;

static double wall_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool metrics_init(const char *const *route_names, int n)
{
	if (n > METRICS_MAX_ROUTES) {
		log_error(NULL, "metrics: %d routes, more than METRICS_MAX_ROUTES (%d)", n, METRICS_MAX_ROUTES);
		return false;
	}
	void *p = mmap(NULL, sizeof(struct shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return false;
	memset(p, 0, sizeof(struct shm));
	shm = p;
	shm->master_pid = (int32_t)getpid();
	shm->start_time = wall_seconds();
	routes = route_names;
	nroutes = n;
	return true;
}

void metrics_set_worker(int slot)
{
	my_slot = slot % METRICS_MAX_WORKERS;
	if (shm) {
		__atomic_store_n(&shm->workers[my_slot].pid, (int32_t)getpid(), __ATOMIC_RELAXED);
		__atomic_store_n(&shm->workers[my_slot].alive, 1, __ATOMIC_RELAXED);
	}
}

void metrics_request(int route, int status, int64_t latency_us)
{
	if (!shm || route < 0 || route >= nroutes)
		return;
	if (status < MIN_STATUS || status > MAX_STATUS)
		status = 500; /* evhttp sends nothing else; kept in range for safety */
	__atomic_add_fetch(&shm->requests[route][status - MIN_STATUS], 1, __ATOMIC_RELAXED);
	size_t b;
	for (b = 0; b < N_BUCKETS; b++) {
		if ((double)latency_us <= buckets_ms[b] * 1000.0)
			break;
	}
	__atomic_add_fetch(&shm->latency[route][b], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&shm->latency_sum_us[route], (uint64_t)latency_us, __ATOMIC_RELAXED);
}

void metrics_worker_gone(int slot)
{
	if (!shm)
		return;
	slot %= METRICS_MAX_WORKERS;
	memset(&shm->workers[slot], 0, sizeof(struct worker_gauges));
	int n = __atomic_load_n(&shm->nseries, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++) {
		if (shm->defs[i].kind == KIND_GAUGE && shm->defs[i].agg != METRICS_LAST && shm->defs[i].agg != METRICS_AGE)
			__atomic_store_n(&shm->vals[i].v[slot], 0, __ATOMIC_RELAXED);
	}
}

/* ---- registry */

static uint64_t bits_of(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof u);
	return u;
}

static double double_of(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof d);
	return d;
}

static metric_id find_series(const char *name, const char *labels)
{
	int n = __atomic_load_n(&shm->nseries, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++) {
		if (strcmp(shm->defs[i].name, name) == 0 && strcmp(shm->defs[i].labels, labels) == 0)
			return i;
	}
	return -1;
}

static metric_id register_series(const char *name, const char *labels, const char *help, int kind, int agg,
				 const double *bounds, int nbounds)
{
	if (!shm || !name || strlen(name) >= sizeof shm->defs[0].name)
		return -1;
	labels = labels ? labels : "";
	if (strlen(labels) >= sizeof shm->defs[0].labels || nbounds > METRICS_MAX_BOUNDS)
		return -1;
	metric_id id = find_series(name, labels);
	if (id >= 0)
		return id;
	/* Registration is rare (start-up, a batcher's creation): a spin lock across processes. */
	while (__atomic_exchange_n(&shm->registry_lock, 1, __ATOMIC_ACQUIRE))
		;
	id = find_series(name, labels);
	if (id < 0 && shm->nseries < METRICS_MAX_SERIES) {
		id = shm->nseries;
		struct series_def *d = &shm->defs[id];
		snprintf(d->name, sizeof d->name, "%s", name);
		snprintf(d->labels, sizeof d->labels, "%s", labels);
		snprintf(d->help, sizeof d->help, "%s", help ? help : name);
		d->agg = agg;
		d->nbounds = nbounds;
		for (int b = 0; b < nbounds; b++)
			d->bounds[b] = bounds[b];
		d->kind = kind;
		__atomic_store_n(&shm->nseries, id + 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&shm->registry_lock, 0, __ATOMIC_RELEASE);
	return id;
}

metric_id metrics_counter(const char *name, const char *labels, const char *help)
{
	return register_series(name, labels, help, KIND_COUNTER, 0, NULL, 0);
}

metric_id metrics_gauge(const char *name, const char *labels, const char *help, enum metrics_agg agg)
{
	return register_series(name, labels, help, KIND_GAUGE, (int)agg, NULL, 0);
}

metric_id metrics_histogram(const char *name, const char *labels, const char *help, const double *bounds,
			    int nbounds)
{
	return register_series(name, labels, help, KIND_HISTOGRAM, 0, bounds, nbounds);
}

void metrics_add(metric_id id, uint64_t n)
{
	if (shm && id >= 0 && id < METRICS_MAX_SERIES)
		__atomic_add_fetch(&shm->vals[id].v[0], n, __ATOMIC_RELAXED);
}

void metrics_set(metric_id id, double value)
{
	if (!shm || id < 0 || id >= METRICS_MAX_SERIES)
		return;
	int agg = shm->defs[id].agg;
	int slot = agg == METRICS_LAST || agg == METRICS_AGE ? 0 : my_slot;
	__atomic_store_n(&shm->vals[id].v[slot], bits_of(value), __ATOMIC_RELAXED);
}

void metrics_observe(metric_id id, double value)
{
	if (!shm || id < 0 || id >= METRICS_MAX_SERIES)
		return;
	const struct series_def *d = &shm->defs[id];
	int b;
	for (b = 0; b < d->nbounds; b++) {
		if (value <= d->bounds[b])
			break;
	}
	__atomic_add_fetch(&shm->vals[id].v[b], 1, __ATOMIC_RELAXED);
	uint64_t *sum = &shm->vals[id].v[HIST_SUM];
	uint64_t old = __atomic_load_n(sum, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(sum, &old, bits_of(double_of(old) + value), true, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
}

void metrics_count(const char *short_name)
{
	if (!shm)
		return;
	char name[64];
	if (snprintf(name, sizeof name, "feegate_%s_total", short_name) >= (int)sizeof name)
		return;
	metric_id id = find_series(name, "");
	if (id < 0) {
		char help[192];
		snprintf(help, sizeof help, "Events counted as %s (no description registered).", short_name);
		id = metrics_counter(name, NULL, help);
	}
	metrics_add(id, 1);
}

void metrics_collector(metrics_collector_fn fn)
{
	if (ncollectors < MAX_COLLECTORS)
		collectors[ncollectors++] = fn;
}

/* ---- rendering */

/* A sample's braces: the series' own labels and one more pair (either may be empty). */
static void labels_of(char *out, size_t cap, const char *own, const char *extra)
{
	if (!*own && !*extra)
		out[0] = '\0';
	else
		snprintf(out, cap, "{%s%s%s}", own, *own && *extra ? "," : "", extra);
}

static double gauge_value(const struct series_def *d, const struct series_val *v)
{
	if (d->agg == METRICS_LAST)
		return double_of(__atomic_load_n(&v->v[0], __ATOMIC_RELAXED));
	if (d->agg == METRICS_AGE) {
		double at = double_of(__atomic_load_n(&v->v[0], __ATOMIC_RELAXED));
		double age = wall_seconds() - (at > 0 ? at : shm->start_time);
		return age > 0 ? age : 0;
	}
	double acc = 0;
	bool first = true;
	for (int w = 0; w < METRICS_MAX_WORKERS; w++) {
		if (!shm->workers[w].alive)
			continue;
		double x = double_of(__atomic_load_n(&v->v[w], __ATOMIC_RELAXED));
		if (d->agg == METRICS_SUM)
			acc += x;
		else if (first || x > acc)
			acc = x;
		first = false;
	}
	return acc;
}

double metrics_gauge_read(metric_id id)
{
	int n = shm ? __atomic_load_n(&shm->nseries, __ATOMIC_ACQUIRE) : 0;
	if (id < 0 || id >= n)
		return 0;
	return gauge_value(&shm->defs[id], &shm->vals[id]);
}

static void render_series(struct evbuffer *out, int i)
{
	const struct series_def *d = &shm->defs[i];
	const struct series_val *v = &shm->vals[i];
	char lb[160];
	if (d->kind == KIND_COUNTER) {
		labels_of(lb, sizeof lb, d->labels, "");
		evbuffer_add_printf(out, "%s%s %lu\n", d->name, lb,
				    (unsigned long)__atomic_load_n(&v->v[0], __ATOMIC_RELAXED));
	} else if (d->kind == KIND_GAUGE) {
		labels_of(lb, sizeof lb, d->labels, "");
		evbuffer_add_printf(out, "%s%s %.17g\n", d->name, lb, gauge_value(d, v));
	} else if (d->kind == KIND_HISTOGRAM) {
		uint64_t cum = 0;
		char le[48];
		for (int b = 0; b <= d->nbounds; b++) {
			cum += __atomic_load_n(&v->v[b], __ATOMIC_RELAXED);
			if (b < d->nbounds)
				snprintf(le, sizeof le, "le=\"%g\"", d->bounds[b]);
			else
				snprintf(le, sizeof le, "le=\"+Inf\"");
			labels_of(lb, sizeof lb, d->labels, le);
			evbuffer_add_printf(out, "%s_bucket%s %lu\n", d->name, lb, (unsigned long)cum);
		}
		labels_of(lb, sizeof lb, d->labels, "");
		evbuffer_add_printf(out, "%s_sum%s %.17g\n%s_count%s %lu\n", d->name, lb,
				    double_of(__atomic_load_n(&v->v[HIST_SUM], __ATOMIC_RELAXED)), d->name, lb,
				    (unsigned long)cum);
	}
}

/* Each family once, its HELP and TYPE first, all its series together (the text format's rule). */
static void render_registry(struct evbuffer *out)
{
	static const char *const type_names[] = {"", "counter", "gauge", "histogram"};
	int n = __atomic_load_n(&shm->nseries, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++) {
		const struct series_def *d = &shm->defs[i];
		bool seen = false;
		for (int j = 0; j < i && !seen; j++)
			seen = strcmp(shm->defs[j].name, d->name) == 0;
		if (seen)
			continue;
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name, type_names[d->kind]);
		for (int j = i; j < n; j++) {
			if (strcmp(shm->defs[j].name, d->name) == 0 && shm->defs[j].kind == d->kind)
				render_series(out, j);
		}
	}
}

struct proc_figures {
	double cpu_s, rss_bytes, vsize_bytes, start_s;
	long open_fds, max_fds;
};

/* /proc/<pid>/stat fields 14-15 (utime, stime, in ticks), 22 (start, ticks after boot), 23
 * (vsize, bytes), 24 (rss, pages); the command name (field 2) may hold spaces, so parse after
 * its closing parenthesis. */
static bool read_proc(int pid, double boot_s, struct proc_figures *f)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return false;
	size_t len = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[len] = '\0';
	const char *p = strrchr(buf, ')');
	if (!p)
		return false;
	unsigned long utime, stime, vsize;
	unsigned long long start;
	long rss;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %llu %lu %ld",
		   &utime, &stime, &start, &vsize, &rss) != 5)
		return false;
	double tick = (double)sysconf(_SC_CLK_TCK);
	f->cpu_s += (double)(utime + stime) / tick;
	f->rss_bytes += (double)rss * (double)sysconf(_SC_PAGESIZE);
	f->vsize_bytes += (double)vsize;
	double started = boot_s + (double)start / tick;
	if (f->start_s == 0 || started < f->start_s)
		f->start_s = started;
	snprintf(path, sizeof path, "/proc/%d/fd", pid);
	DIR *dir = opendir(path);
	if (dir) {
		for (struct dirent *e; (e = readdir(dir));) {
			if (e->d_name[0] != '.')
				f->open_fds++;
		}
		closedir(dir);
	}
	return true;
}

static double boot_time(void)
{
	FILE *fp = fopen("/proc/stat", "r");
	char line[256];
	double bt = 0;
	while (fp && fgets(line, sizeof line, fp)) {
		if (strncmp(line, "btime ", 6) == 0) {
			bt = strtod(line + 6, NULL);
			break;
		}
	}
	if (fp)
		fclose(fp);
	return bt;
}

/* The standard process_* figures, for the gateway as a whole: the master and its workers
 * (CPU, memory and descriptors summed; the start time is the master's). */
static void render_process(struct evbuffer *out)
{
	struct proc_figures f = {0};
	double bt = boot_time();
	if (!read_proc(shm->master_pid, bt, &f))
		read_proc((int)getpid(), bt, &f);
	for (int w = 0; w < METRICS_MAX_WORKERS; w++) {
		int pid = __atomic_load_n(&shm->workers[w].pid, __ATOMIC_RELAXED);
		if (shm->workers[w].alive && pid > 0 && pid != shm->master_pid)
			read_proc(pid, bt, &f);
	}
	struct rlimit rl;
	f.max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)rl.rlim_cur : -1;
	evbuffer_add_printf(out,
			    "# HELP process_cpu_seconds_total User and system CPU time of the gateway's processes (master and workers), in seconds.\n"
			    "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
			    "# HELP process_resident_memory_bytes Resident memory of the gateway's processes, summed, in bytes.\n"
			    "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %.0f\n"
			    "# HELP process_virtual_memory_bytes Virtual memory of the gateway's processes, summed, in bytes.\n"
			    "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %.0f\n"
			    "# HELP process_open_fds Open file descriptors of the gateway's processes, summed.\n"
			    "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n"
			    "# HELP process_max_fds Limit on open file descriptors of each process.\n"
			    "# TYPE process_max_fds gauge\nprocess_max_fds %ld\n"
			    "# HELP process_start_time_seconds Start time of the gateway (its master process) since the epoch, in seconds.\n"
			    "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
			    f.cpu_s, f.rss_bytes, f.vsize_bytes, f.open_fds, f.max_fds, f.start_s > 0 ? f.start_s : shm->start_time);
}

void metrics_render(struct evbuffer *out)
{
	if (!shm)
		return;
	evbuffer_add_printf(out, "# HELP feegate_http_requests_total HTTP requests answered, by route and status code.\n"
				 "# TYPE feegate_http_requests_total counter\n");
	for (int r = 0; r < nroutes; r++) {
		for (int s = 0; s < N_STATUS; s++) {
			uint64_t v = __atomic_load_n(&shm->requests[r][s], __ATOMIC_RELAXED);
			if (v)
				evbuffer_add_printf(out, "feegate_http_requests_total{route=\"%s\",status=\"%d\"} %lu\n",
						    routes[r], s + MIN_STATUS, (unsigned long)v);
		}
	}
	evbuffer_add_printf(out, "# HELP feegate_http_request_duration_seconds Time from request to answer, by route, in seconds.\n"
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
	int workers = 0;
	for (int w = 0; w < METRICS_MAX_WORKERS; w++)
		workers += shm->workers[w].alive ? 1 : 0;
	evbuffer_add_printf(out,
			    "# HELP feegate_workers Worker processes serving the port.\n# TYPE feegate_workers gauge\n"
			    "feegate_workers %d\n",
			    workers);
	render_registry(out);
	for (int c = 0; c < ncollectors; c++)
		collectors[c](out);
	render_process(out);
}
