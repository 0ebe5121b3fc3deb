/*
 * The reconciliation routes: importing bank files and treasury statements, reading them and
 * their lines' outcomes, and working cases. The import itself (ledger/statement.c) is
 * synchronous library work and runs on a bounded set of threads, each with its own PostgreSQL
 * connection; its result comes back to the loop through a pipe.
 */
#include "gateway/reconcile.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapters/adapter.h"
#include "gateway/audit.h"
#include "gateway/db.h"
#include "gateway/gateway.h"
#include "ledger/statement.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/pgrow.h"
#include "lib/query.h"

#define IMPORT_THREADS 2 /* imports running at once in one worker process; more wait (503) */

/* ---- replies ---- */

/* A page of at most limit rows, cursor = the last row's key. */
struct page {
	int limit;
	const char *key;   /* the field that makes the cursor */
	char limit_text[16];
	const char *scope; /* the caller's agencies (auth_agency_scope), NULL for all */
	char scope_buf[AUTH_SCOPE_CAP];
};

static void list_reply(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct page *pg = req->state;
	struct page_row row;
	if (st == PG_OK && !PG_ROW(res, 0, page_cols, &row))
		st = PG_SQL_ERROR;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	json_t *data = json_loads(row.page, 0, NULL);
	json_t *body = json_object();
	json_object_set_new(body, "data", data ? data : json_array());
	json_object_set_new(body, "next_cursor", query_next_cursor(data, pg->limit, pg->key));
	http_reply_json(req, 200, body);
}

static struct page *page_new(struct http_req *req, int limit, const char *key)
{
	struct page *pg = xcalloc(1, sizeof *pg);
	pg->limit = limit;
	pg->key = key;
	req->state = pg;
	req->state_free = free;
	return pg;
}

/* The start of a list route keyed by id: access, the route's query, a UUID cursor, and the page
 * kept in req->state. NULL when it has answered (q is then freed). */
static struct page *list_open(struct http_req *req, const struct query_field *fields, int n, struct query *q)
{
	if (!auth_require(req, PERM_VIEW) || !query_parse(req, fields, n, q))
		return NULL;
	const char *cursor = query_get(q, "cursor");
	if (cursor && !util_uuid_valid(cursor)) {
		query_free(q);
		query_reply_bad_cursor(req);
		return NULL;
	}
	struct page *pg = page_new(req, (int)query_num(q, "limit"), "id");
	snprintf(pg->limit_text, sizeof pg->limit_text, "%d", pg->limit);
	pg->scope = auth_agency_scope(req_principal(req), pg->scope_buf, sizeof pg->scope_buf);
	return pg;
}

/* ---- GET /v1/exceptions ---- */

static const struct query_field cases_query[] = {
	{"state", Q_CHOICE, "open|acknowledged|resolved", 0, 0},
	{"kind", Q_CHOICE,
	 "late_success|double_payment|wrong_amount|unmatched_credit|txn_id_conflict|missing_in_ledger|"
	 "missing_at_bank|amount_mismatch|duplicate|refund_mismatch|payout_missing|payout_amount_mismatch|"
	 "unexpected_credit", 0, 0},
	{"order_id", Q_UUID, NULL, 0, 0},
	QUERY_LIST,
};

void exceptions_list(struct http_req *req)
{
	struct query q;
	struct page *pg = list_open(req, cases_query, (int)ARRAY_LEN(cases_query), &q);
	if (!pg)
		return;
	const char *params[6] = {pg->scope, query_get(&q, "state"), query_get(&q, "kind"), query_get(&q, "order_id"),
				 query_get(&q, "cursor"), pg->limit_text};
	pg_query(gw.db, "cases_list", 6, params, cfg.db_timeout_ms, list_reply, req);
	query_free(&q);
}

/* ---- working a case: POST /v1/exceptions/{id}/acknowledge|resolve|approve, and the console ---- */

/* feegate_case_act's outcome words; a word not listed is CASE_NOT_FOUND */
static const struct pg_word case_outcomes[] = {
	{"ok", CASE_OK},
	{"not_found", CASE_NOT_FOUND},
	{"invalid_state", CASE_INVALID_STATE},
	{"forbidden", CASE_FORBIDDEN},
	{NULL, CASE_NOT_FOUND},
};

/* case_act */
struct acted_row {
	int r_outcome;         /* enum case_outcome */
	const char *r_message; /* "" when none */
	const char *r_case;    /* the case's JSON, NULL when not found */
};
static const struct pg_col acted_cols[] = {
	PG_COL_WORD(struct acted_row, r_outcome, case_outcomes),
	PG_COL(struct acted_row, r_message, PG_TEXT),
	PG_COL(struct acted_row, r_case, PG_TEXT_NULL),
};

