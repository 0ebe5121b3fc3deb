/*
 * The citizen's checkout, reached by the unguessable token in checkout_url. Redis maps
 * token -> order id (a cache); PostgreSQL holds the token too, so a flushed or restarted Redis
 * never breaks a link. Choosing a bank opens an attempt (the order becomes pending) and hands
 * the citizen to the bank's adapter: a redirect, a server-to-server create call, or a QR code.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "adapters/adapter.h"
#include "gateway/banks.h"
#include "gateway/db.h"
#include "gateway/gateway.h"
#include "gateway/pages.h"
#include "lib/breaker.h"
#include "lib/config.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "lib/mem.h"

struct checkout_state {
	char token[64];
	char bank[24];
	char attempt_id[37];
	char ref[24];
	adapter_payment payment;
	char *description;
	char bin[16], account[40], holder[128];
	adapter_start start;
	int refused; /* a bank choice refused: the state page answers with this status */
};

static void checkout_state_free(void *p)
{
	struct checkout_state *s = p;
	adapter_start_free(&s->start);
	free(s->description);
	free(s);
}

static bool token_valid(const char *t)
{
	size_t n = strlen(t);
	if (n < 20 || n > 60)
		return false;
	for (const char *p = t; *p; p++) {
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-' ||
		      *p == '_'))
			return false;
	}
	return true;
}

void format_vnd(int64_t amount, char *out, size_t cap)
{
	char digits[32];
	int n = snprintf(digits, sizeof digits, "%lld", (long long)(amount < 0 ? -amount : amount));
	size_t o = 0;
	if (amount < 0 && o + 1 < cap)
		out[o++] = '-';
	for (int i = 0; i < n && o + 2 < cap; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			out[o++] = '.';
		out[o++] = digits[i];
	}
	out[o] = '\0';
	snprintf(out + o, cap - o, " \xe2\x82\xab");
}

#define html page_text

static void message_page(struct http_req *req, int status, const char *vi, const char *en)
{
	struct evbuffer *b = evbuffer_new();
	page_begin(b, "Thanh toán lệ phí / Fee payment", NULL, 0, NULL);
	evbuffer_add_printf(b, "<p class=\"msg\">");
	html(b, vi);
	evbuffer_add_printf(b, "<br><span class=\"en\">");
	html(b, en);
	evbuffer_add_printf(b, "</span></p>");
	page_send(req, status, b);
}

static void not_found_page(struct http_req *req)
{
	message_page(req, 404, "Liên kết thanh toán không tồn tại.", "This payment link does not exist.");
}

/* checkout_get / checkout_by_id columns */
enum {
	CK_ID,
	CK_AGENCY_CODE,
	CK_AGENCY_NAME,
	CK_DESCRIPTION,
	CK_AMOUNT,
	CK_ITEMS,
	CK_STATUS,
	CK_EXPIRES_MS,
	CK_BANKS,
	CK_REFERENCE,
	CK_PROCEDURE,
	CK_PAYER_NAME,
	CK_RETURN_URL,
	CK_RECEIPT_CODE
};

static bool bank_listed(const char *banks, const char *name)
{
	/* the agency's banks as a PostgreSQL text[]: "{a,b,c}" */
	size_t n = strlen(name);
	for (const char *p = banks; (p = strstr(p, name)) != NULL; p += n) {
		if ((p == banks || p[-1] == '{' || p[-1] == ',') && (p[n] == ',' || p[n] == '}'))
			return true;
	}
	return false;
}

