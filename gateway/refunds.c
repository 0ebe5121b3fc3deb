/*
 * Refunds (finance staff). A refund is created under the order's row
 * lock (never more than what is paid and not yet refunded, even under concurrent requests),
 * then sent through the bank adapter's refund API; the reversing transfer is posted when the
 * bank confirms. A bank without a refund API keeps the refund pending as a payout instruction
 * until finance confirms it. A bank that does not answer leaves it pending; the sweeper retries
 * with the same refund reference, which the bank treats as the same refund.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/audit.h"
#include "gateway/banks.h"
#include "gateway/db.h"
#include "gateway/gateway.h"
#include "gateway/order_validate.h"
#include "gateway/refunds.h"
#include "ledger/accounts.h"
#include "lib/breaker.h"
#include "lib/config.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/query.h"

static void reply_json_text(struct http_req *req, int status, const char *text)
{
	http_reply_json(req, status, json_loads(text, JSON_DECODE_ANY, NULL));
}

/* ---- sending a refund to its bank (request handler and sweeper alike) ---- */

struct refund_send {
	char refund_id[37];
	char ref[40];
	char bank[24];
	char bank_order_ref[24];
	char bank_txn_id[65];
	char created_by[37];
	char *reason;
	int64_t amount, paid;
	time_t attempt_created;
	adapter_refund r;
	refund_sent_fn done;
	void *arg;
};

static void send_finish(struct refund_send *s, const char *refund_json)
{
	if (s->done)
		s->done(s->arg, refund_json);
	free(s->reason);
	free(s);
}

/* refund_complete and refund_confirm (feegate_refund_complete) */
struct completed_row {
	int r_outcome; /* enum db_outcome: succeeded, failed, unchanged, not_found */
	const char *r_refund;
};
static const struct pg_col completed_cols[] = {
	PG_COL_WORD(struct completed_row, r_outcome, db_outcomes),
	PG_COL(struct completed_row, r_refund, PG_TEXT),
};

static void completed(void *arg, PGresult *res, enum pg_status st)
{
	struct refund_send *s = arg;
	struct completed_row r;
	if (st != PG_OK || !PG_ROW(res, 0, completed_cols, &r)) {
		log_error(NULL, "recording the bank's verdict on refund %s failed; the sweeper will ask again", s->ref);
		send_finish(s, NULL);
		return;
	}
	log_info(NULL, "refund %s: %s", s->ref, pg_word_name(db_outcomes, r.r_outcome));
	send_finish(s, r.r_refund);
}

static void complete(struct refund_send *s, bool ok, const char *bank_id, const char *reason)
{
	const char *params[5] = {s->refund_id, ok ? "true" : "false", bank_id, reason, NULL};
	pg_query(gw.db, "refund_complete", 5, params, cfg.db_timeout_ms, completed, s);
}

static void bank_answered(void *arg, int status, const char *body, size_t len, const char *err)
{
	struct refund_send *s = arg;
	const struct bank *bk = bank_find(s->bank);
	adapter_txn txn;
	adapter_response resp = {.status = status, .body = body, .body_len = len};
	adapter_rc rc = bk && status ? adapter_parse_refund_response(bk->adapter, &bk->config, &s->r, &resp, &txn)
				     : ADAPTER_UNAVAILABLE;
	breaker_record(s->bank, rc != ADAPTER_UNAVAILABLE);
	if (rc == ADAPTER_OK && txn.state == ADAPTER_TXN_SUCCEEDED) {
		complete(s, true, txn.bank_txn_id, NULL);
		return;
	}
	if ((rc == ADAPTER_OK && (txn.state == ADAPTER_TXN_FAILED || txn.state == ADAPTER_TXN_NOT_FOUND)) ||
	    rc == ADAPTER_DECLINED) {
		char reason[96];
		snprintf(reason, sizeof reason, "the bank refused the refund (code %s)",
			 txn.failure_code[0] ? txn.failure_code : adapter_rc_name(rc));
		complete(s, false, NULL, reason);
		return;
	}
	log_warn(NULL, "refund %s at %s not confirmed yet: %s%s%s", s->ref, s->bank, adapter_rc_name(rc), err ? ", " : "",
		 err ? err : "");
	send_finish(s, NULL);
}