const char *case_input_check(const char *verb, const char *resolution, const char *note, const char **field)
{
	bool resolve = strcmp(verb, "resolve") == 0;
	long chars = note ? util_utf8_length(note, strlen(note)) : 0;
	*field = "note";
	if ((note || resolve) && (chars < 1 || chars > 1000))
		return "note must be 1 to 1000 characters";
	*field = "resolution";
	if (resolve && (!resolution || (strcmp(resolution, "posted") && strcmp(resolution, "refund") &&
					strcmp(resolution, "accepted") && strcmp(resolution, "void"))))
		return "resolution must be posted, refund, accepted or void";
	*field = NULL;
	return NULL;
}

struct case_call {
	struct http_req *req;
	case_done_fn done;
};

static void case_acted(void *arg, PGresult *res, enum pg_status st)
{
	struct case_call *call = arg;
	struct case_result r = {.outcome = CASE_FAILED, .res = res, .st = st};
	struct acted_row row;
	if (st == PG_OK && PG_ROW(res, 0, acted_cols, &row)) {
		r.outcome = (enum case_outcome)row.r_outcome;
		r.message = row.r_message;
		r.case_json = row.r_case;
	} else if (st == PG_OK) {
		r.st = PG_SQL_ERROR;
	}
	call->done(call->req, &r);
	free(call);
}

void case_act(struct http_req *req, const char *id, const char *verb, const char *resolution, const char *note,
	      case_done_fn done)
{
	struct case_result none = {.outcome = CASE_NOT_FOUND, .message = "no such case"};
	if (!util_uuid_valid(id)) {
		done(req, &none);
		return;
	}
	struct case_call *call = xcalloc(1, sizeof *call);
	call->req = req;
	call->done = done;
	char scope[AUTH_SCOPE_CAP], ip[AUDIT_IP_CAP];
	const char *params[12] = {id, req_principal(req)->id, auth_agency_scope(req_principal(req), scope, sizeof scope),
				  verb, resolution, note};
	audit_params(req, NULL, params + 6, ip);
	pg_query(gw.db, "case_act", 12, params, cfg.db_timeout_ms, case_acted, call);
}

static void case_answered(struct http_req *req, const struct case_result *r)
{
	switch (r->outcome) {
	case CASE_OK:
		http_reply_json(req, 200, json_loads(r->case_json, 0, NULL));
		break;
	case CASE_FORBIDDEN:
		http_reply_error(req, ERR_FORBIDDEN, NULL, r->message);
		break;
	case CASE_INVALID_STATE:
		http_reply_error(req, ERR_INVALID_STATE, NULL, r->message);
		break;
	case CASE_NOT_FOUND:
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such case");
		break;
	case CASE_FAILED:
		reply_db_failure(req, r->res, r->st);
		break;
	}
}

static void case_route(struct http_req *req, const char *verb)
{
	if (!auth_require(req, PERM_CASES))
		return;
	const char *resolution = NULL, *note = NULL;
	json_t *body = NULL;
	if (req->body_len > 0 || strcmp(verb, "resolve") == 0) {
		body = http_parse_json_body(req, cfg.max_json_depth);
		if (!body)
			return;
		if (!json_is_object(body)) {
			json_decref(body);
			http_reply_error(req, ERR_VALIDATION, NULL, "the body must be a JSON object");
			return;
		}
		json_t *n = json_object_get(body, "note");
		if (n && !json_is_string(n)) {
			json_decref(body);
			http_reply_error(req, ERR_VALIDATION, "note", "note must be a string");
			return;
		}
		note = json_string_value(n);
		resolution = json_string_value(json_object_get(body, "resolution"));
		const char *field, *msg = case_input_check(verb, resolution, note, &field);
		if (msg) {
			json_decref(body);
			http_reply_error(req, ERR_VALIDATION, field, msg);
			return;
		}
	}
	case_act(req, req->params[0], verb, resolution, note, case_answered);
	json_decref(body);
}

void cases_acknowledge(struct http_req *req)
{
	case_route(req, "acknowledge");
}

void cases_resolve(struct http_req *req)
{
	case_route(req, "resolve");
}

void cases_approve(struct http_req *req)
{
	case_route(req, "approve");
}

/* ---- GET /v1/statements, GET /v1/statements/{id} ---- */

static const struct query_field statements_query[] = {QUERY_LIST};

