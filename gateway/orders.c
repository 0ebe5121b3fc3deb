/* The portal's fee-order API: create (group-committed, idempotent), read, list, cancel. */
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "gateway/db.h"
#include "gateway/gateway.h"
#include "gateway/order_validate.h"
#include "lib/pgrow.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/query.h"
#include "lib/mem.h"
#include "lib/query.h"

struct order_fields {
	const char *id, *reference, *agency, *description, *currency, *status, *procedure, *checkout_token,
		*return_url;
	int64_t amount, created_ms, expires_ms;
	json_t *items, *payer, *metadata, *attempts; /* borrowed; NULL when absent */
};

static json_t *order_json(const struct order_fields *f)
{
	char created[32], expires[32];
	util_format_time(f->created_ms, created);
	util_format_time(f->expires_ms, expires);
	char *checkout_url = xasprintf("%s/checkout/%s", cfg.public_url, f->checkout_token);
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(f->id));
	json_object_set_new(o, "reference", json_string(f->reference));
	json_object_set_new(o, "agency", json_string(f->agency));
	json_object_set_new(o, "description", json_string(f->description));
	json_object_set_new(o, "amount", json_integer(f->amount));
	json_object_set_new(o, "currency", json_string(f->currency));
	json_object_set_new(o, "status", json_string(f->status));
	if (f->items)
		json_object_set(o, "items", f->items);
	if (f->procedure)
		json_object_set_new(o, "procedure", json_string(f->procedure));
	if (f->payer)
		json_object_set(o, "payer", f->payer);
	if (f->metadata)
		json_object_set(o, "metadata", f->metadata);
	json_object_set_new(o, "checkout_url", json_string(checkout_url));
	json_object_set_new(o, "return_url", json_string(f->return_url));
	json_object_set_new(o, "created_at", json_string(created));
	json_object_set_new(o, "expires_at", json_string(expires));
	if (f->attempts)
		json_object_set(o, "attempts", f->attempts);
	else
		json_object_set_new(o, "attempts", json_array());
	free(checkout_url);
	return o;
}

/* ---- POST /v1/orders ---- */

struct create_state {
	char *response; /* the 201 body, rendered before the insert and stored with the key */
	char token[64];
	char order_id[37];
	int expires_in;
};

static void create_state_free(void *p)
{
	struct create_state *s = p;
	free(s->response);
	free(s);
}

static void create_done(void *arg, const struct intake_result *r)
{
	struct http_req *req = arg;
	struct create_state *s = req->state;
	switch (r->outcome) {
	case INTAKE_CREATED: {
		/* The checkout session cache; PostgreSQL keeps the token too, so losing this is harmless. */
		redis_command(gw.redis, NULL, NULL, "SET checkout:%s %s EX %d", s->token, s->order_id, s->expires_in);
		char *loc = xasprintf("/v1/orders/%s", s->order_id);
		http_add_header(req, "Location", loc);
		free(loc);
		log_info(req->id, "order %s created", s->order_id);
		http_reply_raw(req, 201, "application/json; charset=utf-8", s->response, strlen(s->response));
		return;
	}
	case INTAKE_REPLAY:
		http_add_header(req, "Idempotent-Replayed", "true");
		http_reply_raw(req, r->status, "application/json; charset=utf-8", r->body, strlen(r->body));
		return;
	case INTAKE_DUPLICATE: {
		json_t *extra = json_object();
		json_object_set_new(extra, "order_id", json_string(r->order_id ? r->order_id : ""));
		http_reply_error_extra(req, ERR_DUPLICATE_REFERENCE, "reference", NULL, extra);
		return;
	}
	case INTAKE_KEY_REUSED:
		http_reply_error(req, ERR_IDEMPOTENCY_REUSED, "Idempotency-Key", NULL);
		return;
	case INTAKE_KEY_IN_USE:
		http_reply_error(req, ERR_IDEMPOTENCY_IN_USE, "Idempotency-Key", NULL);
		return;
	case INTAKE_UNAVAILABLE:
		http_reply_error(req, ERR_UNAVAILABLE, NULL, "the database is unavailable; retry later");
		return;
	case INTAKE_FAILED:
		http_reply_error(req, ERR_INTERNAL, NULL, NULL);
		return;
	}
}