static void order_summary(struct evbuffer *b, PGresult *res)
{
	evbuffer_add_printf(b, "<p class=\"muted\">Đơn vị thu <span class=\"en\">/ Collecting agency</span></p>"
			       "<h1 id=\"agency\">");
	html(b, PQgetvalue(res, 0, CK_AGENCY_NAME));
	evbuffer_add_printf(b, "</h1><p id=\"description\">");
	html(b, PQgetvalue(res, 0, CK_DESCRIPTION));
	evbuffer_add_printf(b, "</p><table id=\"order\"><tr><td>Mã hồ sơ <span class=\"en\">/ Dossier reference</span>"
			       "</td><td class=\"r\" id=\"reference\">");
	html(b, PQgetvalue(res, 0, CK_REFERENCE));
	evbuffer_add_printf(b, "</td></tr>");
	if (!PQgetisnull(res, 0, CK_PROCEDURE)) {
		evbuffer_add_printf(b, "<tr><td>Thủ tục <span class=\"en\">/ Procedure</span></td><td class=\"r\" id=\"procedure\">");
		html(b, PQgetvalue(res, 0, CK_PROCEDURE));
		evbuffer_add_printf(b, "</td></tr>");
	}
	if (!PQgetisnull(res, 0, CK_PAYER_NAME)) {
		evbuffer_add_printf(b, "<tr><td>Người nộp <span class=\"en\">/ Payer</span></td><td class=\"r\" id=\"payer\">");
		html(b, PQgetvalue(res, 0, CK_PAYER_NAME));
		evbuffer_add_printf(b, "</td></tr>");
	}
	evbuffer_add_printf(b, "</table>");
	json_t *items = PQgetisnull(res, 0, CK_ITEMS) ? NULL : json_loads(PQgetvalue(res, 0, CK_ITEMS), 0, NULL);
	if (json_is_array(items) && json_array_size(items)) {
		evbuffer_add_printf(b, "<table id=\"items\">");
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it)
		{
			char a[48];
			format_vnd(json_integer_value(json_object_get(it, "amount")), a, sizeof a);
			evbuffer_add_printf(b, "<tr><td>");
			html(b, json_string_value(json_object_get(it, "name")));
			evbuffer_add_printf(b, "</td><td class=\"r\">%s</td></tr>", a);
		}
		evbuffer_add_printf(b, "</table>");
	}
	json_decref(items);
	char amount[48];
	format_vnd(strtoll(PQgetvalue(res, 0, CK_AMOUNT), NULL, 10), amount, sizeof amount);
	evbuffer_add_printf(b, "<p class=\"amt\" id=\"amount\">%s</p>", amount);
}

/* The expiry in Vietnam time, and the time left: a server-rendered figure, counted down by
 * checkout.js when it runs; without it the page's refresh header shows the expired page. */
static void expiry_box(struct evbuffer *b, int64_t expires_ms)
{
	char at[32];
	page_vn_time(expires_ms, at, sizeof at);
	int64_t left_s = (expires_ms - util_db_now_ms()) / 1000;
	if (left_s < 0)
		left_s = 0;
	evbuffer_add_printf(b, "<p class=\"msg\" id=\"expiry\">Hạn thanh toán: <b id=\"expires_at\">%s</b> (giờ Việt Nam)"
			       "<br>Còn lại: <span class=\"timer\" id=\"countdown\" data-expires-ms=\"%lld\">%lld phút</span>"
			       "<br><span class=\"en\">Pay before %s (Vietnam time); time left shown above.</span></p>",
			    at, (long long)expires_ms, (long long)((left_s + 59) / 60), at);
}

static void back_link(struct evbuffer *b, const char *return_url)
{
	evbuffer_add_printf(b, "<a class=\"btn\" id=\"back\" href=\"");
	html(b, return_url);
	evbuffer_add_printf(b, "\">Quay lại cổng dịch vụ công <span class=\"en\">/ Back to the portal</span></a>");
}

static int refresh_for(int64_t expires_ms)
{
	int64_t left = (expires_ms - util_db_now_ms()) / 1000 + 1;
	return (int)(left < 1 ? 1 : left > 86400 ? 86400 : left);
}

