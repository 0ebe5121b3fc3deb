#ifndef FEEGATE_PGPOOL_H
#define FEEGATE_PGPOOL_H
/*
 * A pool of non-blocking libpq connections driven by one libevent loop. Nothing here ever
 * blocks: connecting (PQconnectPoll), sending (PQflush) and reading (PQconsumeInput) all wait
 * for socket events, and every query has a deadline of its own. A query still running at its
 * deadline has its connection closed (never a blocking PQcancel) and the caller gets
 * PG_TIMEOUT; the connection reconnects with backoff. While no connection can be made, new
 * queries fail at once with PG_UNAVAILABLE so callers can answer 503. A query answered with an
 * error that blames the server rather than the query (25006 read-only after a switchover,
 * 57P01-57P03 shutting down, 08xxx) also drops its connection and reports PG_UNAVAILABLE; with a
 * multi-host conninfo and target_session_attrs=read-write the reconnect finds the new primary.
 *
 * Statements are prepared on every new connection (SQL PREPARE, sent as one round trip) and
 * run by name with PQsendQueryPrepared.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdbool.h>

#include "lib/metrics.h"
#include "lib/util.h"

struct event_base;
struct pg_pool;

enum pg_status {
	PG_OK,          /* res holds the result (PGRES_TUPLES_OK or PGRES_COMMAND_OK) */
	PG_SQL_ERROR,   /* res holds the error result: see pg_sqlstate() */
	PG_UNAVAILABLE, /* no connection to the database */
	PG_TIMEOUT,     /* the deadline passed before an answer */
};

/* res is valid only during the call and is freed by the pool afterwards. */
typedef void (*pg_done_fn)(void *arg, PGresult *res, enum pg_status status);

struct pg_statement {
	const char *name;
	const char *sql; /* parameters as $1..$n, with casts where the type is not obvious */
};

/* session_sql (may be NULL) runs on every new connection after the pool's own settings. */
struct pg_pool *pg_pool_new(struct event_base *base, const char *conninfo, int size,
			    const struct pg_statement *stmts, int nstmts, int connect_timeout_ms,
			    int statement_timeout_ms, const char *session_sql);
/* Closes every connection; queued and running queries get PG_UNAVAILABLE. */
void pg_pool_free(struct pg_pool *pool);

/* Runs a prepared statement. values are copied; fn is always called exactly once, never
 * before pg_query returns. */
void pg_query(struct pg_pool *pool, const char *stmt, int nparams, const char *const *values,
	      int timeout_ms, pg_done_fn fn, void *arg);

bool pg_pool_connected(const struct pg_pool *pool) WARN_UNUSED;
/* Number of queries queued or running. */
int pg_pool_pending(const struct pg_pool *pool);

const char *pg_sqlstate(const PGresult *res);
/* Blocking, for the command line and worker threads (never the event loop): runs sql, true
 * when it succeeded; else its error message is written to err (when not NULL). */
bool pg_exec_blocking(PGconn *c, const char *sql, FILE *err);
const char *pg_value(const PGresult *res, int row, int col); /* NULL for SQL NULL */

#endif
