/*
 * GET /v1/agencies/{code}/collections, GET /v1/reports/settlement, and the report's command
 * line. See reports.h for the shape; ledger/report.c formats.
 *
 * An export runs on its own thread with its own blocking connection (so a long cursor never
 * holds one of the pool's connections or the loop). The thread formats into 64 KiB chunks and
 * queues them; the loop takes them while the client's socket keeps up (http_stream_queued
 * below STREAM_HIGH) and waits for it to drain otherwise. The queue holds at most QUEUE_MAX
 * chunks, and the thread waits while it is full: memory is bounded by the two, whatever the
 * number of rows. A client that leaves stops the thread at its next chunk.
 */
#include "gateway/reports.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway/audit.h"
#include "gateway/gateway.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"
#include "lib/query.h"

#define REPORT_MAX_DAYS 31      /* docs/openapi.yaml: a settlement report spans at most 31 days */
#define COLLECTIONS_MAX_DAYS 366
#define FETCH_ROWS "5000"       /* rows per cursor page */
#define CHUNK_BYTES (64 * 1024)
#define QUEUE_MAX 16            /* chunks queued between the thread and the loop */
#define STREAM_HIGH (256 * 1024) /* bytes waiting for the socket before the loop waits */
#define EXPORTS_MAX 2           /* export threads per worker: more get 503 */
#define EXPORT_STATEMENT_TIMEOUT "120s"
#define EXPORT_IDLE_TIMEOUT "600s" /* a client that stops reading holds the snapshot this long */
#define EXPORT_STREAM_TIMEOUT "600s" /* the lines' one statement, however slowly they are read */
#define EXPORT_WORK_MEM "64MB"     /* per export session, in PostgreSQL (never in the gateway) */

/* ---- dates ---- */

static bool parse_day(const char *s, struct tm *tm)
{
	memset(tm, 0, sizeof *tm);
	return s && strptime(s, "%Y-%m-%d", tm) && !*(strptime(s, "%Y-%m-%d", tm));
}

/* Days from a to b (b - a), both valid YYYY-MM-DD. */
static long day_span(const char *a, const char *b)
{
	struct tm ta, tb;
	if (!parse_day(a, &ta) || !parse_day(b, &tb))
		return -1;
	return (long)((timegm(&tb) - timegm(&ta)) / 86400);
}

/* ---- what an export thread produces ---- */

#define ORDERS_FILTERS 6 /* from, to, status, bank, reference, payer, as struct orders_filter */

enum export_kind { EXPORT_SETTLEMENT, EXPORT_ORDERS };

struct export_spec {
	enum export_kind kind;
	struct report_request r;      /* the settlement report; an order search's format and scope */
	char scope[AUTH_SCOPE_CAP];   /* r.scope points here */
	char *orders[ORDERS_FILTERS]; /* the order search's filters, NULL when not given */
	char filename[96];
	export_refuse_fn refuse;      /* answers an error found before the first byte */
};

static struct export_spec *spec_new(enum export_kind kind, const struct report_request *r, export_refuse_fn refuse)
{
	struct export_spec *e = xcalloc(1, sizeof *e);
	e->kind = kind;
	e->r = *r;
	e->refuse = refuse;
	if (r->scope) {
		snprintf(e->scope, sizeof e->scope, "%s", r->scope);
		e->r.scope = e->scope;
	}
	return e;
}

static void spec_free(void *p)
{
	struct export_spec *e = p;
	if (!e)
		return;
	for (int i = 0; i < ORDERS_FILTERS; i++)
		free(e->orders[i]);
	free(e);
}

/* ---- the report, for every caller ---- */

static PGresult *q(PGconn *c, const char *sql, int n, const char *const *params, char *err, size_t cap)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	snprintf(err, cap, "%s", PQresultErrorMessage(r));
	PQclear(r);
	return NULL;
}

static const char *val(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static int64_t num(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* One snapshot for a whole export (totals and lines agree even while payments arrive), with
 * the session's settings for big scans. */
static bool export_begin(PGconn *c, char *err, size_t errcap)
{
	/* A day of a million payments is three scans joined by hash: with the default 4 MB they
	 * spill to disk batch by batch (measured 3x slower). JIT only adds its compile time here. */
	static const char *const steps[] = {"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
					    "SET LOCAL work_mem = '" EXPORT_WORK_MEM "'", "SET LOCAL jit = off"};
	for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
		PGresult *res = q(c, steps[i], 0, NULL, err, errcap);
		if (!res)
			return false;
		PQclear(res);
	}
	return true;
}

/* libxlsxwriter writes a file; the caller's sink gets its bytes afterwards (xlsx_send). */
static bool xlsx_temp(char path[256], char *err, size_t errcap)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(path, 256, "%s/feegate-report-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) {
		snprintf(err, errcap, "cannot create a temporary file: %s", strerror(errno));
		path[0] = '\0';
		return false;
	}
	close(fd);
	return true;
}

static enum report_outcome xlsx_send(const char *path, report_sink sink, void *arg, char *err, size_t errcap)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errcap, "cannot read the workbook back");
		return REPORT_WRITE_FAILED;
	}
	char *buf = xmalloc(CHUNK_BYTES);
	size_t got;
	enum report_outcome out = REPORT_OK;
	while ((got = fread(buf, 1, CHUNK_BYTES, f)) > 0) {
		if (!sink(arg, buf, got)) {
			out = REPORT_STOPPED;
			break;
		}
	}
	free(buf);
	fclose(f);
	return out;
}

/* The lines, in the order the report shows them; their columns named once. */
enum {
	L_KIND, L_DATE, L_AGENCY, L_BANK, L_ORDER, L_REF, L_PROC, L_PAYER, L_TXN, L_AMOUNT, L_FEE, L_NET, L_RECON,
	L_CHAPTER, L_NDKT, L_DBHC, L_META, L_AT
};
static const char lines_query[] =
	"SELECT kind, business_date, agency, bank, order_id, reference, procedure, payer, bank_txn_id, amount, fee, "
	"net, reconciliation, chapter, ndkt, dbhc, metadata, at_s "
	"FROM feegate_report_lines($1::date, $2::date, $3::bigint[], $4::text) ORDER BY at, kind, order_id";