static void render(struct http_req *req, PGresult *res)
{
	struct checkout_state *s = req->state;
	const char *status_word = PQgetvalue(res, 0, CK_STATUS);
	enum db_status status = (enum db_status)pg_word_value(db_statuses, status_word);
	int64_t expires_ms = strtoll(PQgetvalue(res, 0, CK_EXPIRES_MS), NULL, 10);
	bool open = (status == STATUS_CREATED || status == STATUS_PENDING) && expires_ms > util_db_now_ms();
	char self[96];
	snprintf(self, sizeof self, "/checkout/%s", s->token);
	struct evbuffer *b = evbuffer_new();
	page_begin(b, "Thanh toán lệ phí / Fee payment", open ? "checkout.js" : NULL, open ? refresh_for(expires_ms) : 0, self);
	order_summary(b, res);
	if (!open) {
		const char *vi, *en, *state, *cls = "";
		bool paid = status == STATUS_SUCCEEDED || status == STATUS_PARTIALLY_REFUNDED || status == STATUS_REFUNDED;
		if (paid) {
			vi = "Đã thanh toán. Cảm ơn bạn.";
			en = "Paid. Thank you.";
			state = "paid";
			cls = " ok";
		} else if (status == STATUS_CANCELLED) {
			vi = "Đơn đã bị hủy.";
			en = "This order was cancelled.";
			state = "cancelled";
		} else {
			vi = "Đơn đã hết hạn thanh toán.";
			en = "This order has expired.";
			state = "expired";
		}
		evbuffer_add_printf(b, "<p class=\"msg%s\" id=\"status\" data-status=\"%s\" data-state=\"%s\">", cls, status_word, state);
		html(b, vi);
		evbuffer_add_printf(b, "<br><span class=\"en\">");
		html(b, en);
		evbuffer_add_printf(b, "</span></p>");
		if (!paid) {
			char at[32];
			page_vn_time(expires_ms, at, sizeof at);
			evbuffer_add_printf(b, "<p class=\"muted\" id=\"expires_at\">Hạn thanh toán / Payment deadline: %s (giờ Việt Nam)</p>", at);
		}
		if (paid)
			evbuffer_add_printf(b, "<a class=\"btn\" id=\"receipt\" href=\"/receipts/%s\">Xem biên lai <span "
					       "class=\"en\">/ View the receipt</span></a>",
					    PQgetvalue(res, 0, CK_RECEIPT_CODE));
		back_link(b, PQgetvalue(res, 0, CK_RETURN_URL));
		page_send(req, s->refused ? s->refused : 200, b);
		return;
	}
	expiry_box(b, expires_ms);
	evbuffer_add_printf(b, "<p>Chọn cách thanh toán<br><span class=\"en\">Choose how to pay</span></p>"
			       "<form method=\"post\" id=\"banks\">");
	const char *banks = PQgetvalue(res, 0, CK_BANKS);
	int shown = 0;
	for (size_t i = 0; i < bank_count(); i++) {
		const struct bank *bk = bank_at(i);
		if (!bk->enabled || !bank_listed(banks, bk->adapter->name) || breaker_is_open(bk->adapter->name))
			continue;
		evbuffer_add_printf(b, "<button type=\"submit\" name=\"bank\" value=\"%s\">", bk->adapter->name);
		html(b, bk->adapter->display_name);
		if (bk->adapter->checkout_vi)
			evbuffer_add_printf(b, "<small>%s / %s</small>", bk->adapter->checkout_vi, bk->adapter->checkout_en);
		evbuffer_add_printf(b, "</button>");
		shown++;
	}
	evbuffer_add_printf(b, "</form>");
	if (!shown)
		evbuffer_add_printf(b, "<p class=\"msg\">Hiện chưa có ngân hàng nào sẵn sàng, vui lòng thử lại sau."
				       "<br><span class=\"en\">No bank is available right now; please try again later."
				       "</span></p>");
	back_link(b, PQgetvalue(res, 0, CK_RETURN_URL));
	page_send(req, 200, b);
}

static void got_checkout(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct checkout_state *s = req->state;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		not_found_page(req);
		return;
	}
	int64_t expires_ms = strtoll(PQgetvalue(res, 0, CK_EXPIRES_MS), NULL, 10);
	int ttl = (int)((expires_ms - util_db_now_ms()) / 1000);
	if (ttl > 0)
		redis_command(gw.redis, NULL, NULL, "SET checkout:%s %s EX %d", s->token, PQgetvalue(res, 0, CK_ID), ttl);
	render(req, res);
}