void refund_send(const struct refund_to_send *in, refund_sent_fn done, void *arg)
{
	struct refund_send *s = xcalloc(1, sizeof *s);
	snprintf(s->refund_id, sizeof s->refund_id, "%s", in->refund_id);
	snprintf(s->ref, sizeof s->ref, "%s", in->refund_ref);
	snprintf(s->bank, sizeof s->bank, "%s", in->bank);
	snprintf(s->bank_order_ref, sizeof s->bank_order_ref, "%s", in->bank_order_ref);
	snprintf(s->bank_txn_id, sizeof s->bank_txn_id, "%s", in->bank_txn_id ? in->bank_txn_id : "");
	snprintf(s->created_by, sizeof s->created_by, "%s", in->created_by);
	s->reason = xstrdup(in->reason);
	s->amount = in->amount;
	s->paid = in->paid;
	s->attempt_created = in->attempt_created;
	s->done = done;
	s->arg = arg;
	const struct bank *bk = bank_find(s->bank);
	if (!bk || !bk->adapter->build_refund) {
		send_finish(s, NULL); /* a payout instruction: finance confirms it */
		return;
	}
	s->r = (adapter_refund){.refund_ref = s->ref,
				.bank_order_ref = s->bank_order_ref,
				.bank_txn_id = s->bank_txn_id,
				.amount = s->amount,
				.paid_amount = s->paid,
				.attempt_created_at = s->attempt_created,
				.reason = s->reason,
				.created_by = s->created_by,
				.now = time(NULL)};
	adapter_request out;
	if (adapter_build_refund(bk->adapter, &bk->config, &s->r, &out) != ADAPTER_OK) {
		log_error(NULL, "cannot build refund %s for %s", s->ref, s->bank);
		send_finish(s, NULL);
		return;
	}
	bank_send(&out, bank_answered, s);
	adapter_request_free(&out);
}

/* ---- creating and approving refunds: POST /v1/orders/{id}/refunds, the two-person rule ---- */

/* One refund call from a route or a console page to its answer. */
struct refund_call {
	struct http_req *req;
	refund_done_fn done;
	char refund_id[37];
	char refund_ref[40];
	char *created_json;
};

static struct refund_call *call_new(struct http_req *req, refund_done_fn done)
{
	struct refund_call *call = xcalloc(1, sizeof *call);
	call->req = req;
	call->done = done;
	return call;
}

static void call_finish(struct refund_call *call, const struct refund_result *r)
{
	call->done(call->req, r);
	free(call->created_json);
	free(call);
}

static void call_failed(struct refund_call *call, PGresult *res, enum pg_status st)
{
	struct refund_result r = {.outcome = REFUND_FAILED, .res = res, .st = st};
	call_finish(call, &r);
}

/* The reference the bank sees: "RF" and 16 hex digits of the refund id. */
static void make_refund_ref(const char *refund_id, char out[40])
{
	size_t o = 0;
	out[o++] = 'R';
	out[o++] = 'F';
	for (const char *c = refund_id; *c && o < 18; c++) {
		if (*c != '-')
			out[o++] = *c;
	}
	out[o] = '\0';
}

static void call_new_refund(struct refund_call *call)
{
	util_uuid(call->refund_id);
	make_refund_ref(call->refund_id, call->refund_ref);
}

static void refund_sent(void *arg, const char *refund_json)
{
	struct refund_call *call = arg;
	struct refund_result r = {.outcome = REFUND_CREATED, .json = refund_json ? refund_json : call->created_json};
	call_finish(call, &r);
}

/* The paid attempt's columns that refund_attempt_from() reads */
struct attempt_row {
	const char *r_bank, *r_bank_order_ref, *r_bank_txn_id;
	int64_t r_paid, r_attempt_created;
};
static const struct pg_col attempt_cols[] = {
	PG_COL(struct attempt_row, r_bank, PG_TEXT),
	PG_COL(struct attempt_row, r_bank_order_ref, PG_TEXT),
	PG_COL(struct attempt_row, r_bank_txn_id, PG_TEXT_NULL),
	PG_COL(struct attempt_row, r_paid, PG_INT64),
	PG_COL(struct attempt_row, r_attempt_created, PG_INT64),
};

bool refund_attempt_from(const PGresult *res, int row, int first, struct refund_to_send *r)
{
	struct attempt_row a;
	if (!PG_ROW_FROM(res, row, first, attempt_cols, &a))
		return false;
	r->bank = a.r_bank;
	r->bank_order_ref = a.r_bank_order_ref;
	r->bank_txn_id = a.r_bank_txn_id;
	r->paid = a.r_paid;
	r->attempt_created = (time_t)a.r_attempt_created;
	return true;
}

