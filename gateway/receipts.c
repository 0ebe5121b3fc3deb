/*
 * The numberer and the receipt routes. Numbering happens in SQL (feegate_receipts_issue, one
 * transaction per tick, after the payments' own COMMIT); signing happens here, because the
 * private key never goes to the database; the signatures are saved in a second statement. A
 * receipt numbered but not yet signed (a crash in between) is signed at the next tick, and is
 * not served until then.
 */
#include "gateway/receipts.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "gateway/banks.h"
#include "gateway/gateway.h"
#include "gateway/pages.h"
#include "gateway/receipt.h"
#include "gateway/receipt_pdf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/pgrow.h"

#define RECEIPTS_PER_TICK 100 /* signing one batch holds the loop for about 5 ms */

static struct receipt_key *signing_key;
static struct event *tick_ev;
static struct event *key_retry_ev; /* publishing the signing key again, after a failure */
static bool busy;

/* ---- the numberer ---- */

/* backlog: the next round after half the interval (at most 400 receipts a second at the default), so that a burst of payments is
 * numbered steadily rather than in one flat-out run competing with the payments themselves */
static void schedule(bool backlog)
{
	if (!tick_ev)
		return; /* stopped: a query answered while the pool closed */
	int ms = backlog ? cfg.receipt_interval_ms / 2 : cfg.receipt_interval_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_add(tick_ev, &tv);
}

static void signed_saved(void *arg, PGresult *res, enum pg_status st)
{
	intptr_t n = (intptr_t)arg;
	busy = false;
	if (st != PG_OK) {
		log_warn(NULL, "saving %ld receipt signature(s) failed; retried next tick", (long)n);
		schedule(false);
		return;
	}
	schedule(n >= RECEIPTS_PER_TICK);
}

/* receipts_issue (feegate_receipts_issue): each receipt numbered, to sign */
struct issued_row {
	const char *r_code, *r_body;
};
static const struct pg_col issued_cols[] = {
	PG_COL(struct issued_row, r_code, PG_TEXT),
	PG_COL(struct issued_row, r_body, PG_TEXT),
};

static void issued(void *arg, PGresult *res, enum pg_status st)
{
	if (st != PG_OK) {
		if (st == PG_SQL_ERROR)
			log_error(NULL, "numbering receipts failed: %s", PQresultErrorMessage(res));
		busy = false;
		schedule(false);
		return;
	}
	int n = PQntuples(res);
	if (n == 0 || !signing_key) {
		busy = false;
		schedule(false);
		return;
	}
	json_t *batch = json_array();
	struct issued_row row;
	for (int r = 0; r < n && PG_ROW(res, r, issued_cols, &row); r++) {
		if (!receipt_sign_into(signing_key, row.r_code, row.r_body, batch))
			log_error(NULL, "cannot sign receipt %s", row.r_code);
	}
	char *payload = json_dumps(batch, JSON_COMPACT);
	json_decref(batch);
	const char *params[1] = {payload};
	pg_query(gw.db, "receipts_sign", 1, params, cfg.db_timeout_ms, signed_saved, (void *)(intptr_t)n);
	free(payload);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	if (busy || gw.draining)
		return;
	busy = true;
	char limit[16];
	snprintf(limit, sizeof limit, "%d", RECEIPTS_PER_TICK);
	const char *params[1] = {limit};
	pg_query(gw.db, "receipts_issue", 1, params, cfg.db_timeout_ms * 3, issued, NULL);
}

static void key_registered(void *arg, PGresult *res, enum pg_status st);

static void key_register(evutil_socket_t fd, short what, void *arg)
{
	const char *params[2] = {receipt_key_id(signing_key), receipt_key_public(signing_key)};
	pg_query(gw.db, "receipt_key_register", 2, params, cfg.db_timeout_ms, key_registered, NULL);
}

static void key_registered(void *arg, PGresult *res, enum pg_status st)
{
	if (!signing_key)
		return;
	if (st != PG_OK) {
		/* after a pause: while the database is away the pool answers at once, and an
		 * immediate retry would spin the loop */
		log_warn(NULL, "publishing receipt key %s failed; retrying in a second", receipt_key_id(signing_key));
		if (!key_retry_ev)
			key_retry_ev = evtimer_new(gw.base, key_register, NULL);
		struct timeval second = {1, 0};
		evtimer_add(key_retry_ev, &second);
		return;
	}
	/* numbering starts once the key that signs is published, so every receipt verifies */
	event_active(tick_ev, EV_TIMEOUT, 0);
}