static const struct agency_ref *allowed_agency(const struct principal *p, const char *code)
{
	for (int i = 0; i < p->nagencies; i++) {
		if (strcmp(p->agencies[i].code, code) == 0)
			return &p->agencies[i];
	}
	return NULL;
}

void orders_create(struct http_req *req)
{
	const struct principal *p = req_principal(req);
	const char *key = http_header(req, "Idempotency-Key");
	if (key && !idempotency_key_valid(key)) {
		http_reply_error(req, ERR_VALIDATION, "Idempotency-Key", "Idempotency-Key must be 1 to 255 printable ASCII characters");
		return;
	}
	json_t *body = http_parse_json_body(req, cfg.max_json_depth);
	if (!body)
		return;
	struct order_input in;
	struct validation_error verr;
	if (!order_validate(body, &in, &verr)) {
		http_reply_error(req, verr.err, verr.field[0] ? verr.field : NULL, verr.message);
		json_decref(body);
		return;
	}
	const struct agency_ref *agency = allowed_agency(p, in.agency);
	if (!agency) {
		http_reply_error(req, ERR_VALIDATION, "agency", "agency is not an agency this client may bill");
		json_decref(body);
		return;
	}

	struct create_state *s = xcalloc(1, sizeof *s);
	req->state = s;
	req->state_free = create_state_free;
	util_uuid7(s->order_id);
	char *token = util_token("", 32);
	snprintf(s->token, sizeof s->token, "%s", token);
	free(token);
	s->expires_in = in.expires_in;
	int64_t now = util_db_now_ms();
	struct order_fields f = {
		.id = s->order_id,
		.reference = in.reference,
		.agency = agency->code,
		.description = in.description,
		.currency = "VND",
		.status = "created",
		.procedure = in.procedure,
		.checkout_token = s->token,
		.return_url = in.return_url,
		.amount = in.amount,
		.created_ms = now,
		.expires_ms = now + (int64_t)in.expires_in * 1000,
		.items = in.items,
		.payer = in.payer,
		.metadata = in.metadata,
	};
	json_t *order = order_json(&f);
	s->response = json_dumps(order, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(order);

	char created[32], expires[32], body_hash[65], agency_id[24];
	util_format_time(f.created_ms, created);
	util_format_time(f.expires_ms, expires);
	util_sha256_hex(req->body, req->body_len, body_hash);
	snprintf(agency_id, sizeof agency_id, "%lld", (long long)agency->id);
	json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "id", s->order_id, "client_id",
				p->id, "agency_id", agency_id, "reference", in.reference, "description",
				in.description, "amount", (json_int_t)in.amount, "return_url", in.return_url,
				"checkout_token", s->token, "created_at", created, "expires_at", expires);
	if (in.items)
		json_object_set(row, "items", in.items);
	if (in.payer)
		json_object_set(row, "payer", in.payer);
	if (in.metadata)
		json_object_set(row, "metadata", in.metadata);
	if (in.procedure)
		json_object_set_new(row, "procedure", json_string(in.procedure));
	if (key) {
		json_object_set_new(row, "idem_key", json_string(key));
		json_object_set_new(row, "idem_hash", json_string(body_hash));
		json_object_set_new(row, "response", json_string(s->response));
	}
	json_decref(body);
	intake_submit(row, create_done, req);
}

/* ---- GET /v1/orders/{id}, GET /v1/orders?reference=, POST /v1/orders/{id}/cancel ---- */

/* order_get, order_by_ref and orders_find_client: the rendered order, and for the search
 * the id its next page starts before */
struct order_row {
	const char *doc, *id;
};
static const struct pg_col order_cols[] = {PG_COL(struct order_row, doc, PG_TEXT)};
static const struct pg_col found_cols[] = {PG_COL(struct order_row, doc, PG_TEXT), PG_COL(struct order_row, id, PG_TEXT)};

static void got_order(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct order_row o;
	if (st == PG_OK && PQntuples(res) == 1 && !PG_ROW(res, 0, order_cols, &o))
		st = PG_SQL_ERROR;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such order");
		return;
	}
	http_reply_json(req, 200, json_loads(o.doc, 0, NULL));
}

