/*
 * The duty lock. Worker 0 of each gateway keeps one non-blocking libpq connection of its own and,
 * every FEEGATE_DUTY_RETRY_MS, either tries pg_try_advisory_lock(FEEGATE_DUTY_LOCK_ID) on it
 * (not holding) or checks that the connection still answers (holding). The lock lives as long
 * as the session, so the holder must give the duties up before the server can end the session
 * and let another gateway in:
 *
 *   - the holder's check has a deadline of one period: a partitioned or stalled server makes it
 *     stop its duties at most two periods after the last answer;
 *   - the server ends a silent session only after its TCP keepalives fail, which this session
 *     sets to idle max(2, 3 periods) s + 3 probes 1 s apart: later than the two periods above.
 *
 * A holder that exits or closes the connection releases the lock at once. The work itself is
 * also safe when two gateways ran it briefly: every claim the sweeper and the relay make is
 * FOR UPDATE SKIP LOCKED with a lease (attempts.last_query_at, refunds.last_try_at, the webhook
 * row's next_attempt_at), so a row is worked by one claimant at a time.
 */
#include "gateway/duty.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gateway/sweeper.h"
#include "gateway/webhooks.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/pgpool.h"
#include "lib/util.h"

enum duty_state {
	DUTY_OFF,        /* not started, or stopped for shutdown */
	DUTY_DOWN,       /* no connection; the next tick connects */
	DUTY_CONNECTING, /* PQconnectPoll in progress */
	DUTY_IDLE,       /* connected, waiting for the next tick */
	DUTY_ASKING,     /* the lock try or the holder's check is running */
};

static struct {
	enum duty_state state;
	PGconn *pg;
	int fd;
	struct event *io;
	struct event *tick;     /* every FEEGATE_DUTY_RETRY_MS */
	struct event *deadline; /* of the connect or the running query */
	bool fresh;             /* connected, session settings not yet sent */
	bool held;
	bool answer;      /* the last query's one boolean */
	bool answered;    /* it had one */
	metric_id m_held; /* feegate_duty_held */
	metric_id m_changes;
} d = {.fd = -1, .m_held = -1, .m_changes = -1};

static void duty_io_cb(evutil_socket_t fd, short what, void *arg);

void duty_init(void)
{
	d.m_held = metrics_gauge("feegate_duty_held", NULL,
				 "1 while this gateway holds the duty lock and runs the sweeper and the webhook relay.",
				 METRICS_MAX);
	d.m_changes = metrics_counter("feegate_duty_changes_total", NULL,
				      "Times this gateway gained or lost the duty lock.");
}

bool duty_held(void)
{
	return metrics_gauge_read(d.m_held) > 0.5;
}

static void set_held(bool held, const char *why)
{
	if (held == d.held)
		return;
	d.held = held;
	metrics_set(d.m_held, held ? 1 : 0);
	metrics_add(d.m_changes, 1);
	if (held) {
		log_info(NULL, "duty lock %d gained by node %s: running the sweeper and the webhook relay",
			 cfg.duty_lock_id, cfg.node_name);
		sweeper_start();
		webhooks_start();
	} else {
		sweeper_stop();
		webhooks_drain();
		log_warn(NULL, "duty lock %d lost by node %s (%s): the sweeper and the webhook relay stopped",
			 cfg.duty_lock_id, cfg.node_name, why);
	}
}

static void close_conn(void)
{
	if (d.io) {
		event_free(d.io);
		d.io = NULL;
	}
	d.fd = -1;
	if (d.deadline)
		evtimer_del(d.deadline);
	if (d.pg) {
		PQfinish(d.pg);
		d.pg = NULL;
	}
}

/* The duties stop before the connection closes: the lock is released by the close. */
static void drop(const char *why)
{
	if (!d.held && d.state != DUTY_DOWN)
		log_debug(NULL, "duty lock connection: %s", why);
	set_held(false, why);
	close_conn();
	d.state = DUTY_DOWN;
}

static void watch(short what)
{
	int fd = PQsocket(d.pg);
	if (fd < 0) {
		drop("no socket");
		return;
	}
	if (d.io && fd == d.fd) {
		event_del(d.io);
		event_assign(d.io, gw.base, fd, what, duty_io_cb, NULL);
	} else {
		if (d.io)
			event_free(d.io);
		d.io = event_new(gw.base, fd, what, duty_io_cb, NULL);
		d.fd = fd;
	}
	event_add(d.io, NULL);
}

static void arm_deadline(int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	evtimer_add(d.deadline, &tv);
}

/* Server-side keepalives: a session whose gateway vanished ends after idle + 3 probes. */
static int keepalive_idle_s(void)
{
	int s = (3 * cfg.duty_retry_ms + 999) / 1000;
	return s < 2 ? 2 : s;
}

static void connect_start(void)
{
	char idle[16];
	snprintf(idle, sizeof idle, "%d", keepalive_idle_s());
	/* dbname first: the URI it holds is expanded, and the keywords after it win */
	const char *const keys[] = {"dbname", "keepalives", "keepalives_idle", "keepalives_interval",
				    "keepalives_count", NULL};
	const char *const vals[] = {cfg.database_url, "1", idle, "1", "3", NULL};
	d.pg = PQconnectStartParams(keys, vals, 1);
	if (!d.pg || PQstatus(d.pg) == CONNECTION_BAD) {
		drop("connect start failed");
		return;
	}
	d.state = DUTY_CONNECTING;
	d.fresh = true;
	arm_deadline(cfg.db_connect_timeout_ms);
	watch(EV_WRITE);
}

