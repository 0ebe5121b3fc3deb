/*
 * Bank notifications (/ipn/{bank}) and browser returns (/return/{bank}). A notification is
 * verified over the raw bytes by its adapter, then applied once, in one transaction per batch
 * (feegate_apply_notifications: guarded state change, ledger posting, portal webhook row); the
 * bank gets the answer its protocol expects after COMMIT. The return only reads.
 */
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "gateway/banks.h"
#include "gateway/db.h"
#include "gateway/gateway.h"
#include "gateway/notify.h"
#include "gateway/webhooks.h"
#include "lib/batch.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"

#define MAX_CANDIDATES 64

static struct batcher *batcher;

void notify_init(void)
{
	batcher = batcher_new(gw.base, gw.db, "apply_notifications", cfg.batch_window_us, cfg.batch_max, cfg.batch_inflight,
			      cfg.db_timeout_ms * 2, "notification_batches");
	(void)metrics_counter("feegate_notifications_applied_total", NULL,
			      "Bank notifications that changed an attempt (replays not counted).");
	(void)metrics_counter("feegate_bad_signatures_total", NULL, "Bank notifications and returns refused for their signature.");
}

int notify_pending(void)
{
	return batcher ? batcher_pending(batcher) : 0;
}

void notify_flush(void)
{
	if (batcher)
		batcher_flush(batcher);
}

json_t *notify_item(const char *bank, const adapter_txn *txn, const char *raw, size_t raw_len, const char *source)
{
	bool credit = txn->bank_order_ref[0] == '\0';
	json_t *it = json_object();
	json_object_set_new(it, "bank", json_string(bank));
	json_object_set_new(it, "kind", json_string(credit ? "credit" : "payment"));
	json_object_set_new(it, "ref", json_string(txn->bank_order_ref));
	json_object_set_new(it, "amount", json_integer(txn->amount));
	json_object_set_new(it, "success", json_boolean(txn->success));
	json_object_set_new(it, "txn_id", json_string(txn->bank_txn_id));
	json_object_set_new(it, "failure_code", json_string(txn->failure_code));
	json_object_set_new(it, "source", json_string(source));
	/* the bank's own payment time: the payment's business day is this instant's */
	if (txn->bank_time > 0)
		json_object_set_new(it, "paid_at", json_integer((json_int_t)txn->bank_time));
	if (credit) {
		/* the references the adapter's rule finds in the content; the batch looks them up with
		 * the amount and the account (feegate_apply_notifications) */
		char refs[MAX_CANDIDATES][ADAPTER_REF_CAP];
		const adapter *a = adapter_find(bank);
		size_t n = a ? adapter_match_candidates(a, txn, CHECKOUT_REF_LEN, refs, MAX_CANDIDATES) : 0;
		json_t *cands = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(cands, json_string(refs[i]));
		json_object_set_new(it, "candidates", cands);
		json_object_set_new(it, "account_no", json_string(txn->account_no));
		json_object_set_new(it, "content", json_string(txn->content));
	}
	if (raw && util_utf8_length(raw, raw_len) >= 0)
		json_object_set_new(it, "raw", json_stringn(raw, raw_len < 4000 ? raw_len : 4000));
	return it;
}

struct apply_wait {
	notify_done_fn done;
	void *arg;
};

/* apply_notifications: one row per item */
struct applied_row {
	int64_t r_idx;
	int r_outcome; /* enum db_outcome */
	const char *r_order, *r_status;
	const char *r_delivery, *r_client, *r_url, *r_secret, *r_payload; /* a webhook handed to this worker */
};
static const struct pg_col applied_cols[] = {
	PG_COL(struct applied_row, r_idx, PG_INT64),
	PG_COL_WORD(struct applied_row, r_outcome, db_outcomes),
	PG_COL(struct applied_row, r_order, PG_TEXT_NULL),
	PG_COL(struct applied_row, r_status, PG_TEXT_NULL),
	PG_COL(struct applied_row, r_delivery, PG_TEXT_NULL),
	PG_COL(struct applied_row, r_client, PG_TEXT),
	PG_COL(struct applied_row, r_url, PG_TEXT),
	PG_COL(struct applied_row, r_secret, PG_TEXT),
	PG_COL(struct applied_row, r_payload, PG_TEXT),
};

static adapter_outcome bank_outcome(enum db_outcome o)
{
	switch (o) {
	case OUTCOME_APPLIED:
		return ADAPTER_APPLIED;
	case OUTCOME_REPLAYED:
		return ADAPTER_REPLAYED;
	case OUTCOME_UNKNOWN_ORDER:
		return ADAPTER_UNKNOWN_ORDER;
	case OUTCOME_WRONG_AMOUNT:
		return ADAPTER_WRONG_AMOUNT;
	case OUTCOME_TXN_ID_CONFLICT:
		log_warn(NULL, "a bank transaction id already recorded for another payment: kept as a txn_id_conflict case");
		return ADAPTER_FAILED; /* the bank's error answer */
	default:
		return ADAPTER_FAILED;
	}
}

static void applied(void *arg, PGresult *res, int row, enum pg_status st)
{
	struct apply_wait *w = arg;
	adapter_outcome o = ADAPTER_FAILED;
	struct applied_row r = {0};
	bool decoded = st == PG_OK && row >= 0 && PG_ROW(res, row, applied_cols, &r);
	if (decoded) {
		o = bank_outcome((enum db_outcome)r.r_outcome);
		if (o == ADAPTER_APPLIED)
			metrics_count("notifications_applied");
	} else if (st == PG_SQL_ERROR) {
		log_error(NULL, "applying a notification failed: %s", res ? PQresultErrorMessage(res) : "");
	}
	w->done(w->arg, o, r.r_order, r.r_status);
	free(w);
	/* the portal webhook this batch wrote leased to this worker: sent from here */
	if (decoded && r.r_delivery)
		webhooks_hand(r.r_delivery, r.r_client, r.r_url, r.r_secret, r.r_payload);
}