/* Sends the lines' query in single-row mode: PostgreSQL produces the next rows while this thread
 * formats the last, and, not being a cursor, the query may use parallel workers. A reader who
 * stops reading stops this thread in the sink and the server then waits on its socket:
 * EXPORT_STREAM_TIMEOUT bounds the whole statement. */
static bool lines_send(PGconn *c, const char *const *params, char *err, size_t errcap)
{
	PGresult *res = q(c, "SET LOCAL statement_timeout = '" EXPORT_STREAM_TIMEOUT "'", 0, NULL, err, errcap);
	if (!res)
		return false;
	PQclear(res);
	if (!PQsendQueryParams(c, lines_query, 4, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(c)) {
		snprintf(err, errcap, "%s", PQerrorMessage(c));
		return false;
	}
	return true;
}

/* Drains c's results; the first error is the outcome. */
static enum report_outcome drain(PGconn *c, enum report_outcome out, char *err, size_t errcap)
{
	PGresult *res;
	while ((res = PQgetResult(c))) {
		ExecStatusType st = PQresultStatus(res);
		if (out == REPORT_OK && st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
			snprintf(err, errcap, "%s", PQresultErrorMessage(res));
			out = REPORT_DB_FAILED;
		}
		PQclear(res);
	}
	return out;
}

/* Cancels what c is running and drains it. */
static void cancel_query(PGconn *c)
{
	PGcancel *cancel = PQgetCancel(c);
	char ebuf[128];
	if (cancel) {
		PQcancel(cancel, ebuf, sizeof ebuf);
		PQfreeCancel(cancel);
	}
	drain(c, REPORT_STOPPED, ebuf, sizeof ebuf);
}

/* Writes the lines lines_send asked for to w, as they arrive. */
static enum report_outcome lines_stream(PGconn *c, struct report_writer *w, char *err, size_t errcap)
{
	PGresult *res;
	while ((res = PQgetResult(c))) {
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_TUPLES_OK) { /* the end of the rows */
			PQclear(res);
			return drain(c, REPORT_OK, err, errcap);
		}
		if (st != PGRES_SINGLE_TUPLE) {
			snprintf(err, errcap, "%s", PQresultErrorMessage(res));
			PQclear(res);
			return drain(c, REPORT_DB_FAILED, err, errcap);
		}
		struct report_line l = {
			.kind = val(res, 0, L_KIND), .business_date = val(res, 0, L_DATE), .agency = val(res, 0, L_AGENCY),
			.bank = val(res, 0, L_BANK), .order_id = val(res, 0, L_ORDER), .reference = val(res, 0, L_REF),
			.procedure = val(res, 0, L_PROC), .payer = val(res, 0, L_PAYER), .bank_txn_id = val(res, 0, L_TXN),
			.amount = num(res, 0, L_AMOUNT), .fee = num(res, 0, L_FEE), .net = num(res, 0, L_NET),
			.reconciliation = val(res, 0, L_RECON), .chapter = val(res, 0, L_CHAPTER),
			.ndkt = val(res, 0, L_NDKT), .dbhc = val(res, 0, L_DBHC), .metadata = val(res, 0, L_META),
			.at = num(res, 0, L_AT),
		};
		bool ok = report_write_line(w, &l);
		PQclear(res);
		if (!ok) {
			/* the reader has gone (or the workbook failed): stop the server's work */
			cancel_query(c);
			return REPORT_STOPPED;
		}
	}
	return REPORT_OK;
}

/* A second session on the same database in the same snapshot as c, so the totals are summed
 * while c's lines are produced (one export is then two backends at work, not one after the
 * other) and both still see one moment. NULL when it cannot be had: the caller then asks c for
 * the totals too. */
static PGconn *snapshot_peer(PGconn *c)
{
	PGresult *res = PQexec(c, "SELECT pg_export_snapshot()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		PQclear(res);
		return NULL;
	}
	char *snap = PQescapeLiteral(c, PQgetvalue(res, 0, 0), strlen(PQgetvalue(res, 0, 0)));
	PQclear(res);
	if (!snap)
		return NULL;
	PQconninfoOption *opts = PQconninfo(c);
	PGconn *p = NULL;
	if (opts) {
		int n = 0;
		for (PQconninfoOption *o = opts; o->keyword; o++)
			n++;
		const char **k = xcalloc((size_t)n + 1, sizeof *k), **v = xcalloc((size_t)n + 1, sizeof *v);
		int m = 0;
		for (PQconninfoOption *o = opts; o->keyword; o++) {
			if (o->val && *o->val) {
				k[m] = o->keyword;
				v[m++] = o->val;
			}
		}
		p = PQconnectdbParams(k, v, 0);
		free(k);
		free(v);
		PQconninfoFree(opts);
	}
	char err[8];
	char *set = xasprintf("SET TRANSACTION SNAPSHOT %s", snap);
	PQfreemem(snap);
	const char *steps[] = {set, "SET LOCAL statement_timeout = '" EXPORT_STATEMENT_TIMEOUT "'"};
	bool ok = p && PQstatus(p) == CONNECTION_OK && export_begin(p, err, sizeof err);
	for (size_t i = 0; ok && i < ARRAY_LEN(steps); i++) {
		if ((res = q(p, steps[i], 0, NULL, err, sizeof err)))
			PQclear(res);
		else
			ok = false;
	}
	free(set);
	if (!ok) {
		PQfinish(p);
		return NULL;
	}
	return p;
}

static const char totals_query[] =
	"SELECT business_date, agency, bank, count, gross, refunds, fees, net, cases_open, payout, receivable "
	"FROM feegate_report_totals($1::date, $2::date, $3::bigint[], $4::text)";