void statements_list(struct http_req *req)
{
	struct query q;
	struct page *pg = list_open(req, statements_query, (int)ARRAY_LEN(statements_query), &q);
	if (!pg)
		return;
	const char *params[3] = {pg->scope, query_get(&q, "cursor"), pg->limit_text};
	pg_query(gw.db, "statements_list", 3, params, cfg.db_timeout_ms, list_reply, req);
	query_free(&q);
}

static void statement_got(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct page *pg = req->state;
	struct statement_row row;
	if (st == PG_OK && PQntuples(res) == 1 && !PG_ROW(res, 0, statement_cols, &row))
		st = PG_SQL_ERROR;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such statement");
		return;
	}
	json_t *doc = json_loads(row.statement, 0, NULL);
	json_t *lines = json_loads(row.lines, 0, NULL);
	json_object_set_new(doc, "data", lines ? lines : json_array());
	json_object_set_new(doc, "next_cursor", query_next_cursor(lines, pg->limit, "line"));
	http_reply_json(req, 200, doc);
}

void statements_get(struct http_req *req)
{
	struct query q;
	if (!auth_require(req, PERM_VIEW) || !query_parse(req, statements_query, (int)ARRAY_LEN(statements_query), &q))
		return;
	const char *cursor = query_get(&q, "cursor");
	char *end = NULL;
	long long after = cursor ? strtoll(cursor, &end, 10) : 0;
	if (cursor && (*end || after < 0)) {
		query_free(&q);
		query_reply_bad_cursor(req);
		return;
	}
	struct page *pg = page_new(req, (int)query_num(&q, "limit"), "line");
	query_free(&q);
	if (!util_uuid_valid(req->params[0])) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such statement");
		return;
	}
	char scope[32], limit[16], after_s[24];
	snprintf(limit, sizeof limit, "%d", pg->limit);
	snprintf(after_s, sizeof after_s, "%lld", after);
	const char *params[4] = {req->params[0], auth_agency_scope(req_principal(req), scope, sizeof scope), after_s,
				 limit};
	pg_query(gw.db, "statement_get", 4, params, cfg.db_timeout_ms, statement_got, req);
}

/* ---- importing a statement: POST /v1/statements?source=S, and the console's upload ---- */

struct import_job {
	struct http_req *req;  /* NULL once the client has gone (the thread's result is dropped) */
	stmt_source source;
	char staff[37];
	struct stmt_import *im; /* fed on the loop as the body arrives (a temporary file) */
	bool started;           /* the thread owns im and the job until it reports back */
	import_done_fn done;
	struct stmt_result result;
};

static int done_pipe[2] = {-1, -1};
static struct event *done_ev;
static int running; /* imports holding a slot: from the request's head to their answer */

/* Off the loop: the file is whole in its temporary file; check, COPY and match it in one
 * transaction on a connection of the thread's own. */
static void *import_thread(void *arg)
{
	struct import_job *job = arg;
	char *url = xasprintf("%s%sconnect_timeout=10&options=-c%%20statement_timeout%%3D600000", cfg.database_url,
			      strchr(cfg.database_url, '?') ? "&" : "?");
	PGconn *conn = PQconnectdb(url);
	free(url);
	if (PQstatus(conn) != CONNECTION_OK) {
		memset(&job->result, 0, sizeof(job->result));
		job->result.outcome = STMT_FAILED;
		snprintf(job->result.message, sizeof(job->result.message), "database unavailable");
	} else {
		stmt_import_finish(job->im, conn, &job->result);
	}
	PQfinish(conn);
	stmt_import_free(job->im);
	job->im = NULL;
	ssize_t w;
	do
		w = write(done_pipe[1], &job, sizeof job);
	while (w < 0 && errno == EINTR);
	return NULL;
}

static void job_free(struct import_job *job)
{
	if (job->im)
		stmt_import_free(job->im);
	free(job->result.record);
	free(job);
	running--;
}

static void import_done(evutil_socket_t fd, short what, void *arg)
{
	struct import_job *job;
	while (read(fd, &job, sizeof job) == (ssize_t)sizeof job) {
		struct http_req *req = job->req;
		struct stmt_result *r = &job->result;
		if (!req) {
			job_free(job);
			continue;
		}
		/* an import that committed wrote its audit row in its own transaction; a refused or
		 * failed one stored nothing, and its row is written here */
		if (r->outcome != STMT_CREATED && r->outcome != STMT_EXISTING)
			audit_record(req, "statement.import", "", "failed", stmt_source_name(job->source), NULL);
		if (r->outcome == STMT_FAILED)
			log_error(req->id, "statement import failed: %s", r->message);
		job->done(req, r);
		job_free(job);
	}
}

