#include "lib/pgpool.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/util.h"

enum conn_state {
	CONN_DOWN,       /* waiting for the backoff timer */
	CONN_CONNECTING, /* PQconnectPoll in progress */
	CONN_PREPARING,  /* session settings and PREPAREs sent */
	CONN_IDLE,
	CONN_BUSY,
};

struct pg_job {
	TAILQ_ENTRY(pg_job) link;
	struct pg_pool *pool;
	char *stmt;
	int nparams;
	char **values;
	int64_t deadline_us;
	pg_done_fn fn;
	void *arg;
	struct event *timer; /* queue deadline, or the deferred failure */
	enum pg_status deferred; /* status to report when the timer fires */
};
TAILQ_HEAD(job_queue, pg_job);

struct pg_conn {
	struct pg_pool *pool;
	PGconn *pg;
	enum conn_state state;
	int fd;
	struct event *io;
	struct event *timer; /* connect timeout, backoff, or query deadline */
	struct pg_job *job;
	PGresult *result; /* last result of the running command */
	bool sql_error;   /* a result of the running command failed */
	int backoff_ms;
};

struct pg_pool {
	struct event_base *base;
	char *conninfo;
	char *init_sql; /* SET ...; PREPARE ...; sent on every new connection */
	int connect_timeout_ms;
	int size;
	struct pg_conn *conns;
	struct job_queue queue;
	int queued;
	int running;
	int live;     /* connections IDLE or BUSY */
	bool failing; /* the last connection attempt failed and none is live */
	bool closing;
	metric_id m_conns[4]; /* by enum pool_gauge */
	metric_id m_queued;
};

/* feegate_db_pool_connections' states, each this worker's share. */
enum pool_gauge { GAUGE_CONFIGURED, GAUGE_CONNECTED, GAUGE_IDLE, GAUGE_BUSY };

static void conn_connect(struct pg_conn *c);
static void conn_fail(struct pg_conn *c, const char *why);
static void conn_io_cb(evutil_socket_t fd, short what, void *arg);
static void pool_dispatch(struct pg_pool *pool);

static void register_gauges(struct pg_pool *pool)
{
	static const char *const labels[] = {"state=\"configured\"", "state=\"connected\"", "state=\"idle\"",
					     "state=\"busy\""};
	for (int i = 0; i < 4; i++)
		pool->m_conns[i] = metrics_gauge("feegate_db_pool_connections", labels[i],
						 "PostgreSQL pool connections by state, all workers.", METRICS_SUM);
	pool->m_queued = metrics_gauge("feegate_db_pool_queued", NULL, "Queries waiting for a connection, all workers.",
				       METRICS_SUM);
}

static void publish_gauges(struct pg_pool *pool)
{
	int n[4] = {pool->size, 0, 0, 0};
	for (int i = 0; i < pool->size; i++) {
		enum conn_state s = pool->conns[i].state;
		n[GAUGE_IDLE] += s == CONN_IDLE;
		n[GAUGE_BUSY] += s == CONN_BUSY;
		n[GAUGE_CONNECTED] += s == CONN_IDLE || s == CONN_BUSY;
	}
	for (int i = 0; i < 4; i++)
		metrics_set(pool->m_conns[i], n[i]);
	metrics_set(pool->m_queued, pool->queued);
}

static void job_free(struct pg_job *job)
{
	if (job->timer)
		event_free(job->timer);
	for (int i = 0; i < job->nparams; i++)
		free(job->values[i]);
	free(job->values);
	free(job->stmt);
	free(job);
}

static void job_finish(struct pg_job *job, PGresult *res, enum pg_status st)
{
	job->fn(job->arg, res, st);
	job_free(job);
}

static void job_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_job *job = arg;
	struct pg_pool *pool = job->pool;
	if (job->deferred == PG_TIMEOUT) {
		TAILQ_REMOVE(&pool->queue, job, link);
		pool->queued--;
		metrics_count("db_timeouts");
	}
	job_finish(job, NULL, job->deferred);
	publish_gauges(pool);
}