/* refund_create and refund_approve (feegate_refund_create, feegate_refund_approve); then, when
 * created, the paid attempt's columns */
#define CREATED_ATTEMPT_COL 3
struct created_row {
	int r_outcome; /* enum db_outcome */
	const char *r_refund; /* the refund (created, replay), NULL otherwise */
	int64_t r_refundable;
};
static const struct pg_col created_cols[] = {
	PG_COL_WORD(struct created_row, r_outcome, db_outcomes),
	PG_COL(struct created_row, r_refund, PG_TEXT_NULL),
	PG_COL(struct created_row, r_refundable, PG_INT64),
};

static enum refund_outcome refund_outcome_of(enum db_outcome o)
{
	switch (o) {
	case OUTCOME_CREATED:
		return REFUND_CREATED;
	case OUTCOME_REPLAY:
		return REFUND_REPLAY;
	case OUTCOME_NOT_FOUND:
		return REFUND_NO_ORDER;
	case OUTCOME_APPROVAL_NOT_FOUND:
		return REFUND_NO_APPROVAL;
	case OUTCOME_SAME_PERSON:
		return REFUND_SAME_PERSON;
	case OUTCOME_ALREADY_APPROVED:
		return REFUND_ALREADY_APPROVED;
	case OUTCOME_KEY_REUSED:
		return REFUND_KEY_REUSED;
	case OUTCOME_INVALID_STATE:
		return REFUND_NOT_PAID;
	case OUTCOME_TOO_MUCH:
		return REFUND_TOO_MUCH;
	default:
		return REFUND_FAILED;
	}
}

static void refund_created(void *arg, PGresult *res, enum pg_status st)
{
	struct refund_call *call = arg;
	if (st == PG_SQL_ERROR && strcmp(pg_sqlstate(res), "55P03") == 0) {
		struct refund_result r = {.outcome = REFUND_KEY_IN_USE};
		call_finish(call, &r);
		return;
	}
	if (st != PG_OK) {
		call_failed(call, res, st);
		return;
	}
	struct refund_result r = {.outcome = REFUND_FAILED, .res = res, .st = PG_SQL_ERROR};
	struct created_row row;
	if (!PG_ROW(res, 0, created_cols, &row)) {
		call_finish(call, &r);
		return;
	}
	r.outcome = refund_outcome_of((enum db_outcome)row.r_outcome);
	if (r.outcome == REFUND_FAILED)
		log_error(call->req->id, "refund: an outcome this gateway does not know: %s",
			  PQgetvalue(res, 0, PQfnumber(res, "r_outcome")));
	if (r.outcome != REFUND_CREATED) {
		r.json = row.r_refund;
		r.refundable = row.r_refundable;
		call_finish(call, &r);
		return;
	}
	struct refund_to_send in = {.refund_id = call->refund_id, .refund_ref = call->refund_ref};
	if (!refund_attempt_from(res, 0, CREATED_ATTEMPT_COL, &in)) {
		r.outcome = REFUND_FAILED;
		call_finish(call, &r);
		return;
	}
	call->created_json = xstrdup(row.r_refund ? row.r_refund : "{}");
	json_t *created = json_loads(call->created_json, 0, NULL);
	in.amount = json_integer_value(json_object_get(created, "amount"));
	in.reason = json_string_value(json_object_get(created, "reason"));
	in.created_by = req_principal(call->req)->id;
	log_info(call->req->id, "refund %s of %lld VND created for order %s", call->refund_ref, (long long)in.amount,
		 json_string_value(json_object_get(created, "order_id")));
	refund_send(&in, refund_sent, call);
	json_decref(created);
}