void notify_apply(json_t *item, notify_done_fn done, void *arg)
{
	struct apply_wait *w = xmalloc(sizeof *w);
	w->done = done;
	w->arg = arg;
	batcher_submit(batcher, item, applied, w);
}

/* ---- /ipn/{bank} ---- */

struct ipn_state {
	const struct bank *bank;
	char ref[ADAPTER_REF_CAP];
};

static void reply_bank(struct http_req *req, const struct bank *bk, adapter_outcome o)
{
	adapter_reply r = adapter_notification_reply(bk->adapter, o);
	http_reply_raw(req, r.status, r.content_type ? r.content_type : "text/plain", r.body, r.body_len);
}

static void ipn_applied(void *arg, adapter_outcome o, const char *order_id, const char *status)
{
	struct http_req *req = arg;
	struct ipn_state *s = req->state;
	log_info(req->id, "%s notification for %s: %s%s%s", s->bank->adapter->name, s->ref[0] ? s->ref : "(transfer)",
		 o == ADAPTER_APPLIED	     ? "applied"
		 : o == ADAPTER_REPLAYED      ? "replayed"
		 : o == ADAPTER_UNKNOWN_ORDER ? "unknown order"
		 : o == ADAPTER_WRONG_AMOUNT  ? "wrong amount, kept as an exception"
					      : "failed",
		 status ? ", order now " : "", status ? status : "");
	reply_bank(req, s->bank, o);
}

void bank_notification(struct http_req *req)
{
	const struct bank *bk = bank_find(req->params[0]);
	if (!bk || !bk->adapter->verify_notification) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such bank");
		return;
	}
	const struct evkeyvalq *hdrs = &req->in_headers;
	adapter_kv kv[64];
	size_t nkv = 0;
	struct evkeyval *h;
	TAILQ_FOREACH(h, hdrs, next)
	{
		if (nkv < 64)
			kv[nkv++] = (adapter_kv){h->key, h->value};
	}
	char *body = xstrndup(req->body, req->body_len);
	adapter_inbound in = {.query = req->query, .body = body, .body_len = req->body_len, .headers = kv,
			      .n_headers = nkv, .now = time(NULL)};
	adapter_txn txn;
	adapter_rc rc = adapter_verify_notification(bk->adapter, &bk->config, &in, &txn);
	if (rc != ADAPTER_OK) {
		free(body);
		if (rc == ADAPTER_BAD_SIGNATURE)
			metrics_count("bad_signatures");
		log_warn(req->id, "%s notification rejected: %s", bk->adapter->name, adapter_rc_name(rc));
		reply_bank(req, bk, ADAPTER_REJECTED);
		return;
	}
	if (txn.amount <= 0 || txn.amount > ADAPTER_AMOUNT_MAX) {
		free(body);
		log_warn(req->id, "%s notification with an impossible amount", bk->adapter->name);
		reply_bank(req, bk, ADAPTER_WRONG_AMOUNT);
		return;
	}
	struct ipn_state *s = xcalloc(1, sizeof *s);
	s->bank = bk;
	snprintf(s->ref, sizeof s->ref, "%s", txn.bank_order_ref);
	req->state = s;
	req->state_free = free;
	const char *raw = req->query && *req->query ? req->query : body;
	notify_apply(notify_item(bk->adapter->name, &txn, raw, strlen(raw), "notification"), ipn_applied, req);
	free(body);
}

/* ---- /return/{bank} ---- */

/* return_lookup */
struct return_row {
	const char *id, *status, *return_url;
};
static const struct pg_col return_cols[] = {
	PG_COL(struct return_row, id, PG_TEXT),
	PG_COL(struct return_row, status, PG_TEXT),
	PG_COL(struct return_row, return_url, PG_TEXT),
};

static void return_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	struct return_row r;
	if (PQntuples(res) != 1 || !PG_ROW(res, 0, return_cols, &r)) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such payment attempt");
		return;
	}
	const char *url = r.return_url;
	char *id = evhttp_encode_uri(r.id);
	char *status = evhttp_encode_uri(r.status);
	const char *hash = strchr(url, '#');
	size_t base_len = hash ? (size_t)(hash - url) : strlen(url);
	char *loc = xasprintf("%.*s%sorder_id=%s&status=%s%s", (int)base_len, url,
			      memchr(url, '?', base_len) ? "&" : "?", id, status, hash ? hash : "");
	http_reply_redirect(req, loc);
	free(loc);
	free(id);
	free(status);
}

void bank_return(struct http_req *req)
{
	const struct bank *bk = bank_find(req->params[0]);
	if (!bk || !bk->adapter->verify_return) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such bank");
		return;
	}
	adapter_inbound in = {.query = req->query, .body = "", .body_len = 0, .now = time(NULL)};
	adapter_txn txn;
	adapter_rc rc = adapter_verify_return(bk->adapter, &bk->config, &in, &txn);
	if (rc != ADAPTER_OK || !txn.bank_order_ref[0]) {
		if (rc == ADAPTER_BAD_SIGNATURE)
			metrics_count("bad_signatures");
		log_warn(req->id, "%s return rejected: %s", bk->adapter->name, adapter_rc_name(rc));
		http_reply_error(req, ERR_VALIDATION, NULL, "the bank's signature on this return is not valid");
		return;
	}
	const char *params[2] = {bk->adapter->name, txn.bank_order_ref};
	pg_query(gw.db, "return_lookup", 2, params, cfg.db_timeout_ms, return_found, req);
}