static void got_cached(void *arg, redisReply *reply)
{
	struct http_req *req = arg;
	struct checkout_state *s = req->state;
	if (reply && reply->type == REDIS_REPLY_STRING && util_uuid_valid(reply->str)) {
		const char *params[2] = {reply->str, s->token};
		pg_query(gw.db, "checkout_by_id", 2, params, cfg.db_timeout_ms, got_checkout, req);
		return;
	}
	const char *params[1] = {s->token};
	pg_query(gw.db, "checkout_get", 1, params, cfg.db_timeout_ms, got_checkout, req);
}

static struct checkout_state *state_for(struct http_req *req)
{
	struct checkout_state *s = xcalloc(1, sizeof *s);
	snprintf(s->token, sizeof s->token, "%s", req->params[0]);
	req->state = s;
	req->state_free = checkout_state_free;
	return s;
}

void checkout_page(struct http_req *req)
{
	if (!token_valid(req->params[0])) {
		not_found_page(req);
		return;
	}
	struct checkout_state *s = state_for(req);
	redis_command(gw.redis, got_cached, req, "GET checkout:%s", s->token);
}

/* ---- POST /checkout/{token}: choose a bank ---- */

static void attempt_failed_done(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	message_page(req, 502, "Ngân hàng tạm thời không phản hồi. Vui lòng quay lại và chọn ngân hàng khác.",
		     "The bank is not answering right now. Please go back and choose another bank.");
}

static void fail_attempt(struct http_req *req, const char *code)
{
	struct checkout_state *s = req->state;
	const char *params[2] = {s->attempt_id, code};
	pg_query(gw.db, "fail_attempt", 2, params, cfg.db_timeout_ms, attempt_failed_done, req);
}

static void qr_page(struct http_req *req)
{
	struct checkout_state *s = req->state;
	char *svg = NULL;
	if (adapter_qr_svg(s->start.qr_payload, &svg) != ADAPTER_OK) {
		fail_attempt(req, "qr_failed");
		return;
	}
	char *png = page_qr_png_base64(s->start.qr_payload);
	char amount[48];
	format_vnd(s->payment.amount, amount, sizeof amount);
	const char *bank_name = adapter_bin_bank_name(s->bin);
	const adapter *a = adapter_find(s->bank);
	const char *way = a ? a->display_name : s->bank;
	char again[128], poll[112], heading[160];
	snprintf(again, sizeof again, "/checkout/%s/%s", s->token, s->bank);
	snprintf(poll, sizeof poll, "/checkout/%s/status", s->token);
	struct evbuffer *b = evbuffer_new();
	/* the refresh (no JavaScript needed) reloads this transfer, or the result once it is paid */
	page_begin(b, way, "checkout.js", 15, again);
	snprintf(heading, sizeof heading, "Chuyển khoản %s <span class=\"en\">/ %s bank transfer</span>", way, way);
	evbuffer_add_printf(b, "<div id=\"poll\" data-url=\"%s\"></div>"
			       "<h1>%s</h1>"
			       "<p class=\"amt\" id=\"amount\">%s</p><div id=\"qr\">%s</div>",
			    poll, heading, amount, svg);
	if (png)
		evbuffer_add_printf(b, "<a class=\"btn\" id=\"qr_png\" download=\"%s-%s.png\" href=\"data:image/png;base64,%s\">"
				       "Lưu mã QR (ảnh PNG) <span class=\"en\">/ Save the QR code (PNG)</span></a>",
				    s->bank, s->ref, png);
	evbuffer_add_printf(b, "<table><tr><td>Ngân hàng / Bank</td><td class=\"r\" id=\"bank_name\">");
	html(b, bank_name ? bank_name : s->bin);
	evbuffer_add_printf(b, "</td></tr><tr><td>Tài khoản / Account <button class=\"copy\" data-copy=\"account\">Chép / Copy"
			       "</button></td><td class=\"r\" id=\"account\">");
	html(b, s->account);
	evbuffer_add_printf(b, "</td></tr><tr><td>Chủ tài khoản / Holder</td><td class=\"r\" id=\"holder\">");
	html(b, s->holder);
	evbuffer_add_printf(b, "</td></tr><tr><td>Nội dung / Transfer content <button class=\"copy\" data-copy=\"content\">"
			       "Chép / Copy</button></td><td class=\"r\" id=\"content\">%s</td></tr></table>",
			    s->ref);
	expiry_box(b, (int64_t)s->payment.expires_at * 1000);
	evbuffer_add_printf(b, "<p>Mã QR (sao chép) <span class=\"en\">QR payload (copy)</span> <button class=\"copy\" "
			       "data-copy=\"payload\">Chép / Copy</button></p><textarea id=\"payload\" rows=\"4\" readonly>");
	html(b, s->start.qr_payload);
	evbuffer_add_printf(b, "</textarea><p class=\"en\">Quét mã bằng ứng dụng ngân hàng, hoặc chuyển khoản đúng số tiền với "
			       "nguyên nội dung trên. Trang này tự chuyển sang kết quả khi tiền đến. / Scan with your banking "
			       "app, or transfer the exact amount with the content above. This page moves on by itself once "
			       "the money arrives.</p><a class=\"btn\" id=\"choose\" href=\"/checkout/%s\">Chọn cách thanh toán "
			       "khác <span class=\"en\">/ Choose another way to pay</span></a>",
			    s->token);
	free(svg);
	free(png);
	page_send(req, 200, b);
}