static void ask(void)
{
	char sql[640];
	int off = 0;
	if (d.fresh) {
		off = snprintf(sql, sizeof sql,
			       "SET application_name = 'feegate-duty'; SET statement_timeout = %d; "
			       "SET tcp_keepalives_idle = %d; SET tcp_keepalives_interval = 1; "
			       "SET tcp_keepalives_count = 3; ",
			       cfg.duty_retry_ms, keepalive_idle_s());
	}
	/* A server in recovery is no primary: nobody holds duties there. */
	if (d.held)
		snprintf(sql + off, sizeof sql - (size_t)off, "SELECT NOT pg_is_in_recovery()");
	else
		snprintf(sql + off, sizeof sql - (size_t)off,
			 "SELECT CASE WHEN pg_is_in_recovery() THEN false ELSE pg_try_advisory_lock(%d) END",
			 cfg.duty_lock_id);
	if (!PQsendQuery(d.pg, sql)) {
		drop("send failed");
		return;
	}
	d.fresh = false;
	d.answered = false;
	d.state = DUTY_ASKING;
	arm_deadline(cfg.duty_retry_ms);
	int f = PQflush(d.pg);
	if (f < 0) {
		drop("send failed");
		return;
	}
	watch(f == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void answered(void)
{
	evtimer_del(d.deadline);
	d.state = DUTY_IDLE;
	watch(EV_READ); /* notice at once a server that closes the session */
	if (!d.answered) {
		drop("the check failed");
		return;
	}
	if (d.held && !d.answer) {
		drop("the server is in recovery");
		return;
	}
	if (!d.held && d.answer)
		set_held(true, NULL);
}

static void read_results(void)
{
	if (!PQconsumeInput(d.pg)) {
		drop("connection lost");
		return;
	}
	while (!PQisBusy(d.pg)) {
		PGresult *res = PQgetResult(d.pg);
		if (!res) {
			answered();
			return;
		}
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 1) {
			d.answered = true;
			d.answer = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		} else if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			d.answered = false;
			log_warn(NULL, "duty lock query failed: %s", pg_sqlstate(res));
			PQclear(res);
			drop("the check failed"); /* closing is simpler than reading the rest */
			return;
		}
		PQclear(res);
	}
	watch(EV_READ);
}

static void duty_io_cb(evutil_socket_t fd, short what, void *arg)
{
	switch (d.state) {
	case DUTY_CONNECTING:
		switch (PQconnectPoll(d.pg)) {
		case PGRES_POLLING_READING:
			watch(EV_READ);
			return;
		case PGRES_POLLING_WRITING:
			watch(EV_WRITE);
			return;
		case PGRES_POLLING_OK:
			evtimer_del(d.deadline);
			if (PQsetnonblocking(d.pg, 1) != 0) {
				drop("cannot make the connection non-blocking");
				return;
			}
			ask();
			return;
		default:
			drop("connect failed");
			return;
		}
	case DUTY_ASKING:
		if (what & EV_WRITE) {
			int f = PQflush(d.pg);
			if (f < 0) {
				drop("send failed");
				return;
			}
			if (f == 1) {
				if (!PQconsumeInput(d.pg)) {
					drop("connection lost");
					return;
				}
				watch(EV_READ | EV_WRITE);
				return;
			}
		}
		read_results();
		return;
	case DUTY_IDLE:
		if (!PQconsumeInput(d.pg) || PQstatus(d.pg) == CONNECTION_BAD) {
			drop("the server closed the connection");
			return;
		}
		PGnotify *n;
		while ((n = PQnotifies(d.pg)) != NULL)
			PQfreemem(n);
		watch(EV_READ);
		return;
	case DUTY_OFF:
	case DUTY_DOWN:
		return;
	}
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	drop(d.state == DUTY_CONNECTING ? "connect timed out" : "the check timed out");
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	if (gw.draining)
		return;
	if (d.state == DUTY_DOWN)
		connect_start();
	else if (d.state == DUTY_IDLE)
		ask();
}

void duty_start(void)
{
	d.tick = event_new(gw.base, -1, EV_PERSIST, on_tick, NULL);
	d.deadline = evtimer_new(gw.base, on_deadline, NULL);
	struct timeval tv = {.tv_sec = cfg.duty_retry_ms / 1000, .tv_usec = (cfg.duty_retry_ms % 1000) * 1000};
	event_add(d.tick, &tv);
	d.state = DUTY_DOWN;
	log_info(NULL, "node %s: trying the duty lock %d every %d ms", cfg.node_name, cfg.duty_lock_id,
		 cfg.duty_retry_ms);
	connect_start();
}

void duty_stop(void)
{
	if (d.state == DUTY_OFF)
		return;
	set_held(false, "shutting down");
	close_conn();
	d.state = DUTY_OFF;
	if (d.tick) {
		event_free(d.tick);
		d.tick = NULL;
	}
	if (d.deadline) {
		event_free(d.deadline);
		d.deadline = NULL;
	}
}