static void arm_io(struct pg_conn *c, short what)
{
	int fd = PQsocket(c->pg);
	if (fd != c->fd || !c->io) {
		if (c->io)
			event_free(c->io);
		c->io = event_new(c->pool->base, fd, what, conn_io_cb, c);
		c->fd = fd;
	} else {
		event_del(c->io);
		event_assign(c->io, c->pool->base, fd, what, conn_io_cb, c);
	}
	event_add(c->io, NULL);
}

static void arm_timer(struct pg_conn *c, int64_t us)
{
	if (us < 0)
		us = 0;
	struct timeval tv = {.tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000)};
	evtimer_add(c->timer, &tv);
}

static void conn_close(struct pg_conn *c)
{
	if (c->io) {
		event_free(c->io);
		c->io = NULL;
	}
	c->fd = -1;
	evtimer_del(c->timer);
	if (c->result) {
		PQclear(c->result);
		c->result = NULL;
	}
	if (c->pg) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	if (c->state == CONN_IDLE || c->state == CONN_BUSY)
		c->pool->live--;
	c->state = CONN_DOWN;
}

static void conn_fail(struct pg_conn *c, const char *why)
{
	struct pg_pool *pool = c->pool;
	bool was_connecting = c->state == CONN_CONNECTING || c->state == CONN_PREPARING;
	struct pg_job *job = c->job;
	c->job = NULL;
	if (c->pg && why)
		log_warn(NULL, "postgres connection lost: %s%s", why,
			 PQerrorMessage(c->pg)[0] ? " (see server log)" : "");
	conn_close(c);
	if (job) {
		pool->running--;
		job_finish(job, NULL, PG_UNAVAILABLE);
	}
	if (was_connecting) {
		metrics_count("db_connect_failures");
		if (pool->live == 0)
			pool->failing = true;
	}
	if (pool->closing)
		return;
	/* Exponential backoff with jitter: 100 ms doubling up to 5 s. */
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 100;
	if (c->backoff_ms > 5000)
		c->backoff_ms = 5000;
	unsigned char r;
	util_random(&r, 1);
	arm_timer(c, (int64_t)(c->backoff_ms / 2 + (c->backoff_ms / 2) * r / 255) * 1000);
	publish_gauges(pool);
	/* Queries waiting for a connection that will not come should not wait out their deadline. */
	if (pool->live == 0 && pool->failing) {
		while (!TAILQ_EMPTY(&pool->queue)) {
			struct pg_job *q = TAILQ_FIRST(&pool->queue);
			TAILQ_REMOVE(&pool->queue, q, link);
			pool->queued--;
			job_finish(q, NULL, PG_UNAVAILABLE);
		}
	}
}

static void conn_became_idle(struct pg_conn *c)
{
	c->state = CONN_IDLE;
	evtimer_del(c->timer);
	arm_io(c, EV_READ); /* notice a server that goes away while we are idle */
}

/* Reads whatever the server sent; returns true when the running command has completed. */
static bool conn_read_results(struct pg_conn *c, bool *broken)
{
	*broken = false;
	if (!PQconsumeInput(c->pg)) {
		*broken = true;
		return false;
	}
	while (!PQisBusy(c->pg)) {
		PGresult *res = PQgetResult(c->pg);
		if (!res)
			return true;
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
			if (!c->sql_error) {
				if (c->result)
					PQclear(c->result);
				c->result = res;
				c->sql_error = true;
			} else {
				PQclear(res);
			}
		} else if (c->sql_error) {
			PQclear(res);
		} else {
			if (c->result)
				PQclear(c->result);
			c->result = res;
		}
	}
	return false;
}