/* The API's answer to every refund outcome. */
static void refund_answered(struct http_req *req, const struct refund_result *r)
{
	char msg[128];
	switch (r->outcome) {
	case REFUND_CREATED:
	case REFUND_REPLAY:
		reply_json_text(req, 201, r->json);
		break;
	case REFUND_CONFIRMED:
		reply_json_text(req, 200, r->json);
		break;
	case REFUND_ASKED:
		http_reply_json(req, 202, json_pack("{s:s,s:s}", "id", req->params[0], "status", "awaiting_approval"));
		break;
	case REFUND_NO_ORDER:
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such order");
		break;
	case REFUND_NO_APPROVAL:
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such approval");
		break;
	case REFUND_NO_REFUND:
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such refund");
		break;
	case REFUND_SAME_PERSON:
		http_reply_error(req, ERR_FORBIDDEN, NULL, "a second finance member must approve this; you asked for it");
		break;
	case REFUND_ALREADY_APPROVED:
		http_reply_error(req, ERR_INVALID_STATE, NULL, "this refund was approved already");
		break;
	case REFUND_KEY_REUSED:
		http_reply_error(req, ERR_IDEMPOTENCY_REUSED, "Idempotency-Key", NULL);
		break;
	case REFUND_KEY_IN_USE:
		http_reply_error(req, ERR_IDEMPOTENCY_IN_USE, "Idempotency-Key", NULL);
		break;
	case REFUND_NOT_PAID:
		http_reply_error(req, ERR_INVALID_STATE, NULL, "only a paid order can be refunded");
		break;
	case REFUND_TOO_MUCH:
		snprintf(msg, sizeof msg, "the amount is more than what is paid and not yet refunded (%lld VND)",
			 (long long)r->refundable);
		http_reply_error_extra(req, ERR_INVALID_STATE, "amount", msg,
				       json_pack("{s:I}", "refundable", (json_int_t)r->refundable));
		break;
	case REFUND_BANK_CONFIRMS:
		http_reply_error(req, ERR_INVALID_STATE, NULL, "refunds at this bank are confirmed by the bank itself");
		break;
	case REFUND_NOT_PENDING:
		http_reply_error(req, ERR_INVALID_STATE, NULL, "only a pending refund can be confirmed");
		break;
	case REFUND_FAILED:
		reply_db_failure(req, r->res, r->st);
		break;
	}
}

/* refund_ask (feegate_refund_ask): the approval asked for, NULL for no such order */
struct asked_row {
	const char *approval;
};
static const struct pg_col asked_cols[] = {PG_COL(struct asked_row, approval, PG_TEXT_NULL)};

static void approval_asked(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	struct asked_row a;
	if (!PG_ROW(res, 0, asked_cols, &a)) {
		reply_db_failure(req, res, PG_SQL_ERROR);
		return;
	}
	if (!a.approval) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such order");
		return;
	}
	log_info(req->id, "refund above FEEGATE_REFUND_APPROVAL_VND asked for order %s; awaiting approval", req->params[0]);
	reply_json_text(req, 202, a.approval);
}

/* Two-person rule: a refund above FEEGATE_REFUND_APPROVAL_VND is only asked for here; it is
 * created when a second finance member approves it (refund_approve). */
static void ask_approval(struct http_req *req, int64_t amount, const char *reason)
{
	char id[37], amount_s[24], scope[AUTH_SCOPE_CAP], ip[AUDIT_IP_CAP];
	util_uuid(id);
	snprintf(amount_s, sizeof amount_s, "%lld", (long long)amount);
	const char *who[6];
	audit_params(req, NULL, who, ip);
	const char *params[11] = {id,	  req->params[0], auth_agency_scope(req_principal(req), scope, sizeof scope),
				  amount_s, reason,	  who[0], who[1], who[2], who[3], who[4], who[5]};
	pg_query(gw.db, "refund_ask", 11, params, cfg.db_timeout_ms, approval_asked, req);
}

void refund_approve(struct http_req *req, const char *approval_id, refund_done_fn done)
{
	if (!util_uuid_valid(approval_id)) {
		struct refund_result r = {.outcome = REFUND_NO_APPROVAL};
		done(req, &r);
		return;
	}
	struct refund_call *call = call_new(req, done);
	call_new_refund(call);
	char ip[AUDIT_IP_CAP];
	const char *who[6];
	audit_params(req, NULL, who, ip);
	const char *params[9] = {approval_id, who[0], call->refund_id, call->refund_ref, who[1], who[2], who[3], who[4], who[5]};
	pg_query(gw.db, "refund_approve", 9, params, cfg.idempotency_wait_ms + cfg.db_timeout_ms, refund_created, call);
}

void refunds_approve(struct http_req *req)
{
	if (auth_require(req, PERM_REFUND))
		refund_approve(req, req->params[0], refund_answered);
}

