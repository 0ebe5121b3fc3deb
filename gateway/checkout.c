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

#include "gateway/banks.h"
#include "gateway/gateway.h"
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

static void html(struct evbuffer *b, const char *s)
{
	char *e = evhttp_htmlescape(s ? s : "");
	evbuffer_add(b, e, strlen(e));
	free(e);
}

static void page_head(struct evbuffer *b, const char *title)
{
	evbuffer_add_printf(b, "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
			       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
			       "<title>");
	html(b, title);
	evbuffer_add_printf(
		b, "</title><style>"
		   "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:30rem;margin:0 auto;"
		   "padding:1rem;color:#1b1b1b;background:#f6f7f9}main{background:#fff;border-radius:12px;padding:1.25rem;"
		   "box-shadow:0 1px 4px rgba(0,0,0,.08)}h1{font-size:1.15rem;margin:0 0 .25rem}"
		   ".amt{font-size:2rem;font-weight:700;margin:.75rem 0;color:#b3261e}table{width:100%%;border-collapse:collapse;"
		   "margin:.5rem 0}td{padding:.35rem 0;border-bottom:1px solid #eee}td.r{text-align:right;white-space:nowrap}"
		   ".en{color:#666;font-size:.85em}button{display:block;width:100%%;padding:.9rem;margin:.5rem 0;font-size:1rem;"
		   "border:1px solid #c9ced6;border-radius:8px;background:#fff;cursor:pointer}button:hover{background:#eef3ff}"
		   ".msg{padding:.75rem;border-radius:8px;background:#fff4e5}.ok{background:#e7f6ec}"
		   "textarea{width:100%%;font-family:monospace;font-size:.8rem}svg{width:100%%;max-width:18rem;height:auto;"
		   "display:block;margin:0 auto}</style></head><body><main>");
}

static void page_send(struct http_req *req, int status, struct evbuffer *b)
{
	evbuffer_add_printf(b, "</main></body></html>");
	size_t len = evbuffer_get_length(b);
	http_reply_raw(req, status, "text/html; charset=utf-8", (const char *)evbuffer_pullup(b, -1), len);
	evbuffer_free(b);
}