static void conn_flush_and_wait(struct pg_conn *c)
{
	int f = PQflush(c->pg);
	if (f < 0) {
		conn_fail(c, "send failed");
		return;
	}
	arm_io(c, f == 1 ? (EV_READ | EV_WRITE) : EV_READ);
}

/* Errors that say the connection, not the query, is at fault: a read-only server after a
 * switchover (25006), a server shutting down or starting (57P01-57P03), a lost connection (08). */
static bool conn_is_stale(const PGresult *res)
{
	const char *state = pg_sqlstate(res);
	return strcmp(state, "25006") == 0 || strncmp(state, "57P0", 4) == 0 || strncmp(state, "08", 2) == 0;
}

static void conn_command_done(struct pg_conn *c)
{
	struct pg_pool *pool = c->pool;
	PGresult *res = c->result;
	bool err = c->sql_error;
	c->result = NULL;
	c->sql_error = false;
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		if (res)
			PQclear(res);
		conn_fail(c, "connection bad");
		return;
	}
	if (c->state == CONN_PREPARING) {
		if (err) {
			log_error(NULL, "preparing statements failed: %s", PQresultErrorMessage(res));
			PQclear(res);
			conn_fail(c, "prepare failed");
			return;
		}
		/* The session setup ends with the server's clock: see util_db_now_ms. */
		if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 1)
			util_set_db_clock_offset_ms(strtoll(PQgetvalue(res, 0, 0), NULL, 10) - util_now_ms());
		if (res)
			PQclear(res);
		c->backoff_ms = 0;
		pool->live++;
		pool->failing = false;
		conn_became_idle(c);
		publish_gauges(pool);
		pool_dispatch(pool);
		return;
	}
	if (err && conn_is_stale(res)) {
		/* The server is no longer a primary we may write to, or is going away: this connection
		 * is done, and the next one finds the primary (a multi-host DATABASE_URL with
		 * target_session_attrs=read-write). Nothing was written, so the caller answers 503. */
		log_warn(NULL, "postgres answered %s; reconnecting to find the primary", pg_sqlstate(res));
		metrics_count("db_stale_connections");
		PQclear(res);
		conn_fail(c, NULL);
		return;
	}
	struct pg_job *job = c->job;
	c->job = NULL;
	pool->running--;
	conn_became_idle(c);
	if (job)
		job_finish(job, res, err ? PG_SQL_ERROR : PG_OK);
	if (res)
		PQclear(res);
	publish_gauges(pool);
	pool_dispatch(pool);
}

static void conn_connect_step(struct pg_conn *c)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		arm_io(c, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		arm_io(c, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		conn_fail(c, "connect failed");
		return;
	}
	if (PQsetnonblocking(c->pg, 1) != 0 || !PQsendQuery(c->pg, c->pool->init_sql)) {
		conn_fail(c, "session setup failed");
		return;
	}
	c->state = CONN_PREPARING;
	conn_flush_and_wait(c);
}