void receipts_start(void)
{
	if (!cfg.receipt_key || !*cfg.receipt_key) {
		log_warn(NULL, "FEEGATE_RECEIPT_KEY is not set: receipts are not issued");
		return;
	}
	char err[256];
	signing_key = receipt_key_load(cfg.receipt_key, err, sizeof err);
	if (!signing_key) {
		log_error(NULL, "FEEGATE_RECEIPT_KEY: %s; receipts are not issued", err);
		return;
	}
	log_info(NULL, "receipts are signed with key %s", receipt_key_id(signing_key));
	tick_ev = evtimer_new(gw.base, on_tick, NULL);
	const char *params[2] = {receipt_key_id(signing_key), receipt_key_public(signing_key)};
	pg_query(gw.db, "receipt_key_register", 2, params, cfg.db_timeout_ms, key_registered, NULL);
}

void receipts_stop(void)
{
	if (tick_ev)
		event_free(tick_ev);
	tick_ev = NULL;
	if (key_retry_ev)
		event_free(key_retry_ev);
	key_retry_ev = NULL;
	receipt_key_free(signing_key);
	signing_key = NULL;
}

/* ---- reading ---- */

enum { RG_BODY, RG_SIGNATURE, RG_PUBLIC_KEY, RG_ADJUSTMENTS, RG_ORDER_STATUS };

json_t *receipts_doc(PGresult *res, int row)
{
	json_t *doc = json_loads(PQgetvalue(res, row, RG_BODY), 0, NULL);
	if (!doc)
		return NULL;
	const char *code = json_string_value(json_object_get(doc, "code"));
	char *url = xasprintf("%s/receipts/%s", cfg.public_url, code ? code : "");
	char *pdf = xasprintf("%s.pdf", url);
	json_object_set_new(doc, "signature", json_string(PQgetvalue(res, row, RG_SIGNATURE)));
	json_object_set_new(doc, "url", json_string(url));
	json_object_set_new(doc, "pdf_url", json_string(pdf));
	json_t *adj = json_loads(PQgetvalue(res, row, RG_ADJUSTMENTS), 0, NULL);
	json_object_set_new(doc, "adjustments", adj ? adj : json_array());
	free(url);
	free(pdf);
	return doc;
}

static void got_order_receipt(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	json_t *doc = PQntuples(res) == 1 ? receipts_doc(res, 0) : NULL;
	if (!doc) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no receipt for this order (yet)");
		return;
	}
	http_reply_json(req, 200, doc);
}

void receipts_for_order(struct http_req *req)
{
	if (!util_uuid_valid(req->params[0])) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such order");
		return;
	}
	const char *params[2] = {req->params[0], req_principal(req)->id};
	pg_query(gw.db, "receipt_by_order", 2, params, cfg.db_timeout_ms, got_order_receipt, req);
}

/* receipt_keys */
struct key_row {
	const char *key_id, *alg, *public_key, *created_at;
};
static const struct pg_col key_cols[] = {
	PG_COL(struct key_row, key_id, PG_TEXT),
	PG_COL(struct key_row, alg, PG_TEXT),
	PG_COL(struct key_row, public_key, PG_TEXT),
	PG_COL(struct key_row, created_at, PG_TEXT),
};

static void got_keys(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	json_t *keys = json_array();
	struct key_row k;
	for (int r = 0; r < PQntuples(res) && PG_ROW(res, r, key_cols, &k); r++)
		json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s}", "key_id", k.key_id, "alg", k.alg, "public_key",
						      k.public_key, "created_at", k.created_at));
	http_reply_json(req, 200, json_pack("{s:o}", "keys", keys));
}

void receipts_keys(struct http_req *req)
{
	pg_query(gw.db, "receipt_keys", 0, NULL, cfg.db_timeout_ms, got_keys, req);
}

/* ---- the public page ---- */

enum receipt_view { VIEW_HTML, VIEW_PDF, VIEW_JSON };

struct public_state {
	enum receipt_view view;
	char code[40];
};