static void message_page(struct http_req *req, int status, const char *vi, const char *en)
{
	struct evbuffer *b = evbuffer_new();
	page_head(b, "Thanh toán lệ phí / Fee payment");
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
enum { CK_ID, CK_AGENCY_CODE, CK_AGENCY_NAME, CK_DESCRIPTION, CK_AMOUNT, CK_ITEMS, CK_STATUS, CK_EXPIRES_MS, CK_BANKS };

static bool bank_listed(const char *banks, const char *name)
{
	/* "{vnpay,momo,vietqr}" */
	size_t n = strlen(name);
	for (const char *p = banks; (p = strstr(p, name)) != NULL; p += n) {
		if ((p == banks || p[-1] == '{' || p[-1] == ',') && (p[n] == ',' || p[n] == '}'))
			return true;
	}
	return false;
}

static void render(struct http_req *req, PGresult *res)
{
	const char *status = PQgetvalue(res, 0, CK_STATUS);
	int64_t expires_ms = strtoll(PQgetvalue(res, 0, CK_EXPIRES_MS), NULL, 10);
	char amount[48];
	format_vnd(strtoll(PQgetvalue(res, 0, CK_AMOUNT), NULL, 10), amount, sizeof amount);
	struct evbuffer *b = evbuffer_new();
	page_head(b, "Thanh toán lệ phí / Fee payment");
	evbuffer_add_printf(b, "<h1 id=\"agency\">");
	html(b, PQgetvalue(res, 0, CK_AGENCY_NAME));
	evbuffer_add_printf(b, "</h1><p id=\"description\">");
	html(b, PQgetvalue(res, 0, CK_DESCRIPTION));
	evbuffer_add_printf(b, "</p>");
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
	evbuffer_add_printf(b, "<p class=\"amt\" id=\"amount\">%s</p>", amount);

	bool open = (strcmp(status, "created") == 0 || strcmp(status, "pending") == 0) && expires_ms > util_db_now_ms();
	if (!open) {
		const char *vi = "Đơn này không còn thanh toán được.", *en = "This order can no longer be paid.";
		if (strcmp(status, "succeeded") == 0 || strstr(status, "refunded")) {
			vi = "Đã thanh toán. Cảm ơn bạn.";
			en = "Paid. Thank you.";
		} else if (strcmp(status, "cancelled") == 0) {
			vi = "Đơn đã bị hủy.";
			en = "This order was cancelled.";
		} else {
			vi = "Đơn đã hết hạn thanh toán.";
			en = "This order has expired.";
		}
		evbuffer_add_printf(b, "<p class=\"msg%s\" id=\"status\" data-status=\"%s\">", strcmp(status, "succeeded") ? "" : " ok",
				    status);
		html(b, vi);
		evbuffer_add_printf(b, "<br><span class=\"en\">");
		html(b, en);
		evbuffer_add_printf(b, "</span></p>");
		page_send(req, 200, b);
		return;
	}
	evbuffer_add_printf(b, "<p>Chọn ngân hàng hoặc ví để thanh toán<br><span class=\"en\">Choose a bank or wallet"
			       "</span></p><form method=\"post\" id=\"banks\">");
	const char *banks = PQgetvalue(res, 0, CK_BANKS);
	int shown = 0;
	for (size_t i = 0; i < bank_count(); i++) {
		const struct bank *bk = bank_at(i);
		if (!bk->enabled || !bank_listed(banks, bk->adapter->name) || breaker_is_open(bk->adapter->name))
			continue;
		evbuffer_add_printf(b, "<button type=\"submit\" name=\"bank\" value=\"%s\">", bk->adapter->name);
		html(b, bk->adapter->display_name);
		evbuffer_add_printf(b, "</button>");
		shown++;
	}
	evbuffer_add_printf(b, "</form>");
	if (!shown)
		evbuffer_add_printf(b, "<p class=\"msg\">Hiện chưa có ngân hàng nào sẵn sàng, vui lòng thử lại sau."
				       "<br><span class=\"en\">No bank is available right now; please try again later."
				       "</span></p>");
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
	char amount[48];
	format_vnd(s->payment.amount, amount, sizeof amount);
	struct evbuffer *b = evbuffer_new();
	page_head(b, "VietQR");
	evbuffer_add_printf(b, "<h1>Chuyển khoản VietQR <span class=\"en\">/ VietQR bank transfer</span></h1>"
			       "<p class=\"amt\" id=\"amount\">%s</p><div id=\"qr\">%s</div>"
			       "<table><tr><td>Tài khoản / Account</td><td class=\"r\" id=\"account\">",
			    amount, svg);
	html(b, s->account);
	evbuffer_add_printf(b, "</td></tr><tr><td>Chủ tài khoản / Holder</td><td class=\"r\">");
	html(b, s->holder);
	evbuffer_add_printf(b, "</td></tr><tr><td>Nội dung / Transfer content</td><td class=\"r\" id=\"content\">%s"
			       "</td></tr></table><p>Mã QR (sao chép) <span class=\"en\">QR payload (copy)</span></p>"
			       "<textarea id=\"payload\" rows=\"4\" readonly>",
			    s->ref);
	html(b, s->start.qr_payload);
	evbuffer_add_printf(b, "</textarea><p class=\"en\">Quét mã bằng ứng dụng ngân hàng; giữ nguyên nội dung chuyển "
			       "khoản. / Scan with your banking app and keep the transfer content as it is.</p>");
	free(svg);
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

static void attempt_opened(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct checkout_state *s = req->state;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	const char *outcome = PQgetvalue(res, 0, 0);
	if (strcmp(outcome, "not_found") == 0) {
		not_found_page(req);
		return;
	}
	if (strcmp(outcome, "bank_not_enabled") == 0) {
		message_page(req, 400, "Ngân hàng này không nhận thanh toán cho cơ quan này.",
			     "This bank does not take payments for this agency.");
		return;
	}
	if (strcmp(outcome, "opened") != 0) {
		message_page(req, 409, "Đơn này không còn thanh toán được.", "This order can no longer be paid.");
		return;
	}
	const struct bank *bk = bank_find(s->bank);
	s->description = xstrdup(PQgetvalue(res, 0, 3));
	snprintf(s->bin, sizeof s->bin, "%s", PQgetvalue(res, 0, 6));
	snprintf(s->account, sizeof s->account, "%s", PQgetvalue(res, 0, 7));
	snprintf(s->holder, sizeof s->holder, "%s", PQgetvalue(res, 0, 8));
	adapter_payment *p = &s->payment;
	p->bank_order_ref = s->ref;
	p->amount = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	p->description = s->description;
	p->created_at = (time_t)(strtoll(PQgetvalue(res, 0, 4), NULL, 10) / 1000);
	p->expires_at = (time_t)(strtoll(PQgetvalue(res, 0, 5), NULL, 10) / 1000);
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
void checkout_new_ref(char out[13])
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	unsigned char rnd[10];
	util_random(rnd, sizeof rnd);
	out[0] = 'F';
	out[1] = 'G';
	for (int i = 0; i < 10; i++)
		out[2 + i] = alphabet[rnd[i] % 36];
	out[12] = '\0';
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
	util_uuid7(s->attempt_id);
	checkout_new_ref(s->ref);
	const char *params[4] = {s->token, s->bank, s->attempt_id, s->ref};
	pg_query(gw.db, "open_attempt", 4, params, cfg.db_timeout_ms, attempt_opened, req);
}