static void conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;
	switch (c->state) {
	case CONN_CONNECTING:
		conn_connect_step(c);
		return;
	case CONN_IDLE: {
		if (!PQconsumeInput(c->pg) || PQstatus(c->pg) == CONNECTION_BAD) {
			conn_fail(c, "server closed the connection");
			return;
		}
		PGnotify *n;
		while ((n = PQnotifies(c->pg)) != NULL)
			PQfreemem(n);
		arm_io(c, EV_READ);
		return;
	}
	case CONN_PREPARING:
	case CONN_BUSY: {
		if (what & EV_WRITE) {
			int f = PQflush(c->pg);
			if (f < 0) {
				conn_fail(c, "send failed");
				return;
			}
			if (f == 1) {
				/* Consume input first so the server can go on sending, then flush again. */
				if (!PQconsumeInput(c->pg)) {
					conn_fail(c, "read failed");
					return;
				}
				arm_io(c, EV_READ | EV_WRITE);
				return;
			}
		}
		bool broken;
		if (conn_read_results(c, &broken)) {
			conn_command_done(c);
			return;
		}
		if (broken) {
			conn_fail(c, "read failed");
			return;
		}
		arm_io(c, EV_READ);
		return;
	}
	case CONN_DOWN:
		return;
	}
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;
	switch (c->state) {
	case CONN_DOWN:
		conn_connect(c);
		return;
	case CONN_CONNECTING:
	case CONN_PREPARING:
		conn_fail(c, "connect timed out");
		return;
	case CONN_BUSY: {
		/* The query overran its deadline: answer the caller now and drop the connection;
		 * the server ends the query when it notices (statement_timeout as a backstop). */
		struct pg_job *job = c->job;
		c->job = NULL;
		c->pool->running--;
		metrics_count("db_timeouts");
		log_warn(NULL, "postgres query %s timed out; closing its connection", job ? job->stmt : "?");
		if (job)
			job_finish(job, NULL, PG_TIMEOUT);
		conn_close(c);
		c->backoff_ms = 0;
		arm_timer(c, 0);
		publish_gauges(c->pool);
		return;
	}
	case CONN_IDLE:
		return;
	}
}

/* libpq's default prints notices (and a server's message on an idle connection, such as a
 * shutdown's FATAL) raw to stderr; through the logger they stay JSON lines like the rest. */
static void pg_notice(void *arg, const char *message)
{
	size_t n = strlen(message);
	while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
		n--;
	log_warn(NULL, "postgresql: %.*s", (int)n, message);
}

static void conn_connect(struct pg_conn *c)
{
	c->pg = PQconnectStart(c->pool->conninfo);
	if (c->pg)
		PQsetNoticeProcessor(c->pg, pg_notice, NULL);
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
		c->state = CONN_CONNECTING;
		conn_fail(c, "connect start failed");
		return;
	}
	c->state = CONN_CONNECTING;
	arm_timer(c, (int64_t)c->pool->connect_timeout_ms * 1000);
	arm_io(c, EV_WRITE);
}

static void conn_start_job(struct pg_conn *c, struct pg_job *job)
{
	struct pg_pool *pool = c->pool;
	c->job = job;
	c->state = CONN_BUSY;
	c->sql_error = false;
	pool->running++;
	if (!PQsendQueryPrepared(c->pg, job->stmt, job->nparams, (const char *const *)job->values, NULL, NULL,
				 0)) {
		conn_fail(c, "send failed");
		return;
	}
	evtimer_del(c->timer);
	arm_timer(c, job->deadline_us - util_monotonic_us());
	conn_flush_and_wait(c);
}

static void pool_dispatch(struct pg_pool *pool)
{
	for (int i = 0; i < pool->size && !TAILQ_EMPTY(&pool->queue); i++) {
		struct pg_conn *c = &pool->conns[i];
		if (c->state != CONN_IDLE)
			continue;
		struct pg_job *job = TAILQ_FIRST(&pool->queue);
		TAILQ_REMOVE(&pool->queue, job, link);
		pool->queued--;
		event_free(job->timer);
		job->timer = NULL;
		conn_start_job(c, job);
	}
	publish_gauges(pool);
}

void pg_query(struct pg_pool *pool, const char *stmt, int nparams, const char *const *values, int timeout_ms,
	      pg_done_fn fn, void *arg)
{
	struct pg_job *job = xcalloc(1, sizeof *job);
	job->pool = pool;
	job->stmt = xstrdup(stmt);
	job->nparams = nparams;
	job->values = xcalloc((size_t)(nparams ? nparams : 1), sizeof(char *));
	for (int i = 0; i < nparams; i++)
		job->values[i] = values[i] ? xstrdup(values[i]) : NULL;
	job->deadline_us = util_monotonic_us() + (int64_t)timeout_ms * 1000;
	job->fn = fn;
	job->arg = arg;
	job->timer = evtimer_new(pool->base, job_timer_cb, job);
	if (pool->closing || (pool->live == 0 && pool->failing)) {
		/* Answer on the next loop turn, so fn never runs inside pg_query. */
		job->deferred = PG_UNAVAILABLE;
		struct timeval zero = {0, 0};
		evtimer_add(job->timer, &zero);
		return;
	}
	job->deferred = PG_TIMEOUT;
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	evtimer_add(job->timer, &tv);
	TAILQ_INSERT_TAIL(&pool->queue, job, link);
	pool->queued++;
	pool_dispatch(pool);
}