void refunds_create(struct http_req *req)
{
	const struct principal *p = req_principal(req);
	if (!auth_require(req, PERM_REFUND))
		return;
	const char *key = http_header(req, "Idempotency-Key");
	if (key && !idempotency_key_valid(key)) {
		http_reply_error(req, ERR_VALIDATION, "Idempotency-Key", "Idempotency-Key must be 1 to 255 printable ASCII characters");
		return;
	}
	if (!util_uuid_valid(req->params[0])) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such order");
		return;
	}
	json_t *body = http_parse_json_body(req, cfg.max_json_depth);
	if (!body)
		return;
	json_t *amount = json_object_get(body, "amount");
	json_t *reason = json_object_get(body, "reason");
	const char *bad = NULL, *msg = NULL;
	char amount_msg[80];
	snprintf(amount_msg, sizeof amount_msg, "amount must be " ORDER_AMOUNT_RULE, ORDER_AMOUNT_LIMIT);
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v)
	{
		if (strcmp(k, "amount") && strcmp(k, "reason"))
			bad = k, msg = "unknown field";
	}
	if (!json_is_object(body))
		bad = "", msg = "the body must be a JSON object";
	else if (!order_amount_valid(amount))
		bad = "amount", msg = amount_msg;
	else if (!json_is_string(reason) || util_utf8_length(json_string_value(reason), json_string_length(reason)) < 1 ||
		 util_utf8_length(json_string_value(reason), json_string_length(reason)) > 255)
		bad = "reason", msg = "reason must be a string of 1 to 255 characters";
	if (bad) {
		http_reply_error(req, ERR_VALIDATION, *bad ? bad : NULL, msg);
		json_decref(body);
		return;
	}
	if (json_integer_value(amount) > cfg.refund_approval_vnd) {
		ask_approval(req, json_integer_value(amount), json_string_value(reason));
		json_decref(body);
		return;
	}
	struct refund_call *call = call_new(req, refund_answered);
	call_new_refund(call);
	char amount_s[24], hash[65];
	snprintf(amount_s, sizeof amount_s, "%lld", (long long)json_integer_value(amount));
	/* the key answers for this order and this body: the same key on another order is a reuse */
	char *scoped = xasprintf("%s:%.*s", req->params[0], (int)req->body_len, req->body);
	util_sha256_hex(scoped, strlen(scoped), hash);
	free(scoped);
	const char *params[15] = {req->params[0], NULL, amount_s, json_string_value(reason), p->id, call->refund_id,
				  call->refund_ref, key, key ? hash : NULL};
	char ip[AUDIT_IP_CAP];
	audit_params(req, NULL, params + 9, ip);
	pg_query(gw.db, "refund_create", 15, params, cfg.idempotency_wait_ms + cfg.db_timeout_ms, refund_created, call);
	json_decref(body);
}

/* ---- GET /v1/orders/{id}/refunds, POST /v1/refunds/{id}/confirm ---- */

/* refunds_list */
struct listed_row {
	const char *refunds; /* a JSON array */
	int64_t orders;      /* 1 when the order exists in the caller's scope */
};
static const struct pg_col listed_cols[] = {
	PG_COL(struct listed_row, refunds, PG_TEXT),
	PG_COL(struct listed_row, orders, PG_INT64),
};

static void listed(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct listed_row r;
	if (st == PG_OK && !PG_ROW(res, 0, listed_cols, &r))
		st = PG_SQL_ERROR;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	if (r.orders == 0) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such order");
		return;
	}
	query_reply_page(req, r.refunds);
}

void refunds_list(struct http_req *req)
{
	if (!auth_require(req, PERM_VIEW))
		return;
	if (!util_uuid_valid(req->params[0])) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such order");
		return;
	}
	if (!query_parse_list(req))
		return;
	char buf[AUTH_SCOPE_CAP];
	const char *params[2] = {req->params[0], auth_agency_scope(req_principal(req), buf, sizeof buf)};
	pg_query(gw.db, "refunds_list", 2, params, cfg.db_timeout_ms, listed, req);
}

static void confirmed(void *arg, PGresult *res, enum pg_status st)
{
	struct refund_call *call = arg;
	if (st != PG_OK) {
		call_failed(call, res, st);
		return;
	}
	struct completed_row row;
	if (!PG_ROW(res, 0, completed_cols, &row)) {
		call_failed(call, res, PG_SQL_ERROR);
		return;
	}
	struct refund_result r = {.outcome = REFUND_CONFIRMED, .json = row.r_refund};
	if (row.r_outcome == OUTCOME_NOT_FOUND)
		r.outcome = REFUND_NO_REFUND;
	call_finish(call, &r);
}