enum report_outcome report_export(PGconn *c, const struct report_request *r, report_sink sink, void *arg,
				  char *err, size_t errcap)
{
	enum report_outcome out = REPORT_DB_FAILED;
	PGresult *res = NULL;
	struct report_writer *w = NULL;
	char **keys = NULL;
	int nkeys = 0;
	char agencies[40] = "", xlsx_path[256] = "";
	const char *agency_param = r->scope;
	PGconn *peer = NULL;
	bool lines_sent = false; /* c is busy with the lines' query */
	err[0] = '\0';

	if (!export_begin(c, err, errcap))
		goto done;
	if (r->agency[0]) {
		const char *p[2] = {r->agency, r->scope};
		if (!(res = q(c, "SELECT id FROM agencies WHERE code = $1::text AND ($2::bigint[] IS NULL OR id = ANY ($2::bigint[]))",
			      2, p, err, errcap)))
			goto done;
		if (PQntuples(res) != 1) {
			out = REPORT_NOT_FOUND;
			goto done;
		}
		snprintf(agencies, sizeof agencies, "{%s}", PQgetvalue(res, 0, 0));
		agency_param = agencies;
		PQclear(res);
	}
	const char *params[4] = {r->from, r->to, agency_param, r->bank[0] ? r->bank : NULL};

	if (!(res = q(c, "SELECT * FROM feegate_report_metadata_keys($1::date, $2::date, $3::bigint[], $4::text)", 4,
		      params, err, errcap)))
		goto done;
	nkeys = PQntuples(res);
	keys = xcalloc((size_t)(nkeys ? nkeys : 1), sizeof *keys);
	for (int i = 0; i < nkeys; i++)
		keys[i] = xstrdup(PQgetvalue(res, i, 0));
	PQclear(res);

	/* the totals on a peer while c's lines are sorted; without a peer, on c before the lines */
	peer = snapshot_peer(c);
	if (peer) {
		if (!PQsendQueryParams(peer, totals_query, 4, NULL, params, NULL, NULL, 0) ||
		    !lines_send(c, params, err, errcap))
			goto done;
		lines_sent = true;
		res = PQgetResult(peer);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			snprintf(err, errcap, "%s", PQresultErrorMessage(res));
			goto done;
		}
		PQfinish(peer); /* its part is done: it holds no snapshot while the lines stream */
		peer = NULL;
	} else if (!(res = q(c, totals_query, 4, params, err, errcap))) {
		goto done;
	}
	if (r->format == REPORT_XLSX && !xlsx_temp(xlsx_path, err, errcap)) {
		out = REPORT_WRITE_FAILED;
		goto done;
	}
	w = report_writer_new(r->format, r->from, r->to, (const char *const *)keys, nkeys, sink, arg, xlsx_path);
	out = REPORT_STOPPED;
	for (int i = 0; i < PQntuples(res); i++) {
		struct report_total t = {
			.date = PQgetvalue(res, i, 0), .agency = PQgetvalue(res, i, 1), .bank = val(res, i, 2),
			.count = num(res, i, 3), .gross = num(res, i, 4), .refunds = num(res, i, 5),
			.fees = num(res, i, 6), .net = num(res, i, 7), .cases_open = num(res, i, 8),
			.has_payout = !PQgetisnull(res, i, 9), .payout = num(res, i, 9),
			.has_receivable = !PQgetisnull(res, i, 10), .receivable = num(res, i, 10),
		};
		if (!report_write_total(w, &t))
			goto done;
	}
	PQclear(res);
	res = NULL;

	if (!lines_sent && !lines_send(c, params, err, errcap)) {
		out = REPORT_DB_FAILED;
		goto done;
	}
	lines_sent = false;
	if ((out = lines_stream(c, w, err, errcap)) != REPORT_OK)
		goto done;
	out = REPORT_STOPPED;
	if (!report_finish(w)) {
		out = r->format == REPORT_XLSX ? REPORT_WRITE_FAILED : REPORT_STOPPED;
		if (out == REPORT_WRITE_FAILED)
			snprintf(err, errcap, "the workbook could not be written");
		goto done;
	}
	out = r->format == REPORT_XLSX ? xlsx_send(xlsx_path, sink, arg, err, errcap) : REPORT_OK;
done:
	if (res)
		PQclear(res);
	if (lines_sent) /* an error before the lines were read: stop them */
		cancel_query(c);
	PQfinish(peer);
	report_writer_free(w);
	if (xlsx_path[0])
		unlink(xlsx_path);
	for (int i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	PQclear(PQexec(c, "ROLLBACK")); /* read only: nothing to keep */
	return out;
}

/* ---- the staff's order search, exported ---- */

enum { O_ID, O_REF, O_AGENCY, O_CREATED, O_DESC, O_PROC, O_PAYER, O_STATUS, O_AMOUNT, O_BANKS, O_TXN, O_PAID };
static const char *const orders_columns[] = {
	"order_id", "reference", "agency", "created_at_asia_ho_chi_minh", "description", "procedure", "payer_name",
	"status", "amount", "banks", "bank_txn_id", "paid_at_asia_ho_chi_minh",
};
/* feegate_orders_find is the console's search (migrations/functions/staff.sql), without its page limit */
static const char orders_cursor[] =
	"DECLARE orders_export NO SCROLL CURSOR FOR "
	"SELECT f.id, f.reference, a.code, feegate_report_local_time(f.created_at), f.description, "
	"coalesce(f.procedure, ''), coalesce(f.payer->>'name', ''), f.status, f.amount, "
	"coalesce((SELECT string_agg(DISTINCT t.bank, ', ') FROM attempts t WHERE t.order_id = f.id), ''), "
	"coalesce(p.bank_txn_id, ''), coalesce(feegate_report_local_time(p.paid_at), '') "
	"FROM feegate_orders_find(NULL, $1::bigint[], $2::date, $3::date, $4::text, $5::text, $6::text, $7::text, "
	"NULL, NULL) f JOIN agencies a ON a.id = f.agency_id "
	"LEFT JOIN LATERAL (SELECT t.bank_txn_id, t.paid_at FROM attempts t WHERE t.order_id = f.id "
	"AND t.status = 'succeeded' ORDER BY t.paid_at LIMIT 1) p ON true ORDER BY f.id DESC";