static void call_answered(void *arg, int status, const char *body, size_t len, const char *err)
{
	struct http_req *req = arg;
	struct checkout_state *s = req->state;
	const struct bank *bk = bank_find(s->bank);
	if (!bk) {
		fail_attempt(req, "bank_disabled");
		return;
	}
	adapter_response resp = {.status = status, .body = body, .body_len = len};
	adapter_rc rc = status ? adapter_parse_start_response(bk->adapter, &bk->config, &s->payment, &resp, &s->start)
			       : ADAPTER_UNAVAILABLE;
	breaker_record(s->bank, rc != ADAPTER_UNAVAILABLE && rc != ADAPTER_BAD_SIGNATURE && rc != ADAPTER_MALFORMED);
	if (rc == ADAPTER_OK && s->start.redirect_url) {
		log_info(req->id, "attempt %s at %s started", s->ref, s->bank);
		http_reply_redirect(req, s->start.redirect_url);
		return;
	}
	log_warn(req->id, "bank %s refused to start attempt %s: %s (%s)", s->bank, s->ref, adapter_rc_name(rc),
		 err ? err : s->start.failure_code);
	fail_attempt(req, rc == ADAPTER_DECLINED ? "declined" : "bank_unavailable");
}

static void start_attempt(struct http_req *req, PGresult *res);
static void state_page(struct http_req *req);

/* What an attempt is started from: the last columns of open_attempt and of checkout_transfer
 * (their functions are in migrations/functions/checkout.sql). */
#define ATTEMPT_FIRST_COL 2
struct attempt_row {
	int64_t r_amount;
	const char *r_description;
	int64_t r_created_ms, r_expires_ms;
	const char *r_bin, *r_account, *r_holder; /* the agency's collection account */
};
static const struct pg_col attempt_cols[] = {
	PG_COL(struct attempt_row, r_amount, PG_INT64),
	PG_COL(struct attempt_row, r_description, PG_TEXT),
	PG_COL(struct attempt_row, r_created_ms, PG_INT64),
	PG_COL(struct attempt_row, r_expires_ms, PG_INT64),
	PG_COL(struct attempt_row, r_bin, PG_TEXT),
	PG_COL(struct attempt_row, r_account, PG_TEXT),
	PG_COL(struct attempt_row, r_holder, PG_TEXT),
};

/* open_attempt's first columns */
struct opened_row {
	int r_outcome; /* enum db_outcome */
};
static const struct pg_col opened_cols[] = {PG_COL_WORD(struct opened_row, r_outcome, db_outcomes)};