static bool code_valid(const char *s)
{
	if (s[0] != 'R' || strlen(s) != 25)
		return false;
	for (const char *p = s + 1; *p; p++) {
		if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F')))
			return false;
	}
	return true;
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void row(struct evbuffer *b, const char *id, const char *vi, const char *en, const char *value)
{
	evbuffer_add_printf(b, "<tr><td>%s <span class=\"en\">/ %s</span></td><td class=\"r\" id=\"%s\">", vi, en, id);
	page_text(b, value);
	evbuffer_add_printf(b, "</td></tr>");
}

static void render_page(struct http_req *req, json_t *doc, bool valid)
{
	char amount[48], number[32], paid[32], issued[32];
	format_vnd(json_integer_value(json_object_get(doc, "amount")), amount, sizeof amount);
	snprintf(number, sizeof number, "%07lld", (long long)json_integer_value(json_object_get(doc, "number")));
	page_local_time(str(doc, "paid_at"), paid, sizeof paid);
	page_local_time(str(doc, "issued_at"), issued, sizeof issued);
	json_t *agency = json_object_get(doc, "agency");
	json_t *adjustments = json_object_get(doc, "adjustments");
	bool cancelled = false;
	size_t i;
	json_t *a;
	json_array_foreach(adjustments, i, a) cancelled |= strcmp(str(a, "kind"), "cancellation") == 0;

	struct evbuffer *b = evbuffer_new();
	page_begin(b, "Biên lai thu phí, lệ phí / Fee receipt", NULL, 0, NULL);
	evbuffer_add_printf(b, "<h1>Biên lai điện tử thu phí, lệ phí <span class=\"en\">/ Electronic fee receipt</span></h1>");
	if (valid)
		evbuffer_add_printf(b, "<p class=\"msg ok\" id=\"validity\" data-valid=\"true\">Hợp lệ: chữ ký số của cổng "
				       "thanh toán đã được kiểm tra. <span class=\"en\">Valid: the gateway's signature "
				       "checks out.</span></p>");
	else
		evbuffer_add_printf(b, "<p class=\"msg bad\" id=\"validity\" data-valid=\"false\">KHÔNG hợp lệ: chữ ký "
				       "không khớp với nội dung. <span class=\"en\">NOT valid: the signature does not match."
				       "</span></p>");
	if (cancelled)
		evbuffer_add_printf(b, "<p class=\"msg bad\" id=\"cancelled\">Đã hủy do hoàn tiền toàn bộ. <span class=\"en\">"
				       "Cancelled: fully refunded.</span></p>");
	evbuffer_add_printf(b, "<table>");
	row(b, "template", "Ký hiệu mẫu", "Template", str(doc, "template"));
	row(b, "series", "Ký hiệu", "Series", str(doc, "series"));
	row(b, "number", "Số", "Number", number);
	row(b, "agency", "Đơn vị thu", "Collecting agency", str(agency, "name"));
	row(b, "tax_code", "Mã số thuế", "Tax code", str(agency, "tax_code"));
	row(b, "payer", "Người nộp", "Payer", str(doc, "payer_name"));
	row(b, "procedure", "Thủ tục", "Procedure", str(doc, "procedure"));
	row(b, "reference", "Mã hồ sơ", "Dossier reference", str(doc, "reference"));
	evbuffer_add_printf(b, "</table><h2>Khoản thu <span class=\"en\">/ Items</span></h2><table id=\"items\">");
	json_array_foreach(json_object_get(doc, "items"), i, a)
	{
		char v[48];
		format_vnd(json_integer_value(json_object_get(a, "amount")), v, sizeof v);
		evbuffer_add_printf(b, "<tr><td>");
		page_text(b, str(a, "name"));
		evbuffer_add_printf(b, "</td><td class=\"r\">%s</td></tr>", v);
	}
	evbuffer_add_printf(b, "</table><p class=\"amt\" id=\"amount\">%s</p><p id=\"words\">", amount);
	page_text(b, str(doc, "amount_in_words"));
	evbuffer_add_printf(b, "</p><table>");
	const struct bank *bk = bank_find(str(doc, "bank"));
	row(b, "bank", "Ngân hàng / ví", "Bank or wallet", bk ? bk->adapter->display_name : str(doc, "bank"));
	row(b, "bank_txn_id", "Mã giao dịch", "Bank transaction", str(doc, "bank_txn_id"));
	row(b, "paid_at", "Thời gian thanh toán", "Paid at (UTC+7)", paid);
	row(b, "issued_at", "Ngày lập", "Issued at (UTC+7)", issued);
	row(b, "key_id", "Khóa ký", "Signing key", str(doc, "key_id"));
	evbuffer_add_printf(b, "</table>");
	if (json_array_size(adjustments)) {
		evbuffer_add_printf(b, "<h2>Điều chỉnh <span class=\"en\">/ Adjustments</span></h2><table id=\"adjustments\">");
		json_array_foreach(adjustments, i, a)
		{
			char v[48], at[32];
			format_vnd(json_integer_value(json_object_get(a, "amount")), v, sizeof v);
			page_local_time(str(a, "created_at"), at, sizeof at);
			bool c = strcmp(str(a, "kind"), "cancellation") == 0;
			evbuffer_add_printf(b, "<tr data-kind=\"%s\"><td>%s <span class=\"en\">/ %s</span><br>", c ? "cancellation" : "partial_refund",
					    c ? "Hoàn tiền toàn bộ, hủy biên lai" : "Hoàn tiền một phần",
					    c ? "Full refund, receipt cancelled" : "Partial refund");
			page_text(b, str(a, "reason"));
			evbuffer_add_printf(b, " (%s)</td><td class=\"r\">−%s</td></tr>", at, v);
		}
		evbuffer_add_printf(b, "</table>");
	}
	char *self = xasprintf("%s/receipts/%s", cfg.public_url, str(doc, "code"));
	char *svg = NULL;
	if (adapter_qr_svg(self, &svg) == ADAPTER_OK)
		evbuffer_add_printf(b, "<div class=\"qr\" id=\"qr\" data-url=\"%s\">%s</div>", self, svg);
	free(svg);
	evbuffer_add_printf(b, "<p class=\"muted\">Quét mã để kiểm tra biên lai này. <span class=\"en\">Scan to check this "
			       "receipt.</span></p><p class=\"noprint\"><a class=\"btn\" id=\"pdf\" href=\"/receipts/%s.pdf\">"
			       "Tải PDF <span class=\"en\">/ Download PDF</span></a><a class=\"btn\" href=\"/receipts/%s.json\">"
			       "Dữ liệu đã ký (JSON) <span class=\"en\">/ Signed data</span></a></p><p class=\"sig\">",
			    str(doc, "code"), str(doc, "code"));
	page_text(b, str(doc, "signature"));
	evbuffer_add_printf(b, "</p>");
	free(self);
	page_send(req, 200, b);
}

static void public_not_found(struct http_req *req)
{
	struct evbuffer *b = evbuffer_new();
	page_begin(b, "Biên lai / Receipt", NULL, 0, NULL);
	evbuffer_add_printf(b, "<p class=\"msg\">Không tìm thấy biên lai. <span class=\"en\">No such receipt.</span></p>");
	page_send(req, 404, b);
}

static void got_public(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct public_state *s = req->state;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	json_t *doc = PQntuples(res) == 1 ? receipts_doc(res, 0) : NULL;
	if (!doc) {
		if (s->view == VIEW_HTML)
			public_not_found(req);
		else
			http_reply_error(req, ERR_NOT_FOUND, NULL, "no such receipt");
		return;
	}
	bool valid = !PQgetisnull(res, 0, RG_PUBLIC_KEY) && receipt_verify(doc, PQgetvalue(res, 0, RG_PUBLIC_KEY));
	switch (s->view) {
	case VIEW_JSON:
		http_reply_json(req, 200, doc);
		return;
	case VIEW_PDF:
		receipt_pdf_reply(req, doc, valid); /* steals doc */
		return;
	case VIEW_HTML:
		render_page(req, doc, valid);
		json_decref(doc);
		return;
	}
}

void receipts_public(struct http_req *req)
{
	struct public_state *s = xcalloc(1, sizeof *s);
	req->state = s;
	req->state_free = free;
	const char *p = req->params[0];
	size_t n = strlen(p);
	s->view = VIEW_HTML;
	if (n > 4 && strcmp(p + n - 4, ".pdf") == 0)
		s->view = VIEW_PDF;
	else if (n > 5 && strcmp(p + n - 5, ".json") == 0)
		s->view = VIEW_JSON;
	size_t len = s->view == VIEW_PDF ? n - 4 : s->view == VIEW_JSON ? n - 5 : n;
	if (len >= sizeof s->code) {
		public_not_found(req);
		return;
	}
	memcpy(s->code, p, len);
	s->code[len] = '\0';
	if (!code_valid(s->code)) {
		public_not_found(req);
		return;
	}
	const char *params[1] = {s->code};
	pg_query(gw.db, "receipt_by_code", 1, params, cfg.db_timeout_ms, got_public, req);
}