static enum report_outcome orders_export(PGconn *c, const struct export_spec *e, report_sink sink, void *arg,
					 char *err, size_t errcap)
{
	enum report_outcome out = REPORT_DB_FAILED;
	PGresult *res = NULL;
	struct report_writer *w = NULL;
	char xlsx_path[256] = "";
	err[0] = '\0';
	const char *params[7] = {e->r.scope};
	for (int i = 0; i < ORDERS_FILTERS; i++)
		params[1 + i] = e->orders[i];
	if (!export_begin(c, err, errcap) || !(res = q(c, orders_cursor, 7, params, err, errcap)))
		goto done;
	if (e->r.format == REPORT_XLSX && !xlsx_temp(xlsx_path, err, errcap)) {
		out = REPORT_WRITE_FAILED;
		goto done;
	}
	w = report_table_new(e->r.format, "Orders", orders_columns, (int)ARRAY_LEN(orders_columns), sink, arg, xlsx_path);
	for (;;) {
		PQclear(res);
		if (!(res = q(c, "FETCH " FETCH_ROWS " FROM orders_export", 0, NULL, err, errcap)))
			goto done;
		int n = PQntuples(res);
		if (n == 0)
			break;
		for (int i = 0; i < n; i++) {
			struct report_cell row[ARRAY_LEN(orders_columns)];
			for (int k = 0; k < (int)ARRAY_LEN(orders_columns); k++)
				row[k] = (struct report_cell){.text = PQgetvalue(res, i, k)};
			row[O_AMOUNT] = (struct report_cell){.num = num(res, i, O_AMOUNT)};
			if (!report_write_row(w, row)) {
				out = REPORT_STOPPED;
				goto done;
			}
		}
	}
	PQclear(res);
	res = NULL;
	out = REPORT_STOPPED;
	if (!report_finish(w)) {
		if (e->r.format == REPORT_XLSX) {
			out = REPORT_WRITE_FAILED;
			snprintf(err, errcap, "the workbook could not be written");
		}
		goto done;
	}
	out = e->r.format == REPORT_XLSX ? xlsx_send(xlsx_path, sink, arg, err, errcap) : REPORT_OK;
done:
	if (res)
		PQclear(res);
	report_writer_free(w);
	if (xlsx_path[0])
		unlink(xlsx_path);
	PQclear(PQexec(c, "ROLLBACK"));
	return out;
}

/* ---- the export job: a thread producing, the loop streaming ---- */

struct chunk {
	struct chunk *next;
	size_t len;
	char data[];
};

struct export_job {
	pthread_mutex_t mu;
	pthread_cond_t room;
	struct chunk *head, *tail; /* full chunks, oldest first */
	int nchunks;
	bool cancel;   /* set by the loop: the client has gone */
	bool finished; /* set by the thread as the last thing it does */
	enum report_outcome outcome;
	char err[256];
	char source[64];      /* Feegate-Data-Source: which server answered, set before any chunk */
	int pipe_rd, pipe_wr; /* thread -> loop: "look at the queue" */

	/* the thread's own */
	struct chunk *filling;
	struct export_spec *spec; /* what to export; read by the loop too, never changed */

	/* the loop's own */
	struct event *wakeup;
	struct http_req *req; /* NULL once its reply is done */
	bool started;
};

static int exports_running;
static metric_id m_replica_fallbacks = -1; /* registered on the loop; added to by the threads */

int reports_running(void)
{
	return exports_running;
}

static void job_notify(struct export_job *j)
{
	char b = 1;
	/* a full pipe already holds a wake-up */
	if (write(j->pipe_wr, &b, 1) < 0 && errno != EAGAIN)
		log_warn(NULL, "export wake-up: %s", strerror(errno));
}

static bool job_push(struct export_job *j, struct chunk *ch)
{
	pthread_mutex_lock(&j->mu);
	while (j->nchunks >= QUEUE_MAX && !j->cancel)
		pthread_cond_wait(&j->room, &j->mu);
	bool ok = !j->cancel;
	if (ok) {
		ch->next = NULL;
		if (j->tail)
			j->tail->next = ch;
		else
			j->head = ch;
		j->tail = ch;
		j->nchunks++;
		job_notify(j);
	}
	pthread_mutex_unlock(&j->mu);
	if (!ok)
		free(ch);
	return ok;
}

static bool job_sink(void *arg, const void *data, size_t len)
{
	struct export_job *j = arg;
	const char *p = data;
	while (len) {
		if (!j->filling) {
			j->filling = xmalloc(sizeof(struct chunk) + CHUNK_BYTES);
			j->filling->len = 0;
		}
		size_t n = CHUNK_BYTES - j->filling->len;
		if (n > len)
			n = len;
		memcpy(j->filling->data + j->filling->len, p, n);
		j->filling->len += n;
		p += n;
		len -= n;
		if (j->filling->len == CHUNK_BYTES) {
			struct chunk *ch = j->filling;
			j->filling = NULL;
			if (!job_push(j, ch))
				return false;
		}
	}
	return true;
}

/* A blocking connection for an export thread (never the loop), with a connect deadline. */
static PGconn *export_connect_to(const char *url)
{
	/* named, so an operator (and the tests) can tell export sessions in pg_stat_activity */
	int timeout_s = cfg.db_connect_timeout_ms / 1000 > 0 ? cfg.db_connect_timeout_ms / 1000 : 1;
	char *conninfo = strstr(url, "://") ? xasprintf("%s%sconnect_timeout=%d&application_name=feegate-export", url,
							strchr(url, '?') ? "&" : "?", timeout_s)
					    : xasprintf("%s connect_timeout=%d application_name=feegate-export", url,
							timeout_s);
	PGconn *c = PQconnectdb(conninfo);
	free(conninfo);
	return c;
}

/* The replica (FEEGATE_REPLICA_URL) when it is a standby at most FEEGATE_REPLICA_MAX_LAG_S behind,
 * else the primary. A server on the replica URL that is not in recovery is not read: it may be
 * an old primary cut off from the new one, and DATABASE_URL finds the primary anyway. Writes the
 * Feegate-Data-Source header's value (docs/openapi.yaml) into source. */