/* Two-person rule for payouts: the first finance member's confirmation is recorded (asked); a
 * second member's confirmation completes the refund. */
static void payout_decided(void *arg, PGresult *res, enum pg_status st)
{
	struct refund_call *call = arg;
	struct http_req *req = call->req;
	if (st != PG_OK) {
		call_failed(call, res, st);
		return;
	}
	struct outcome_row verdict;
	if (!PG_ROW(res, 0, outcome_cols, &verdict)) {
		call_failed(call, res, PG_SQL_ERROR);
		return;
	}
	if (verdict.outcome == OUTCOME_ASKED || verdict.outcome == OUTCOME_SAME_PERSON) {
		struct refund_result r = {.outcome = verdict.outcome == OUTCOME_ASKED ? REFUND_ASKED : REFUND_SAME_PERSON};
		call_finish(call, &r);
		return;
	}
	const char *params[11] = {call->refund_id, "true", NULL, NULL, req_principal(req)->id};
	char ip[AUDIT_IP_CAP];
	audit_params(req, NULL, params + 5, ip);
	pg_query(gw.db, "refund_confirm", 11, params, cfg.db_timeout_ms, confirmed, call);
}

bool refund_confirmed_by_finance(const char *bank)
{
	const struct bank *bk = bank_find(bank);
	return !bk || !bk->adapter->build_refund;
}

/* refund_lookup */
struct lookup_row {
	const char *id, *bank;
	int status; /* enum db_status */
};
static const struct pg_col lookup_cols[] = {
	PG_COL(struct lookup_row, id, PG_TEXT),
	PG_COL(struct lookup_row, bank, PG_TEXT),
	PG_COL_WORD(struct lookup_row, status, db_statuses),
};

static void confirm_checked(void *arg, PGresult *res, enum pg_status st)
{
	struct refund_call *call = arg;
	if (st != PG_OK) {
		call_failed(call, res, st);
		return;
	}
	struct refund_result r = {.outcome = REFUND_NO_REFUND};
	struct lookup_row found;
	bool one = PQntuples(res) == 1 && PG_ROW(res, 0, lookup_cols, &found);
	if (one && !refund_confirmed_by_finance(found.bank))
		r.outcome = REFUND_BANK_CONFIRMS;
	else if (one && found.status != STATUS_PENDING)
		r.outcome = REFUND_NOT_PENDING;
	else if (one)
		r.outcome = REFUND_ASKED;
	if (r.outcome != REFUND_ASKED) {
		call_finish(call, &r);
		return;
	}
	char id[37], ip[AUDIT_IP_CAP];
	util_uuid(id);
	const char *who[6];
	audit_params(call->req, NULL, who, ip);
	const char *params[8] = {id, call->refund_id, who[0], who[1], who[2], who[3], who[4], who[5]};
	pg_query(gw.db, "payout_approval", 8, params, cfg.db_timeout_ms, payout_decided, call);
}

void refund_confirm(struct http_req *req, const char *refund_id, refund_done_fn done)
{
	if (!util_uuid_valid(refund_id)) {
		struct refund_result r = {.outcome = REFUND_NO_REFUND};
		done(req, &r);
		return;
	}
	struct refund_call *call = call_new(req, done);
	snprintf(call->refund_id, sizeof call->refund_id, "%s", refund_id);
	const char *params[1] = {refund_id};
	pg_query(gw.db, "refund_lookup", 1, params, cfg.db_timeout_ms, confirm_checked, call);
}

void refunds_confirm(struct http_req *req)
{
	if (auth_require(req, PERM_REFUND))
		refund_confirm(req, req->params[0], refund_answered);
}

/* The ledger's read API (ledger/accounts.c) for staff: finance sees every account, agency staff
 * their agencies' only. */
void ledger_accounts(struct http_req *req)
{
	if (!auth_require(req, PERM_VIEW))
		return;
	char scope[AUTH_SCOPE_CAP];
	ledger_accounts_reply(req, gw.db, auth_agency_scope(req_principal(req), scope, sizeof scope));
}

void ledger_account(struct http_req *req)
{
	if (!auth_require(req, PERM_VIEW))
		return;
	char scope[AUTH_SCOPE_CAP];
	ledger_account_reply(req, gw.db, auth_agency_scope(req_principal(req), scope, sizeof scope));
}