static bool import_init(void)
{
	if (done_ev)
		return true;
	if (pipe2(done_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		return false;
	done_ev = event_new(gw.base, done_pipe[0], EV_READ | EV_PERSIST, import_done, NULL);
	return done_ev && event_add(done_ev, NULL) == 0;
}

static void import_start(struct import_job *job)
{
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	job->started = pthread_create(&t, &attr, import_thread, job) == 0;
	pthread_attr_destroy(&attr);
	if (!job->started) {
		struct http_req *req = job->req;
		import_done_fn done = job->done;
		struct stmt_result r = {.outcome = STMT_FAILED};
		snprintf(r.message, sizeof r.message, "no thread for the import");
		log_error(req->id, "statement import: %s", r.message);
		job_free(job);
		done(req, &r);
	}
}

struct import_job *import_open(struct http_req *req, stmt_source source, import_done_fn done)
{
	if (!import_init() || running >= IMPORT_THREADS)
		return NULL;
	struct import_job *job = xcalloc(1, sizeof *job);
	running++;
	job->req = req;
	job->source = source;
	job->done = done;
	snprintf(job->staff, sizeof job->staff, "%s", req_principal(req)->id);
	job->im = stmt_import_new(source, job->staff, (size_t)cfg.max_statement_bytes);
	const char *who[6];
	char ip[AUDIT_IP_CAP];
	audit_params(req, NULL, who, ip);
	stmt_import_set_actor(job->im, who);
	return job;
}

void import_feed(struct import_job *job, const char *data, size_t len)
{
	if (job->started || stmt_import_feed(job->im, data, len))
		return;
	/* over the cap or the temporary file failed: stop reading; the thread's finish says which */
	http_body_pause(job->req);
	import_start(job);
}

bool import_close(struct import_job *job, enum http_body_end end)
{
	if (job->started) {
		if (end != HTTP_BODY_GONE)
			return true;
		job->req = NULL; /* the thread's answer has nobody to go to */
		return false;
	}
	if (end != HTTP_BODY_DONE) {
		job_free(job);
		return false;
	}
	import_start(job);
	return true;
}

void import_drop(struct import_job *job)
{
	if (job->started)
		job->req = NULL;
	else
		job_free(job);
}

static const struct query_field import_query[] = {
	{"source", Q_CHOICE, ADAPTER_CHOICES "|" STMT_TREASURY_SOURCE, 0, 0},
};

static void import_answered(struct http_req *req, const struct stmt_result *r)
{
	switch (r->outcome) {
	case STMT_CREATED:
	case STMT_EXISTING:
		http_reply_json(req, r->outcome == STMT_CREATED ? 201 : 200, json_loads(r->record, 0, NULL));
		break;
	case STMT_MALFORMED:
		http_reply_error(req, ERR_VALIDATION, r->field, r->message);
		break;
	case STMT_TOO_LARGE:
		http_reply_error(req, ERR_PAYLOAD_TOO_LARGE, NULL, r->message);
		break;
	case STMT_FAILED:
		http_reply_error(req, ERR_UNAVAILABLE, NULL, "the import could not be completed; nothing was stored");
		break;
	}
}

/* The body as it arrives goes to the importer's temporary file; memory stays flat. */
static void import_chunk(struct http_req *req, const char *data, size_t len, void *arg)
{
	import_feed(arg, data, len);
}

static void import_end(struct http_req *req, enum http_body_end end, void *arg)
{
	if (!import_close(arg, end))
		http_reply_body_error(req, end);
}

void statements_import(struct http_req *req)
{
	struct query q;
	if (!auth_require(req, PERM_IMPORT) || !query_parse(req, import_query, (int)ARRAY_LEN(import_query), &q))
		return;
	stmt_source source;
	bool known = stmt_source_parse(query_get(&q, "source"), &source);
	query_free(&q);
	if (!known) {
		char names[96], msg[160];
		adapter_names(", ", names, sizeof names);
		snprintf(msg, sizeof msg, "source is required: %s or " STMT_TREASURY_SOURCE, names);
		http_reply_error(req, ERR_VALIDATION, "source", msg);
		return;
	}
	struct import_job *job = import_open(req, source, import_answered);
	if (!job) {
		http_reply_error(req, ERR_UNAVAILABLE, NULL, "imports are busy; try again shortly");
		return;
	}
	http_body_stream(req, import_chunk, import_end, job);
}