static PGconn *export_connect(char *source, size_t cap)
{
	if (!*cfg.replica_url) {
		snprintf(source, cap, "primary");
		return export_connect_to(cfg.database_url);
	}
	const char *why = "unreachable";
	PGconn *c = export_connect_to(cfg.replica_url);
	if (PQstatus(c) == CONNECTION_OK) {
		PGresult *r = PQexec(c, "SET statement_timeout = 2000; "
					"SELECT pg_is_in_recovery(), "
					"ceil(extract(epoch FROM now() - pg_last_xact_replay_timestamp()))::bigint");
		why = "unreachable";
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
			bool standby = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
			long long lag = PQgetisnull(r, 0, 1) ? -1 : strtoll(PQgetvalue(r, 0, 1), NULL, 10);
			if (lag < 0 && standby)
				lag = 0; /* a clock a little ahead of the primary's */
			if (!standby) {
				why = "not_standby";
			} else if (PQgetisnull(r, 0, 1) || lag > cfg.replica_max_lag_s) {
				why = "lagging";
			} else {
				PQclear(r);
				snprintf(source, cap, "replica; lag_s=%lld", lag);
				return c;
			}
		}
		PQclear(r);
	}
	PQfinish(c);
	metrics_add(m_replica_fallbacks, 1);
	snprintf(source, cap, "primary; replica=%s", why);
	return export_connect_to(cfg.database_url);
}

static void *job_thread(void *arg)
{
	struct export_job *j = arg;
	char source[64];
	PGconn *c = export_connect(source, sizeof source);
	pthread_mutex_lock(&j->mu);
	snprintf(j->source, sizeof j->source, "%s", source);
	pthread_mutex_unlock(&j->mu);
	enum report_outcome out = REPORT_DB_FAILED;
	char err[256] = "";
	if (PQstatus(c) == CONNECTION_OK) {
		PQclear(PQexec(c, "SET statement_timeout = '" EXPORT_STATEMENT_TIMEOUT "'; "
				  "SET idle_in_transaction_session_timeout = '" EXPORT_IDLE_TIMEOUT "'; "
				  "SET client_min_messages = warning"));
		out = j->spec->kind == EXPORT_SETTLEMENT ? report_export(c, &j->spec->r, job_sink, j, err, sizeof err)
							 : orders_export(c, j->spec, job_sink, j, err, sizeof err);
		if (out == REPORT_OK && j->filling && j->filling->len) {
			struct chunk *ch = j->filling;
			j->filling = NULL;
			if (!job_push(j, ch))
				out = REPORT_STOPPED;
		}
	} else {
		snprintf(err, sizeof err, "%s", PQerrorMessage(c));
	}
	PQfinish(c);
	free(j->filling);
	j->filling = NULL;
	pthread_mutex_lock(&j->mu);
	j->outcome = out;
	snprintf(j->err, sizeof j->err, "%s", err);
	j->finished = true;
	job_notify(j);
	pthread_mutex_unlock(&j->mu); /* the loop may free j from here on */
	return NULL;
}

static void job_free(struct export_job *j)
{
	while (j->head) {
		struct chunk *n = j->head->next;
		free(j->head);
		j->head = n;
	}
	event_free(j->wakeup);
	close(j->pipe_rd);
	close(j->pipe_wr);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->room);
	spec_free(j->spec);
	free(j);
	exports_running--;
}

static void job_pump(struct export_job *j);

/* The job goes once its request is answered and its thread has stopped; only the loop's own
 * callbacks free it, after their last use of it. */
static void job_maybe_free(struct export_job *j)
{
	pthread_mutex_lock(&j->mu);
	bool done = j->finished && !j->req;
	pthread_mutex_unlock(&j->mu);
	if (done)
		job_free(j);
}

static void job_drained(struct http_req *req, void *arg)
{
	job_pump(arg);
	job_maybe_free(arg);
}

/* The request is answered (or gone): stop the thread; the job goes when the thread has. */
static void job_detach(struct export_job *j)
{
	j->req = NULL;
	pthread_mutex_lock(&j->mu);
	j->cancel = true;
	pthread_cond_signal(&j->room);
	pthread_mutex_unlock(&j->mu);
}

static void job_pump(struct export_job *j)
{
	struct http_req *req = j->req;
	if (!req)
		return;
	pthread_mutex_lock(&j->mu);
	bool finished = j->finished, any = j->head != NULL;
	enum report_outcome outcome = j->outcome;
	pthread_mutex_unlock(&j->mu);

	if (!j->started) {
		if (!any && !finished)
			return;
		if (!any && outcome != REPORT_OK) {
			/* nothing sent yet: a proper error answer is still possible */
			export_refuse_fn refuse = j->spec->refuse;
			job_detach(j);
			if (outcome == REPORT_NOT_FOUND) {
				refuse(req, ERR_NOT_FOUND, "agency", "no such agency");
			} else if (outcome == REPORT_DB_FAILED) {
				log_warn(req->id, "export: %s", j->err);
				refuse(req, ERR_UNAVAILABLE, NULL, "the database is unavailable; retry later");
			} else {
				log_error(req->id, "export failed: %s", j->err);
				refuse(req, ERR_INTERNAL, NULL, NULL);
			}
			return;
		}
		pthread_mutex_lock(&j->mu);
		http_add_header(req, "Feegate-Data-Source", j->source);
		pthread_mutex_unlock(&j->mu);
		http_stream_start(req, 200, report_content_type(j->spec->r.format), j->spec->filename);
		j->started = true;
	}
	if (http_stream_gone(req)) {
		log_info(req->id, "export: the client left before the end; stopped");
		job_detach(j);
		http_stream_abort(req);
		return;
	}
	while (http_stream_queued(req) < STREAM_HIGH) {
		pthread_mutex_lock(&j->mu);
		struct chunk *ch = j->head;
		if (ch) {
			j->head = ch->next;
			if (!j->head)
				j->tail = NULL;
			j->nchunks--;
			pthread_cond_signal(&j->room);
		}
		finished = j->finished;
		outcome = j->outcome;
		pthread_mutex_unlock(&j->mu);
		if (!ch)
			break;
		http_stream_write(req, ch->data, ch->len);
		free(ch);
	}
	pthread_mutex_lock(&j->mu);
	bool empty = j->head == NULL;
	pthread_mutex_unlock(&j->mu);
	if (empty && finished) {
		job_detach(j);
		if (outcome == REPORT_OK) {
			http_stream_end(req);
		} else {
			/* a truncated body, never one that looks complete */
			log_error(req->id, "export failed midway: %s", j->err);
			http_stream_abort(req);
		}
		return;
	}
	if (http_stream_queued(req) >= STREAM_HIGH)
		http_stream_on_drain(req, job_drained, j);
}

