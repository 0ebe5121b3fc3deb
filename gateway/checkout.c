/*
 * The citizen's checkout page, reached by the unguessable token in checkout_url. Redis maps
 * token -> order id (a cache); PostgreSQL holds the token too, so a flushed or restarted Redis
 * never breaks a link.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"

struct checkout_state {
	char token[64];
};

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

/* 200000 -> "200.000 ₫" */
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

static void html_escape(struct evbuffer *b, const char *s)
{
	char *e = evhttp_htmlescape(s);
	evbuffer_add(b, e, strlen(e));
	free(e);
}

static void not_found_page(struct http_req *req)
{
	static const char page[] =
		"<!doctype html><html lang=\"vi\"><meta charset=\"utf-8\"><title>Không tìm thấy</title>"
		"<p>Liên kết thanh toán không tồn tại hoặc đã hết hạn. / This payment link does not exist.</p></html>";
	http_reply_raw(req, 404, "text/html; charset=utf-8", page, sizeof page - 1);
}

static void render(struct http_req *req, PGresult *res)
{
	const char *status = PQgetvalue(res, 0, 6);
	char amount[48];
	format_vnd(strtoll(PQgetvalue(res, 0, 4), NULL, 10), amount, sizeof amount);
	struct evbuffer *b = evbuffer_new();
	evbuffer_add_printf(b, "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
			       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
			       "<title>Thanh toán lệ phí / Fee payment</title><style>"
			       "body{font-family:system-ui,sans-serif;max-width:32rem;margin:1rem auto;padding:0 1rem;color:#1a1a1a}"
			       ".amt{font-size:2rem;font-weight:700;margin:.5rem 0}table{width:100%%;border-collapse:collapse}"
			       "td{padding:.25rem 0;border-bottom:1px solid #eee}td.r{text-align:right}"
			       ".en{color:#666;font-size:.9em}</style></head><body><h1>");
	html_escape(b, PQgetvalue(res, 0, 2));
	evbuffer_add_printf(b, "</h1><p>");
	html_escape(b, PQgetvalue(res, 0, 3));
	evbuffer_add_printf(b, "</p><p class=\"amt\" id=\"amount\">%s</p>", amount);
	json_t *items = PQgetisnull(res, 0, 5) ? NULL : json_loads(PQgetvalue(res, 0, 5), 0, NULL);
	if (json_is_array(items) && json_array_size(items)) {
		evbuffer_add_printf(b, "<table>");
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it)
		{
			char a[48];
			format_vnd(json_integer_value(json_object_get(it, "amount")), a, sizeof a);
			evbuffer_add_printf(b, "<tr><td>");
			html_escape(b, json_string_value(json_object_get(it, "name")));
			evbuffer_add_printf(b, "</td><td class=\"r\">%s</td></tr>", a);
		}
		evbuffer_add_printf(b, "</table>");
	}
	json_decref(items);
	evbuffer_add_printf(b, "<p>Trạng thái / Status: <strong id=\"status\">");
	html_escape(b, status);
	evbuffer_add_printf(b, "</strong></p><p>Ngân hàng / Banks: ");
	html_escape(b, PQgetvalue(res, 0, 8));
	evbuffer_add_printf(b, "</p></body></html>");
	size_t len = evbuffer_get_length(b);
	http_reply_raw(req, 200, "text/html; charset=utf-8", (const char *)evbuffer_pullup(b, -1), len);
	evbuffer_free(b);
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
	int64_t expires_ms = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
	int ttl = (int)((expires_ms - util_now_ms()) / 1000);
	if (ttl > 0)
		redis_command(gw.redis, NULL, NULL, "SET checkout:%s %s EX %d", s->token, PQgetvalue(res, 0, 0), ttl);
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

void checkout_page(struct http_req *req)
{
	if (!token_valid(req->params[0])) {
		not_found_page(req);
		return;
	}
	struct checkout_state *s = xcalloc(1, sizeof *s);
	snprintf(s->token, sizeof s->token, "%s", req->params[0]);
	req->state = s;
	req->state_free = free;
	redis_command(gw.redis, got_cached, req, "GET checkout:%s", s->token);
}