static void attempt_opened(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct opened_row r;
	if (st == PG_OK && !PG_ROW(res, 0, opened_cols, &r))
		st = PG_SQL_ERROR;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	switch ((enum db_outcome)r.r_outcome) {
	case OUTCOME_OPENED:
		start_attempt(req, res);
		return;
	case OUTCOME_NOT_FOUND:
		not_found_page(req);
		return;
	case OUTCOME_BANK_NOT_ENABLED:
		message_page(req, 400, "Ngân hàng này không nhận thanh toán cho cơ quan này.",
			     "This bank does not take payments for this agency.");
		return;
	default:
		/* paid, cancelled or expired (state_<status>; also when the clock ran out while the
		 * page was open): the order's state page, with its way back to the portal */
		state_page(req);
		return;
	}
}

/* Starts the attempt at its bank from the order's row (attempt_cols). */
static void start_attempt(struct http_req *req, PGresult *res)
{
	struct checkout_state *s = req->state;
	const struct bank *bk = bank_find(s->bank);
	struct attempt_row a;
	if (!PG_ROW_FROM(res, 0, ATTEMPT_FIRST_COL, attempt_cols, &a)) {
		reply_db_failure(req, res, PG_SQL_ERROR);
		return;
	}
	s->description = xstrdup(a.r_description);
	snprintf(s->bin, sizeof s->bin, "%s", a.r_bin);
	snprintf(s->account, sizeof s->account, "%s", a.r_account);
	snprintf(s->holder, sizeof s->holder, "%s", a.r_holder);
	adapter_payment *p = &s->payment;
	p->bank_order_ref = s->ref;
	p->amount = a.r_amount;
	p->description = s->description;
	p->created_at = (time_t)(a.r_created_ms / 1000);
	p->expires_at = (time_t)(a.r_expires_ms / 1000);
	p->account.bin = s->bin;
	p->account.number = s->account;
	p->account.holder = s->holder;
	adapter_rc rc = bk ? adapter_start_payment(bk->adapter, &bk->config, p, &s->start) : ADAPTER_UNSUPPORTED;
	if (rc != ADAPTER_OK) {
		log_error(req->id, "cannot start attempt %s at %s: %s", s->ref, s->bank, adapter_rc_name(rc));
		fail_attempt(req, "start_failed");
		return;
	}
	switch (s->start.kind) {
	case ADAPTER_START_REDIRECT:
		log_info(req->id, "attempt %s at %s started", s->ref, s->bank);
		http_reply_redirect(req, s->start.redirect_url);
		return;
	case ADAPTER_START_QR:
		log_info(req->id, "attempt %s at %s shows a QR code", s->ref, s->bank);
		qr_page(req);
		return;
	case ADAPTER_START_CALL:
		bank_send(&s->start.call, call_answered, req);
		return;
	}
}

/* Attempt references: 12 characters of [A-Z0-9], "FG" and 10 random; see notify.c. */
void checkout_new_ref(char out[CHECKOUT_REF_LEN + 1])
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	unsigned char rnd[CHECKOUT_REF_LEN - 2];
	util_random(rnd, sizeof rnd);
	out[0] = 'F';
	out[1] = 'G';
	for (int i = 0; i < CHECKOUT_REF_LEN - 2; i++)
		out[2 + i] = alphabet[rnd[i] % 36];
	out[CHECKOUT_REF_LEN] = '\0';
}

static void open_new_attempt(struct http_req *req)
{
	struct checkout_state *s = req->state;
	util_uuid7(s->attempt_id);
	checkout_new_ref(s->ref);
	const char *params[4] = {s->token, s->bank, s->attempt_id, s->ref};
	pg_query(gw.db, "open_attempt", 4, params, cfg.db_timeout_ms, attempt_opened, req);
}

/* checkout_transfer's first columns; then attempt_cols */
struct transfer_row {
	const char *r_attempt, *r_ref;
};
static const struct pg_col transfer_cols[] = {
	PG_COL(struct transfer_row, r_attempt, PG_TEXT),
	PG_COL(struct transfer_row, r_ref, PG_TEXT),
};