static void job_wakeup(evutil_socket_t fd, short what, void *arg)
{
	struct export_job *j = arg;
	char buf[64];
	while (read(fd, buf, sizeof buf) > 0) {
	}
	job_pump(j);
	job_maybe_free(j);
}

/* The request's state: every reply is sent from job_pump, whose caller then frees the job
 * when its thread has stopped too; a thread still running is told to stop and wakes the loop
 * once more when it has. */
static void job_release(void *p)
{
	struct export_job *j = p;
	if (j->req)
		job_detach(j);
}

/* Takes spec, whatever the outcome. */
static bool job_start(struct http_req *req, struct export_spec *spec)
{
	int fds[2];
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
		spec_free(spec);
		return false;
	}
	m_replica_fallbacks = metrics_counter("feegate_report_replica_fallbacks_total", NULL,
					      "Exports read from the primary because the report replica was unreachable, "
					      "lagging or not a standby.");
	struct export_job *j = xcalloc(1, sizeof *j);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->room, NULL);
	j->pipe_rd = fds[0];
	j->pipe_wr = fds[1];
	j->spec = spec;
	j->req = req;
	j->wakeup = event_new(gw.base, j->pipe_rd, EV_READ | EV_PERSIST, job_wakeup, j);
	event_add(j->wakeup, NULL);
	exports_running++;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int e = pthread_create(&t, &attr, job_thread, j);
	pthread_attr_destroy(&attr);
	if (e != 0) {
		j->finished = true;
		j->req = NULL;
		job_free(j);
		return false;
	}
	/* from here the job outlives a request that goes early (see job_release) */
	req->state = j;
	req->state_free = job_release;
	return true;
}

/* ---- GET /v1/reports/settlement ---- */

static const struct query_field settlement_query[] = {
	{"date", Q_DATE, NULL, 0, 0},
	{"from", Q_DATE, NULL, 0, 0},
	{"to", Q_DATE, NULL, 0, 0},
	{"agency", Q_TEXT, NULL, 0, 32},
	{"bank", Q_CHOICE, "vnpay|momo|vietqr", 0, 0},
	{"format", Q_CHOICE, "csv|json|xlsx", 0, 0},
};

static bool agency_code_ok(const char *s)
{
	if (!s)
		return true;
	size_t n = strlen(s);
	if (n < 2 || n > 32)
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
			return false;
	return true;
}

/* The day range of date, or of from and to: NULL when right, else the message, with *field. */
static const char *check_range(const char *date, const char *from, const char *to, long max_days,
			       struct report_request *r, const char **field)
{
	static char msg[96];
	if (date && (from || to)) {
		*field = from ? "from" : "to";
		return "give either date, or from and to";
	}
	if (!date && !from && !to) {
		*field = "date";
		return "date (or from and to) is required";
	}
	if (!date && (!from || !to)) {
		*field = from ? "to" : "from";
		return "from and to go together";
	}
	snprintf(r->from, sizeof r->from, "%s", date ? date : from);
	snprintf(r->to, sizeof r->to, "%s", date ? date : to);
	long span = day_span(r->from, r->to);
	if (span < 0) {
		*field = "to";
		return "to must not be before from";
	}
	if (span + 1 > max_days) {
		*field = "to";
		snprintf(msg, sizeof msg, "a range spans at most %ld days", max_days);
		return msg;
	}
	return NULL;
}

/* An export waits for its export.download audit row, which is written (and committed) before
 * the first byte is sent: an export that cannot be audited is not sent. The one place exports
 * are recorded. */
static void export_audited(struct http_req *req, bool recorded)
{
	struct export_spec *spec = req->state;
	export_refuse_fn refuse = spec->refuse;
	req->state = NULL;
	req->state_free = NULL;
	if (!recorded) {
		spec_free(spec);
		refuse(req, ERR_UNAVAILABLE, NULL, "the export could not be recorded in the audit log; retry shortly");
		return;
	}
	if (!job_start(req, spec))
		refuse(req, ERR_UNAVAILABLE, NULL, "cannot start the export; retry shortly");
}

static void export_send(struct http_req *req, struct export_spec *spec, const char *object, const char *detail)
{
	if (exports_running >= EXPORTS_MAX) {
		export_refuse_fn refuse = spec->refuse;
		spec_free(spec);
		refuse(req, ERR_UNAVAILABLE, NULL, "too many exports are running; retry shortly");
		return;
	}
	if (req->state_free)
		req->state_free(req->state); /* the caller's (what it held is copied into spec) */
	req->state = spec;
	req->state_free = spec_free;
	audit_record(req, "export.download", object, "ok", detail, export_audited);
}

void reports_settlement_send(struct http_req *req, const struct report_request *r, export_refuse_fn refuse)
{
	struct export_spec *spec = spec_new(EXPORT_SETTLEMENT, r, refuse);
	snprintf(spec->filename, sizeof spec->filename, "settlement_%s_%s%s%s.%s", r->from, r->to,
		 r->agency[0] ? "_" : "", r->agency, report_extension(r->format));
	char object[96], detail[48];
	snprintf(object, sizeof object, "settlement:%s..%s:%s", r->from, r->to, r->agency[0] ? r->agency : "*");
	snprintf(detail, sizeof detail, "format=%s%s%s", report_extension(r->format), r->bank[0] ? " bank=" : "",
		 r->bank);
	export_send(req, spec, object, detail);
}