struct pg_pool *pg_pool_new(struct event_base *base, const char *conninfo, int size,
			    const struct pg_statement *stmts, int nstmts, int connect_timeout_ms,
			    int statement_timeout_ms, const char *session_sql)
{
	struct pg_pool *pool = xcalloc(1, sizeof *pool);
	(void)metrics_counter("feegate_db_timeouts_total", NULL, "PostgreSQL queries ended by their deadline.");
	(void)metrics_counter("feegate_db_connect_failures_total", NULL, "PostgreSQL connection attempts that failed.");
	(void)metrics_counter("feegate_db_stale_connections_total", NULL,
			      "PostgreSQL connections dropped because the server became read-only or was shutting down.");
	register_gauges(pool);
	pool->base = base;
	pool->conninfo = xstrdup(conninfo);
	pool->connect_timeout_ms = connect_timeout_ms;
	pool->size = size;
	TAILQ_INIT(&pool->queue);

	size_t cap = 384 + (session_sql ? strlen(session_sql) : 0);
	for (int i = 0; i < nstmts; i++)
		cap += strlen(stmts[i].name) + strlen(stmts[i].sql) + 32;
	char *sql = xmalloc(cap);
	int off = snprintf(sql, cap,
			   "SET TIME ZONE 'UTC'; SET statement_timeout = %d; "
			   "SET idle_in_transaction_session_timeout = 60000; "
			   "SET application_name = 'feegate';",
			   statement_timeout_ms);
	if (session_sql)
		off += snprintf(sql + off, cap - (size_t)off, " %s", session_sql);
	for (int i = 0; i < nstmts; i++)
		off += snprintf(sql + off, cap - (size_t)off, " PREPARE %s AS %s;", stmts[i].name, stmts[i].sql);
	snprintf(sql + off, cap - (size_t)off, " SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint;");
	pool->init_sql = sql;

	pool->conns = xcalloc((size_t)size, sizeof(struct pg_conn));
	for (int i = 0; i < size; i++) {
		struct pg_conn *c = &pool->conns[i];
		c->pool = pool;
		c->fd = -1;
		c->timer = evtimer_new(base, conn_timer_cb, c);
		conn_connect(c);
	}
	return pool;
}

void pg_pool_free(struct pg_pool *pool)
{
	if (!pool)
		return;
	pool->closing = true;
	for (int i = 0; i < pool->size; i++) {
		struct pg_conn *c = &pool->conns[i];
		struct pg_job *job = c->job;
		c->job = NULL;
		conn_close(c);
		event_free(c->timer);
		if (job)
			job_finish(job, NULL, PG_UNAVAILABLE);
	}
	while (!TAILQ_EMPTY(&pool->queue)) {
		struct pg_job *q = TAILQ_FIRST(&pool->queue);
		TAILQ_REMOVE(&pool->queue, q, link);
		job_finish(q, NULL, PG_UNAVAILABLE);
	}
	free(pool->conns);
	free(pool->conninfo);
	free(pool->init_sql);
	free(pool);
}

bool pg_pool_connected(const struct pg_pool *pool)
{
	return pool->live > 0;
}

int pg_pool_pending(const struct pg_pool *pool)
{
	return pool->queued + pool->running;
}

const char *pg_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}

bool pg_exec_blocking(PGconn *c, const char *sql, FILE *err)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok && err)
		fprintf(err, "%s", PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

const char *pg_value(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}
