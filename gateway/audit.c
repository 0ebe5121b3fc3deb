#include "gateway/audit.h"

#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/csv.h"
#include "gateway/gateway.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/pgrow.h"
#include "lib/query.h"
#include "lib/strbuf.h"

void audit_client_ip(struct http_req *req, char out[AUDIT_IP_CAP])
{
	snprintf(out, AUDIT_IP_CAP, "%s", http_peer_addr(req));
}

void audit_params(struct http_req *req, const char *actor_label, const char *out[6], char ipbuf[AUDIT_IP_CAP])
{
	const struct principal *p = req_principal(req);
	bool staff = p && p->kind == PRINCIPAL_STAFF;
	audit_client_ip(req, ipbuf);
	out[0] = staff ? p->id : NULL;
	out[1] = actor_label ? actor_label : staff ? p->email : "";
	out[2] = staff ? p->role : "";
	out[3] = req->id;
	out[4] = ipbuf;
	const char *ua = http_header(req, "User-Agent");
	out[5] = ua ? ua : "";
}

struct record_wait {
	struct http_req *req; /* NULL: nobody waits (the request may be answered already) */
	audit_done_fn done;
	char request_id[24];
};

static void recorded(void *arg, PGresult *res, enum pg_status st)
{
	struct record_wait *w = arg;
	if (st != PG_OK)
		log_error(w->request_id, "audit row not written: %s",
			  st == PG_SQL_ERROR ? PQresultErrorMessage(res) : "no database");
	if (w->done)
		w->done(w->req, st == PG_OK);
	free(w);
}

void audit_record(struct http_req *req, const char *action, const char *object, const char *outcome,
		  const char *detail, audit_done_fn done)
{
	const char *params[10];
	char ip[AUDIT_IP_CAP];
	audit_params(req, NULL, params, ip);
	params[6] = action;
	params[7] = object ? object : "";
	params[8] = outcome;
	params[9] = detail ? detail : "";
	struct record_wait *w = xcalloc(1, sizeof *w);
	w->req = done ? req : NULL;
	w->done = done;
	snprintf(w->request_id, sizeof w->request_id, "%s", req->id);
	pg_query(gw.db, "audit_record", 10, params, cfg.db_timeout_ms, recorded, w);
}

/* ---- GET /v1/audit ---- */

static const struct query_field audit_query[] = {
	{"from", Q_DATE, NULL, 0, 0},
	{"to", Q_DATE, NULL, 0, 0},
	{"actor", Q_TEXT, NULL, 0, 254},
	{"action", Q_TEXT, NULL, 0, 64},
	{"format", Q_CHOICE, "json|csv", 0, 0},
	QUERY_LIST,
};

enum { AL_ID, AL_JSON, AL_AT, AL_ACTOR, AL_LABEL, AL_ROLE, AL_ACTION, AL_OBJECT, AL_OUTCOME, AL_REQUEST, AL_IP };

struct audit_page {
	int limit;
	bool csv;
};

/* A cell a spreadsheet would run as a formula is prefixed with ' */
static void csv_cell(struct strbuf *b, const char *s, bool first)
{
	if (*s && strchr("=+-@\t\r", *s)) {
		char *safe = xasprintf("'%s", s);
		csv_write_field(b, safe, first);
		free(safe);
		return;
	}
	csv_write_field(b, s, first);
}