void reports_orders_send(struct http_req *req, const struct orders_filter *f, enum report_format format,
			 export_refuse_fn refuse)
{
	struct report_request r = {.format = format, .scope = f->scope};
	struct export_spec *spec = spec_new(EXPORT_ORDERS, &r, refuse);
	const char *given[ORDERS_FILTERS] = {f->from, f->to, f->status, f->bank, f->reference, f->payer};
	static const char *const names[ORDERS_FILTERS] = {"from", "to", "status", "bank", "reference", "payer"};
	char detail[512] = "";
	size_t n = (size_t)snprintf(detail, sizeof detail, "format=%s", report_extension(format));
	for (int i = 0; i < ORDERS_FILTERS; i++) {
		spec->orders[i] = given[i] ? xstrdup(given[i]) : NULL;
		if (given[i] && n < sizeof detail)
			n += (size_t)snprintf(detail + n, sizeof detail - n, " %s=%s", names[i], given[i]);
	}
	snprintf(spec->filename, sizeof spec->filename, "orders_%s_%s.%s", f->from ? f->from : "all",
		 f->to ? f->to : "all", report_extension(format));
	char object[64];
	snprintf(object, sizeof object, "orders:%s..%s", f->from ? f->from : "", f->to ? f->to : "");
	export_send(req, spec, object, detail);
}

void reports_settlement(struct http_req *req)
{
	const struct principal *p = req_principal(req);
	if (!auth_require(req, PERM_EXPORT))
		return;
	struct query qy;
	if (!query_parse(req, settlement_query, (int)ARRAY_LEN(settlement_query), &qy))
		return;
	struct report_request r = {.format = REPORT_JSON};
	const char *field = NULL;
	const char *msg = check_range(query_get(&qy, "date"), query_get(&qy, "from"), query_get(&qy, "to"),
				      REPORT_MAX_DAYS, &r, &field);
	const char *agency = query_get(&qy, "agency");
	if (!msg && !agency_code_ok(agency)) {
		field = "agency";
		msg = "an agency code: 2 to 32 of A-Z, 0-9 and _";
	}
	if (msg) {
		http_reply_error(req, ERR_VALIDATION, field, msg);
		query_free(&qy);
		return;
	}
	snprintf(r.agency, sizeof r.agency, "%s", agency ? agency : "");
	snprintf(r.bank, sizeof r.bank, "%s", query_get(&qy, "bank") ? query_get(&qy, "bank") : "");
	if (query_get(&qy, "format") && !report_format_parse(query_get(&qy, "format"), &r.format))
		r.format = REPORT_JSON;
	query_free(&qy);
	char scope[AUTH_SCOPE_CAP];
	r.scope = auth_agency_scope(p, scope, sizeof scope);
	reports_settlement_send(req, &r, http_reply_error);
}

/* ---- GET /v1/agencies/{code}/collections ---- */

static const struct query_field collections_query[] = {
	{"from", Q_DATE, NULL, 0, 0},
	{"to", Q_DATE, NULL, 0, 0},
	{"status", Q_CHOICE, "matched|pending|case", 0, 0},
	{"bank", Q_CHOICE, "vnpay|momo|vietqr", 0, 0},
	QUERY_LIST,
};

static void collections_got(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such agency");
		return;
	}
	const char *text = PQgetvalue(res, 0, 0);
	http_reply_raw(req, 200, "application/json; charset=utf-8", text, strlen(text));
}

void reports_collections(struct http_req *req)
{
	const struct principal *p = req_principal(req);
	if (!auth_require(req, PERM_VIEW))
		return;
	struct query qy;
	if (!query_parse(req, collections_query, (int)ARRAY_LEN(collections_query), &qy))
		return;
	struct report_request r;
	const char *field = NULL;
	const char *from = query_get(&qy, "from"), *to = query_get(&qy, "to");
	const char *msg = NULL;
	if (!from || !to) {
		field = from ? "to" : "from";
		msg = "from and to are required";
	} else {
		msg = check_range(NULL, from, to, COLLECTIONS_MAX_DAYS, &r, &field);
	}
	/* the cursor is the last row of the previous page: "<paid_at µs>.<attempt id>" */
	char after_us[24] = "", after_id[37] = "";
	const char *cursor = query_get(&qy, "cursor");
	if (!msg && cursor) {
		const char *dot = strchr(cursor, '.');
		size_t n = dot ? (size_t)(dot - cursor) : 0;
		bool ok = dot && n > 0 && n < sizeof after_us && strspn(cursor, "0123456789") == n &&
			  util_uuid_valid(dot + 1);
		if (ok) {
			memcpy(after_us, cursor, n);
			after_us[n] = '\0';
			snprintf(after_id, sizeof after_id, "%s", dot + 1);
		} else {
			field = "cursor";
			msg = QUERY_BAD_CURSOR;
		}
	}
	if (msg) {
		http_reply_error(req, ERR_VALIDATION, field, msg);
		query_free(&qy);
		return;
	}
	char scope[AUTH_SCOPE_CAP], limit[16];
	snprintf(limit, sizeof limit, "%lld", (long long)query_num(&qy, "limit"));
	const char *params[9] = {req->params[0],
				 auth_agency_scope(p, scope, sizeof scope),
				 r.from,
				 r.to,
				 query_get(&qy, "status"),
				 query_get(&qy, "bank"),
				 after_us[0] ? after_us : NULL,
				 after_id[0] ? after_id : NULL,
				 limit};
	pg_query(gw.db, "collections", 9, params, cfg.db_timeout_ms, collections_got, req);
	query_free(&qy); /* pg_query copied the values */
}

/* ---- command line ---- */