static void fetch_order(struct http_req *req)
{
	const char *params[3] = {req->params[0], req_principal(req)->id, cfg.public_url};
	pg_query(gw.db, "order_get", 3, params, cfg.db_timeout_ms, got_order, req);
}

void orders_get(struct http_req *req)
{
	if (!util_uuid_valid(req->params[0])) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such order");
		return;
	}
	fetch_order(req);
}

struct list_state {
	int limit;
};

static void got_list(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct list_state *ls = req->state;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	int n = PQntuples(res);
	bool more = ls && n > ls->limit;
	if (more)
		n = ls->limit;
	json_t *data = json_array();
	struct order_row o = {0};
	for (int r = 0; r < n; r++) {
		if (ls ? !PG_ROW(res, r, found_cols, &o) : !PG_ROW(res, r, order_cols, &o)) {
			json_decref(data);
			reply_db_failure(req, res, PG_SQL_ERROR);
			return;
		}
		json_array_append_new(data, json_loads(o.doc, 0, NULL));
	}
	json_t *body = json_object();
	json_object_set_new(body, "data", data);
	/* the exact-reference lookup keeps its answer; the search is a list route with a cursor */
	if (ls)
		json_object_set_new(body, "next_cursor", more ? json_string(o.id) : json_null());
	http_reply_json(req, 200, body);
}

/* reference: the exact reference (at most one order); the others search, newest first. */
static const struct query_field list_query[] = {
	{"reference", Q_TEXT, NULL, 0, 64},
	{"reference_prefix", Q_TEXT, NULL, 0, 64},
	{"from", Q_DATE, NULL, 0, 0},
	{"to", Q_DATE, NULL, 0, 0},
	{"status", Q_CHOICE, "created|pending|succeeded|cancelled|expired|partially_refunded|refunded", 0, 0},
	{"bank", Q_CHOICE, ADAPTER_CHOICES, 0, 0},
	{"payer_name", Q_TEXT, NULL, 0, 100},
	{"limit", Q_LIMIT, NULL, 0, 0},
	{"cursor", Q_UUID, NULL, 0, 0},
};

void orders_list(struct http_req *req)
{
	struct query q;
	if (!query_parse(req, list_query, (int)ARRAY_LEN(list_query), &q)) {
		query_free(&q);
		return;
	}
	const char *ref = query_get(&q, "reference");
	if (ref) {
		const char *params[3] = {req_principal(req)->id, ref, cfg.public_url};
		pg_query(gw.db, "order_by_ref", 3, params, cfg.db_timeout_ms, got_list, req);
		query_free(&q);
		return;
	}
	struct list_state *ls = xcalloc(1, sizeof *ls);
	ls->limit = (int)query_num(&q, "limit");
	req->state = ls;
	req->state_free = free;
	char lim[16];
	snprintf(lim, sizeof lim, "%d", ls->limit + 1);
	const char *params[10] = {req_principal(req)->id,   query_get(&q, "from"),		query_get(&q, "to"),
				  query_get(&q, "status"),   query_get(&q, "bank"),		query_get(&q, "reference_prefix"),
				  query_get(&q, "payer_name"), query_get(&q, "cursor"),	lim,
				  cfg.public_url};
	pg_query(gw.db, "orders_find_client", 10, params, cfg.db_timeout_ms, got_list, req);
	query_free(&q);
}

static void cancelled(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	struct outcome_row r;
	if (!PG_ROW(res, 0, outcome_cols, &r)) {
		reply_db_failure(req, res, PG_SQL_ERROR);
		return;
	}
	switch ((enum db_outcome)r.outcome) {
	case OUTCOME_NOT_FOUND:
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such order");
		return;
	case OUTCOME_INVALID_STATE:
		http_reply_error(req, ERR_INVALID_STATE, NULL, "only a created or pending order can be cancelled");
		return;
	case OUTCOME_CHANGED:
		log_info(req->id, "order %s cancelled", req->params[0]);
		break;
	default: /* unchanged: cancelled already */
		break;
	}
	fetch_order(req);
}

void orders_cancel(struct http_req *req)
{
	if (!util_uuid_valid(req->params[0])) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such order");
		return;
	}
	const char *params[3] = {req->params[0], req_principal(req)->id, "cancelled"};
	pg_query(gw.db, "order_transition", 3, params, cfg.db_timeout_ms, cancelled, req);
}