static void listed(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct audit_page *pg = req->state;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	int n = PQntuples(res);
	bool more = n > pg->limit;
	if (more)
		n = pg->limit;
	const char *next = more ? PQgetvalue(res, n - 1, AL_ID) : NULL;
	if (pg->csv) {
		struct strbuf b;
		strbuf_init(&b);
		strbuf_puts(&b, "\xef\xbb\xbf");
		static const char *const head[] = {"id", "at", "actor", "actor_email", "role", "action",
						   "object", "outcome", "request_id", "ip"};
		for (size_t i = 0; i < ARRAY_LEN(head); i++)
			csv_write_field(&b, head[i], i == 0);
		strbuf_puts(&b, "\r\n");
		for (int r = 0; r < n; r++) {
			for (int c = AL_ID; c <= AL_IP; c++) {
				if (c == AL_JSON)
					continue;
				csv_cell(&b, PQgetvalue(res, r, c), c == AL_ID);
			}
			strbuf_puts(&b, "\r\n");
		}
		http_add_header(req, "Content-Disposition", "attachment; filename=\"audit.csv\"");
		if (next)
			http_add_header(req, "X-Next-Cursor", next);
		http_reply_raw(req, 200, "text/csv; charset=utf-8", b.data ? b.data : "", b.len);
		strbuf_free(&b);
		return;
	}
	json_t *data = json_array();
	for (int r = 0; r < n; r++)
		json_array_append_new(data, json_loads(PQgetvalue(res, r, AL_JSON), 0, NULL));
	json_t *body = json_object();
	json_object_set_new(body, "data", data);
	json_object_set_new(body, "next_cursor", next ? json_string(next) : json_null());
	http_reply_json(req, 200, body);
}

void audit_list(struct http_req *req)
{
	if (!auth_require(req, PERM_AUDIT))
		return;
	struct query q;
	if (!query_parse(req, audit_query, (int)ARRAY_LEN(audit_query), &q)) {
		query_free(&q);
		return;
	}
	const char *cursor = query_get(&q, "cursor");
	char *end = NULL;
	if (cursor && (strtoll(cursor, &end, 10) <= 0 || *end)) {
		query_free(&q);
		query_reply_bad_cursor(req);
		return;
	}
	const char *fmt = query_get(&q, "format");
	struct audit_page *pg = xcalloc(1, sizeof *pg);
	pg->limit = (int)query_num(&q, "limit");
	pg->csv = fmt && strcmp(fmt, "csv") == 0;
	req->state = pg;
	req->state_free = free;
	char lim[16];
	snprintf(lim, sizeof lim, "%d", pg->limit + 1);
	const char *params[6] = {query_get(&q, "from"), query_get(&q, "to"), query_get(&q, "actor"),
				 query_get(&q, "action"), cursor, lim};
	pg_query(gw.db, "audit_list", 6, params, cfg.db_timeout_ms, listed, req);
	query_free(&q);
}

/* ---- the chainer ---- */

static struct event *chain_timer;
static bool chaining;

static void chain_tick(evutil_socket_t fd, short what, void *arg);

static void chain_again(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(chain_timer, &tv);
}

/* audit_chain: how many rows it chained */
struct chained_row {
	int64_t chained;
};
static const struct pg_col chained_cols[] = {PG_COL(struct chained_row, chained, PG_INT64)};

static void chained(void *arg, PGresult *res, enum pg_status st)
{
	chaining = false;
	if (!chain_timer)
		return;
	struct chained_row r = {0};
	if (st == PG_OK && !PG_ROW(res, 0, chained_cols, &r))
		r.chained = 0;
	if (st != PG_OK)
		log_warn(NULL, "audit chainer: %s", st == PG_SQL_ERROR ? PQresultErrorMessage(res) : "no database");
	/* a full batch: more are waiting */
	chain_again(r.chained >= 500 ? 0 : 1000);
}

static void chain_tick(evutil_socket_t fd, short what, void *arg)
{
	if (chaining || gw.draining)
		return;
	chaining = true;
	const char *params[1] = {"500"};
	pg_query(gw.db, "audit_chain", 1, params, cfg.db_timeout_ms * 3, chained, NULL);
}

void audit_chainer_start(void)
{
	chain_timer = evtimer_new(gw.base, chain_tick, NULL);
	chain_again(1000);
}

void audit_chainer_stop(void)
{
	if (chain_timer) {
		event_free(chain_timer);
		chain_timer = NULL;
	}
}