static PGconn *cli_connect(void)
{
	const char *url = getenv("DATABASE_URL");
	if (!url || !*url) {
		fprintf(stderr, "DATABASE_URL: required\n");
		return NULL;
	}
	PGconn *c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect to the database: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

static bool file_sink(void *arg, const void *data, size_t len)
{
	return fwrite(data, 1, len, arg) == len;
}

/* feegate report settlement --date D | --from D --to D [--agency C] [--bank B] --format F [--out FILE] */
int reports_cli(int argc, char **argv)
{
	static const char usage[] = "usage: feegate report settlement --date D | --from D --to D [--agency C] "
				    "[--bank vnpay|momo|vietqr] --format csv|json|xlsx [--out FILE]\n";
	if (argc < 1 || strcmp(argv[0], "settlement") != 0) {
		fputs(usage, stderr);
		return 2;
	}
	const char *date = NULL, *from = NULL, *to = NULL, *agency = NULL, *bank = NULL, *format = NULL, *outp = NULL;
	for (int i = 1; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--date") == 0     ? &date
				    : strcmp(argv[i], "--from") == 0   ? &from
				    : strcmp(argv[i], "--to") == 0     ? &to
				    : strcmp(argv[i], "--agency") == 0 ? &agency
				    : strcmp(argv[i], "--bank") == 0   ? &bank
				    : strcmp(argv[i], "--format") == 0 ? &format
				    : strcmp(argv[i], "--out") == 0    ? &outp
								       : NULL;
		if (!slot || i + 1 >= argc) {
			fputs(usage, stderr);
			return 2;
		}
		*slot = argv[++i];
	}
	struct report_request r = {.format = REPORT_JSON};
	struct tm tm;
	const char *field = NULL, *msg = NULL;
	if ((date && !parse_day(date, &tm)) || (from && !parse_day(from, &tm)) || (to && !parse_day(to, &tm))) {
		msg = "dates are YYYY-MM-DD";
		field = date ? "date" : "from";
	}
	if (!msg)
		msg = check_range(date, from, to, REPORT_MAX_DAYS, &r, &field);
	if (!msg && !agency_code_ok(agency)) {
		field = "agency";
		msg = "an agency code: 2 to 32 of A-Z, 0-9 and _";
	}
	if (!msg && bank && strcmp(bank, "vnpay") && strcmp(bank, "momo") && strcmp(bank, "vietqr")) {
		field = "bank";
		msg = "vnpay, momo or vietqr";
	}
	if (!msg && !report_format_parse(format ? format : "json", &r.format)) {
		field = "format";
		msg = "csv, json or xlsx";
	}
	if (msg) {
		fprintf(stderr, "--%s: %s\n", field, msg);
		return 2;
	}
	snprintf(r.agency, sizeof r.agency, "%s", agency ? agency : "");
	snprintf(r.bank, sizeof r.bank, "%s", bank ? bank : "");
	PGconn *c = cli_connect();
	if (!c)
		return 1;
	FILE *f = outp ? fopen(outp, "wb") : stdout;
	if (!f) {
		fprintf(stderr, "--out: cannot write %s: %s\n", outp, strerror(errno));
		PQfinish(c);
		return 1;
	}
	char err[256];
	enum report_outcome o = report_export(c, &r, file_sink, f, err, sizeof err);
	PQfinish(c);
	bool closed = outp ? fclose(f) == 0 : fflush(f) == 0;
	if (o == REPORT_NOT_FOUND) {
		fprintf(stderr, "--agency: no such agency: %s\n", r.agency);
		return 1;
	}
	if (o != REPORT_OK || !closed) {
		fprintf(stderr, "the report failed: %s\n", err[0] ? err : "cannot write the output");
		return 1;
	}
	if (outp)
		printf("%s\n", outp);
	return 0;
}

/* feegate agency budget-codes --code C [--procedure P] --chapter X --ndkt Y --dbhc Z */
int reports_cli_budget_codes(int argc, char **argv)
{
	static const char usage[] = "usage: feegate agency budget-codes --code C [--procedure P] --chapter NNN "
				    "--ndkt NNNN --dbhc NNNNN\n";
	const char *code = NULL, *proc = "", *chapter = NULL, *ndkt = NULL, *dbhc = NULL;
	for (int i = 0; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--code") == 0	 ? &code
				    : strcmp(argv[i], "--procedure") == 0 ? &proc
				    : strcmp(argv[i], "--chapter") == 0	 ? &chapter
				    : strcmp(argv[i], "--ndkt") == 0	 ? &ndkt
				    : strcmp(argv[i], "--dbhc") == 0	 ? &dbhc
									 : NULL;
		if (!slot || i + 1 >= argc) {
			fputs(usage, stderr);
			return 2;
		}
		*slot = argv[++i];
	}
	if (!code || !chapter || !ndkt || !dbhc) {
		fputs(usage, stderr);
		return 2;
	}
	PGconn *c = cli_connect();
	if (!c)
		return 1;
	const char *params[5] = {code, proc, chapter, ndkt, dbhc};
	PGresult *res = PQexecParams(c,
				     "INSERT INTO budget_codes (agency_id, procedure, chapter, ndkt, dbhc) "
				     "SELECT id, $2::text, $3::text, $4::text, $5::text FROM agencies WHERE code = $1::text "
				     "ON CONFLICT (agency_id, procedure) DO UPDATE SET chapter = EXCLUDED.chapter, "
				     "ndkt = EXCLUDED.ndkt, dbhc = EXCLUDED.dbhc, updated_at = now() RETURNING agency_id",
				     5, NULL, params, NULL, NULL, 0);
	int rc = 1;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		fprintf(stderr, "%s\n", state && strcmp(state, "23514") == 0
						? "the codes are digits: chapter 3, NDKT 4, ĐBHC 2 to 5"
						: PQresultErrorMessage(res));
	} else if (PQntuples(res) != 1) {
		fprintf(stderr, "--code: no such agency: %s\n", code);
	} else {
		printf("budget codes of %s%s%s: %s %s %s\n", code, proc[0] ? " for " : "", proc, chapter, ndkt, dbhc);
		rc = 0;
	}
	PQclear(res);
	PQfinish(c);
	return rc;
}