static void got_transfer(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct checkout_state *s = req->state;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	bool chosen = req->method == EVHTTP_REQ_POST;
	if (PQntuples(res) != 1) {
		if (chosen) {
			open_new_attempt(req);
		} else {
			char *loc = xasprintf("/checkout/%s", s->token);
			http_reply_redirect(req, loc);
			free(loc);
		}
		return;
	}
	/* the same transfer content as before: the citizen may already have typed it */
	struct transfer_row v;
	if (!PG_ROW(res, 0, transfer_cols, &v)) {
		reply_db_failure(req, res, PG_SQL_ERROR);
		return;
	}
	snprintf(s->attempt_id, sizeof s->attempt_id, "%s", v.r_attempt);
	snprintf(s->ref, sizeof s->ref, "%s", v.r_ref);
	start_attempt(req, res);
}

static void got_state(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		not_found_page(req);
		return;
	}
	render(req, res);
}

static void state_page(struct http_req *req)
{
	struct checkout_state *s = req->state;
	s->refused = 409;
	const char *params[1] = {s->token};
	pg_query(gw.db, "checkout_get", 1, params, cfg.db_timeout_ms, got_state, req);
}

void checkout_choose(struct http_req *req)
{
	if (!token_valid(req->params[0])) {
		not_found_page(req);
		return;
	}
	char *form = xstrndup(req->body, req->body_len);
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	const char *bank = NULL;
	if (evhttp_parse_query_str(form, &q) == 0)
		bank = evhttp_find_header(&q, "bank");
	const struct bank *bk = bank ? bank_find(bank) : NULL;
	if (!bk) {
		evhttp_clear_headers(&q);
		free(form);
		message_page(req, 400, "Vui lòng chọn một ngân hàng trong danh sách.", "Please choose a bank from the list.");
		return;
	}
	struct checkout_state *s = state_for(req);
	snprintf(s->bank, sizeof s->bank, "%s", bk->adapter->name);
	evhttp_clear_headers(&q);
	free(form);
	if (breaker_is_open(s->bank)) {
		message_page(req, 503, "Ngân hàng này tạm thời không phản hồi. Vui lòng chọn ngân hàng khác.",
			     "This bank is not answering right now. Please choose another.");
		return;
	}
	if (bk->adapter->transfer) {
		const char *params[1] = {s->token};
		pg_query(gw.db, "checkout_transfer", 1, params, cfg.db_timeout_ms, got_transfer, req);
		return;
	}
	open_new_attempt(req);
}

/* ---- GET /checkout/{token}/{transfer bank}: the open transfer again (the QR page's refresh) ---- */

void checkout_transfer_again(struct http_req *req)
{
	const adapter *a = adapter_transfer();
	if (!token_valid(req->params[0]) || !a) {
		not_found_page(req);
		return;
	}
	struct checkout_state *s = state_for(req);
	snprintf(s->bank, sizeof s->bank, "%s", a->name);
	const char *params[1] = {s->token};
	pg_query(gw.db, "checkout_transfer", 1, params, cfg.db_timeout_ms, got_transfer, req);
}

/* ---- GET /checkout/{token}/status: the QR page's light poll ---- */

/* checkout_status */
struct status_row {
	const char *status;
};
static const struct pg_col status_cols[] = {PG_COL(struct status_row, status, PG_TEXT)};

static void got_status(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct checkout_state *s = req->state;
	struct status_row r;
	if (st == PG_OK && PQntuples(res) == 1 && !PG_ROW(res, 0, status_cols, &r))
		st = PG_SQL_ERROR;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, NULL);
		return;
	}
	char *next = xasprintf("/checkout/%s", s->token);
	http_reply_json(req, 200, json_pack("{s:s, s:s}", "status", r.status, "next", next));
	free(next);
}

void checkout_status(struct http_req *req)
{
	if (!token_valid(req->params[0])) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, NULL);
		return;
	}
	struct checkout_state *s = state_for(req);
	const char *params[1] = {s->token};
	pg_query(gw.db, "checkout_status", 1, params, cfg.db_timeout_ms, got_status, req);
}
