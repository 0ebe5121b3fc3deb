/*
 * The console's shared pieces: the request context, the gate, the layout and stylesheet, and
 * the helpers pages are written with (see console_ui.h). The Content-Security-Policy forbids
 * every script and inline style, so everything a page looks like is in the stylesheet below.
 */
#include "gateway/console_ui.h"

#include "adapters/adapter.h"
#include "gateway/console.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/mem.h"

#define CSP "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; " \
	    "frame-ancestors 'none'; base-uri 'none'"

/* ---- the request context ---- */

static void cctx_free(void *p)
{
	struct cctx *c = p;
	if (c->has_form)
		evhttp_clear_headers(&c->form);
	if (c->has_q)
		query_free(&c->q);
	if (c->password) {
		OPENSSL_cleanse(c->password, strlen(c->password));
		free(c->password);
	}
	if (c->p)
		auth_release(c->p);
	if (c->own_free)
		c->own_free(c->own);
	OPENSSL_cleanse(c, sizeof *c);
	free(c);
}

struct cctx *cctx_of(struct http_req *req)
{
	if (!req->state) {
		struct cctx *c = xcalloc(1, sizeof *c);
		TAILQ_INIT(&c->form);
		req->state = c;
		req->state_free = cctx_free;
	}
	return req->state;
}

bool ui_parse_form(struct http_req *req, struct cctx *c)
{
	char *body = xstrndup(req->body ? req->body : "", req->body_len);
	bool ok = evhttp_parse_query_str(body, &c->form) == 0;
	free(body);
	c->has_form = true;
	return ok;
}

const char *ui_form(struct cctx *c, const char *name)
{
	return c->has_form ? evhttp_find_header(&c->form, name) : NULL;
}

bool ui_query(struct http_req *req, struct cctx *c, const struct query_field *fields, int n)
{
	/* a GET form sends its empty fields too ("from=&to="): they mean "not given" */
	struct evbuffer *kept = evbuffer_new();
	const char *raw = req->query ? req->query : "";
	for (const char *p = raw; *p;) {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		if (len && !(eq && eq == p + len - 1))
			evbuffer_add_printf(kept, "%s%.*s", evbuffer_get_length(kept) ? "&" : "", (int)len, p);
		p += len;
		if (*p == '&')
			p++;
	}
	evbuffer_add(kept, "", 1);
	const char *field = NULL;
	const char *err = query_check((const char *)evbuffer_pullup(kept, -1), fields, n, &c->q, &field);
	evbuffer_free(kept);
	c->has_q = true;
	if (err) {
		char *msg = xasprintf("Tham số %s không hợp lệ (%s). Hãy sửa bộ lọc rồi thử lại.", field ? field : "", err);
		ui_message(req, 400, "Tham số không hợp lệ", msg);
		free(msg);
		return false;
	}
	return true;
}

/* ---- text ---- */

void ui_esc(struct evbuffer *b, const char *s)
{
	char *e = evhttp_htmlescape(s ? s : "");
	evbuffer_add(b, e, strlen(e));
	free(e);
}

void ui_vnd(struct evbuffer *b, int64_t amount)
{
	char a[48];
	format_vnd(amount, a, sizeof a);
	evbuffer_add_printf(b, "%s", a);
}

/* Asia/Ho_Chi_Minh is UTC+7 all year (no daylight saving since 1975). */
#define VN_OFFSET_S (7 * 3600)

void ui_time(const char *iso, char out[24])
{
	struct tm tm = {0};
	int n = 0;
	out[0] = '\0';
	if (!iso || sscanf(iso, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			   &tm.tm_min, &tm.tm_sec, &n) != 6)
		return;
	/* UTC unless an offset follows (PostgreSQL's JSON writes timestamptz in the session's zone) */
	const char *z = iso + n + strspn(iso + n, ".0123456789");
	long offset = 0;
	int oh = 0, om = 0;
	if ((*z == '+' || *z == '-') && sscanf(z + 1, "%2d:%2d", &oh, &om) >= 1)
		offset = (*z == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm) - offset + VN_OFFSET_S;
	gmtime_r(&t, &tm);
	strftime(out, 24, "%d/%m/%Y %H:%M:%S", &tm);
}

const char *ui_jstr(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

void ui_day(const char *iso, char out[11])
{
	int y, m, d;
	if (iso && strlen(iso) == 10 && sscanf(iso, "%4d-%2d-%2d", &y, &m, &d) == 3)
		snprintf(out, 11, "%02d/%02d/%04d", d, m, y);
	else
		snprintf(out, 11, "%s", iso ? iso : "");
}

const char *ui_bank(const char *code)
{
	static const struct ui_word names[] = {{"treasury", "Kho bạc (sao kê)"}};
	const adapter *a = adapter_find(code);
	return a ? a->display_name : UI_WORD(names, code);
}

void ui_today(char out[11])
{
	time_t now = time(NULL) + VN_OFFSET_S;
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

const char *ui_word(const struct ui_word *words, size_t n, const char *key)
{
	for (size_t i = 0; key && i < n; i++)
		if (strcmp(key, words[i].key) == 0)
			return words[i].label;
	return key ? key : "";
}

const struct ui_word ui_roles[4] = {
	{"agency", "Cán bộ đơn vị"}, {"finance", "Tài chính"}, {"admin", "Quản trị"}, {"auditor", "Kiểm toán"}};

const struct ui_word ui_statuses[10] = {
	{"created", "Mới tạo"},	      {"pending", "Chờ thanh toán"},	   {"succeeded", "Đã thanh toán"},
	{"cancelled", "Đã hủy"},      {"expired", "Hết hạn"},		   {"partially_refunded", "Hoàn một phần"},
	{"refunded", "Đã hoàn tiền"}, {"failed", "Thất bại"},		   {"ok", "Thành công"},
	{"denied", "Bị từ chối"}};

size_t ui_bank_choices(struct ui_word *out, size_t cap)
{
	size_t n = 0;
	for (; n < adapter_count() && n < cap; n++)
		out[n] = (struct ui_word){adapter_at(n)->name, adapter_at(n)->display_name};
	return n;
}

/* ---- the layout ---- */

/* The navigation, one row per page: shown to the roles whose permission it names. */
static const struct nav {
	const char *href, *label;
	enum perm perm;
} nav[] = {
	{"/console/", "Tổng quan", PERM_VIEW},
	{"/console/orders", "Giao dịch", PERM_VIEW},
	{"/console/cases", "Xử lý sai lệch", PERM_VIEW},
	{"/console/statements", "Sao kê ngân hàng", PERM_VIEW},
	{"/console/reports/settlement", "Báo cáo quyết toán", PERM_VIEW},
	{"/console/refunds", "Hoàn tiền", PERM_REFUND},
	{"/console/staff", "Cán bộ và token", PERM_STAFF},
	{"/console/audit", "Nhật ký kiểm toán", PERM_AUDIT},
};

void ui_page_start(struct evbuffer *b, struct cctx *c, const char *title, const char *here)
{
	evbuffer_add_printf(b, "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
			       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
	ui_esc(b, title);
	evbuffer_add_printf(b, " · Cổng thanh toán lệ phí</title>"
			       "<link rel=\"stylesheet\" href=\"/console/static/console.css\"></head><body>"
			       "<a class=\"skip\" href=\"#main\">Bỏ qua, tới nội dung chính</a>"
			       "<header class=\"top\"><div class=\"brand\"><span class=\"emblem\" aria-hidden=\"true\">★</span>"
			       "<span>Cổng thanh toán lệ phí<small>Bảng điều khiển cán bộ</small></span></div>");
	if (c && c->signed_in) {
		evbuffer_add_printf(b, "<div class=\"who\"><span>");
		ui_esc(b, c->s.name[0] ? c->s.name : c->s.email);
		evbuffer_add_printf(b, " · %s</span> <a href=\"/console/password\">Đổi mật khẩu</a>"
				       "<form method=\"post\" action=\"/console/logout\" class=\"inline\">",
				    UI_WORD(ui_roles, c->s.role));
		ui_csrf_field(b, c->s.csrf);
		evbuffer_add_printf(b, "<button type=\"submit\" class=\"link\">Đăng xuất</button></form></div>");
	}
	evbuffer_add_printf(b, "</header>");
	if (c && c->signed_in && !c->s.must_enrol) {
		evbuffer_add_printf(b, "<nav aria-label=\"Chức năng\"><ul>");
		for (size_t i = 0; i < ARRAY_LEN(nav); i++) {
			if (!auth_can(c->p, nav[i].perm))
				continue;
			bool cur = here && strcmp(here, nav[i].href) == 0;
			evbuffer_add_printf(b, "<li><a href=\"%s\"%s>%s</a></li>", nav[i].href,
					    cur ? " aria-current=\"page\"" : "", nav[i].label);
		}
		evbuffer_add_printf(b, "</ul></nav>");
	}
	evbuffer_add_printf(b, "<main id=\"main\"><h1>");
	ui_esc(b, title);
	evbuffer_add_printf(b, "</h1>");
}

void ui_page_send(struct http_req *req, int status, struct evbuffer *b)
{
	evbuffer_add_printf(b, "</main><footer>Thời gian hiển thị theo giờ Việt Nam (Asia/Ho_Chi_Minh, UTC+7). "
			       "Số tiền tính bằng đồng Việt Nam (₫).</footer></body></html>");
	http_add_header(req, "Content-Security-Policy", CSP);
	http_add_header(req, "Cache-Control", "no-store");
	size_t len = evbuffer_get_length(b);
	http_reply_raw(req, status, "text/html; charset=utf-8", (const char *)evbuffer_pullup(b, -1), len);
	evbuffer_free(b);
}

void ui_fail(struct cctx *c, int status, const char *alert, const char *detail)
{
	c->alert = alert;
	c->status = status;
	snprintf(c->alert_detail, sizeof c->alert_detail, "%s", detail ? detail : "");
}

void ui_alert(struct evbuffer *b, const struct cctx *c, const struct ui_word *done, size_t n)
{
	if (c->alert) {
		evbuffer_add_printf(b, "<div class=\"error\" role=\"alert\" id=\"alert\"><p><b>%s</b></p>", c->alert);
		if (c->alert_detail[0]) {
			evbuffer_add_printf(b, "<p>");
			ui_esc(b, c->alert_detail);
			evbuffer_add_printf(b, "</p>");
		}
		evbuffer_add_printf(b, "</div>");
		return;
	}
	const char *word = c->has_q ? query_get(&c->q, "done") : NULL;
	if (word)
		evbuffer_add_printf(b, "<p class=\"success\" role=\"status\" id=\"done\">%s</p>", ui_word(done, n, word));
}

/* A page of one message; c NULL: without the session's header and navigation. */
static void message_page(struct http_req *req, struct cctx *c, int status, const char *title, const char *msg)
{
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, title, NULL);
	evbuffer_add_printf(b, "<p class=\"notice\" role=\"alert\">");
	ui_esc(b, msg);
	evbuffer_add_printf(b, "</p><p><a href=\"/console/\">Về trang tổng quan</a></p>");
	ui_page_send(req, status, b);
}

void ui_message(struct http_req *req, int status, const char *title, const char *msg)
{
	message_page(req, req->state, status, title, msg);
}

void ui_plain_message(struct http_req *req, int status, const char *title, const char *msg)
{
	message_page(req, NULL, status, title, msg);
}

void ui_not_found(struct http_req *req)
{
	ui_message(req, 404, "Không tìm thấy", "Không có trang hoặc hồ sơ này, hoặc bạn không được xem nó.");
}

void ui_db_failed(struct http_req *req, PGresult *res, enum pg_status st)
{
	if (st == PG_SQL_ERROR)
		log_error(req->id, "console query failed: %s", PQresultErrorMessage(res));
	ui_message(req, 503, "Tạm thời gián đoạn", "Cơ sở dữ liệu chưa trả lời. Vui lòng thử lại sau ít phút.");
}

void ui_export_refused(struct http_req *req, enum err code, const char *field, const char *message)
{
	if (code == ERR_NOT_FOUND)
		ui_plain_message(req, 404, "Không tìm thấy", "Không có đơn vị này, hoặc bạn không được xem nó.");
	else
		ui_plain_message(req, 503, "Chưa tải được tệp",
				 "Hệ thống đang bận hoặc chưa ghi được nhật ký kiểm toán. Vui lòng thử lại sau ít phút.");
}

struct cctx *ui_result(struct http_req *req, PGresult *res, enum pg_status st)
{
	if (st == PG_OK)
		return req->state;
	ui_db_failed(req, res, st);
	return NULL;
}

const char *ui_fetch_limit(const struct cctx *c, char buf[16])
{
	snprintf(buf, 16, "%d", (int)query_num(&c->q, "limit") + 1);
	return buf;
}

bool ui_uuid_cursor(struct http_req *req, const struct cctx *c, const char **cursor)
{
	*cursor = query_get(&c->q, "cursor");
	if (!*cursor || util_uuid_valid(*cursor))
		return true;
	ui_message(req, 400, "Tham số không hợp lệ", "Con trỏ trang không hợp lệ.");
	return false;
}

struct cctx *ui_result_one(struct http_req *req, PGresult *res, enum pg_status st)
{
	struct cctx *c = ui_result(req, res, st);
	if (c && PQntuples(res) != 1) {
		ui_not_found(req);
		return NULL;
	}
	return c;
}

struct cctx *ui_result_row(struct http_req *req, PGresult *res, enum pg_status st, bool one, const struct pg_col *cols,
			   size_t n, void *out)
{
	struct cctx *c = one ? ui_result_one(req, res, st) : ui_result(req, res, st);
	if (c && !pg_row(res, 0, cols, n, out)) {
		ui_db_failed(req, res, PG_SQL_ERROR);
		return NULL;
	}
	return c;
}

int ui_page_rows(const struct cctx *c, int n, bool *more)
{
	int limit = (int)query_num(&c->q, "limit");
	*more = n > limit;
	return *more ? limit : n;
}

void ui_done(struct http_req *req, const char *path, const char *word)
{
	char *to = xasprintf("%s?done=%s", path, word);
	http_reply_redirect(req, to);
	free(to);
}

/* ---- the gate ---- */

bool ui_csrf_ok(const struct cctx *c, const char *token)
{
	size_t n = strlen(c->s.csrf);
	return token && n && strlen(token) == n && CRYPTO_memcmp(token, c->s.csrf, n) == 0;
}

void ui_gate_run(struct http_req *req, struct session *s, const struct ui_gate *g)
{
	struct cctx *c = cctx_of(req);
	bool post = g->flags & (UI_POST | UI_STREAM);
	if (!s) {
		if (post) {
			ui_message(req, 403, "Phiên đã hết hạn", "Phiên làm việc đã kết thúc. Vui lòng đăng nhập lại.");
			return;
		}
		http_reply_redirect(req, "/console/login");
		return;
	}
	c->s = *s;
	c->signed_in = true;
	c->p = auth_staff_principal(s->staff_id, s->role, s->email, s->agencies);
	auth_attach(req, c->p);
	if ((g->flags & UI_POST) && !ui_csrf_ok(c, ui_form(c, "csrf"))) {
		log_info(req->id, "console POST without its CSRF token refused");
		ui_message(req, 403, "Yêu cầu bị từ chối", "Biểu mẫu thiếu mã chống giả mạo (CSRF). Hãy tải lại trang và thử lại.");
		return;
	}
	if (s->must_enrol && !(g->flags & UI_ENROL)) {
		http_reply_redirect(req, "/console/totp");
		return;
	}
	if (g->perm != UI_ANYONE && !auth_can(c->p, (enum perm)g->perm)) {
		ui_message(req, 403, "Không có quyền", "Vai trò của bạn không được dùng chức năng này.");
		return;
	}
	g->page(req, c);
}

/* ---- forms ---- */

void ui_csrf_field(struct evbuffer *b, const char *csrf)
{
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
	ui_esc(b, csrf);
	evbuffer_add_printf(b, "\">");
}

void ui_text_field(struct evbuffer *b, const char *name, const char *label, const char *type, const char *cur)
{
	evbuffer_add_printf(b, "<div><label for=\"%s\">%s</label><input id=\"%s\" name=\"%s\" type=\"%s\" value=\"", name,
			    label, name, name, type);
	ui_esc(b, cur ? cur : "");
	evbuffer_add_printf(b, "\"></div>");
}

void ui_select(struct evbuffer *b, const char *name, const char *label, const struct ui_word *opts, size_t n,
	       const char *cur, const char *all_label)
{
	evbuffer_add_printf(b, "<div><label for=\"%s\">%s</label><select id=\"%s\" name=\"%s\">", name, label, name, name);
	if (all_label)
		evbuffer_add_printf(b, "<option value=\"\">%s</option>", all_label);
	for (size_t i = 0; i < n; i++) {
		evbuffer_add_printf(b, "<option value=\"");
		ui_esc(b, opts[i].key);
		evbuffer_add_printf(b, "\"%s>", cur && strcmp(cur, opts[i].key) == 0 ? " selected" : "");
		ui_esc(b, opts[i].label);
		evbuffer_add_printf(b, "</option>");
	}
	evbuffer_add_printf(b, "</select></div>");
}

void ui_filters_start(struct evbuffer *b, const char *action)
{
	evbuffer_add_printf(b, "<form method=\"get\" action=\"%s\" class=\"card\" role=\"search\"><div class=\"filters\">",
			    action);
}

void ui_filters_end(struct evbuffer *b, const char *button, const char *hint)
{
	evbuffer_add_printf(b, "</div><button type=\"submit\">%s</button>", button);
	if (hint)
		evbuffer_add_printf(b, " <span class=\"hint\">%s</span>", hint);
	evbuffer_add_printf(b, "</form>");
}

void ui_button_form(struct evbuffer *b, const struct cctx *c, const char *action, const char *label, const char *aria,
		    bool danger)
{
	evbuffer_add_printf(b, "<form method=\"post\" action=\"%s\" class=\"inline\">", action);
	ui_csrf_field(b, c->s.csrf);
	evbuffer_add_printf(b, "<button type=\"submit\"%s", danger ? " class=\"danger\"" : "");
	if (aria) {
		evbuffer_add_printf(b, " aria-label=\"");
		ui_esc(b, aria);
		evbuffer_add_printf(b, "\"");
	}
	evbuffer_add_printf(b, ">%s</button></form>", label);
}

/* c's query values as name=value&... (URL-encoded), but those named in skip (NULL-ended). */
static void query_values(struct evbuffer *u, const struct cctx *c, const char *const *skip)
{
	for (int i = 0; c->has_q && i < c->q.n; i++) {
		const char *name = c->q.fields[i].name, *v = c->q.value[i];
		bool skipped = false;
		for (const char *const *s = skip; *s; s++)
			skipped = skipped || strcmp(*s, name) == 0;
		if (!v || skipped)
			continue;
		char *e = evhttp_encode_uri(v);
		evbuffer_add_printf(u, "%s=%s&", name, e);
		free(e);
	}
}

void ui_pager(struct evbuffer *b, const struct cctx *c, const char *path, const char *cursor)
{
	struct evbuffer *u = evbuffer_new();
	static const char *const skip[] = {"cursor", "done", NULL};
	query_values(u, c, skip);
	char *e = evhttp_encode_uri(cursor);
	evbuffer_add_printf(u, "cursor=%s", e);
	free(e);
	evbuffer_add(u, "", 1);
	evbuffer_add_printf(b, "<p class=\"pager\"><a class=\"button\" id=\"next-page\" href=\"%s?", path);
	ui_esc(b, (const char *)evbuffer_pullup(u, -1));
	evbuffer_add_printf(b, "\">Trang sau →</a></p>");
	evbuffer_free(u);
}

void ui_link_query(struct evbuffer *b, const struct cctx *c, const char *path, const char *extra)
{
	struct evbuffer *u = evbuffer_new();
	static const char *const skip[] = {"limit", "cursor", "done", NULL};
	query_values(u, c, skip);
	evbuffer_add_printf(u, "%s", extra);
	evbuffer_add(u, "", 1);
	evbuffer_add_printf(b, "%s?", path);
	ui_esc(b, (const char *)evbuffer_pullup(u, -1));
	evbuffer_free(u);
}

/* ---- tables ---- */

void ui_table_start(struct ui_table *t, struct evbuffer *b, const char *id, const char *caption, const char *cols)
{
	memset(t, 0, sizeof *t);
	t->b = b;
	snprintf(t->cols, sizeof t->cols, "%s", cols);
	evbuffer_add_printf(b, "<div class=\"scroll\"><table class=\"stack\"");
	if (id)
		evbuffer_add_printf(b, " id=\"%s\"", id);
	evbuffer_add_printf(b, ">");
	if (caption)
		evbuffer_add_printf(b, "<caption>%s</caption>", caption);
	evbuffer_add_printf(b, "<thead><tr>");
	for (char *save, *col = strtok_r(t->cols, "|", &save); col && t->ncols < UI_TABLE_COLS;
	     col = strtok_r(NULL, "|", &save)) {
		t->num[t->ncols] = *col == '#';
		t->label[t->ncols] = col + (*col == '#');
		evbuffer_add_printf(b, "<th scope=\"col\"%s>%s</th>", t->num[t->ncols] ? " class=\"num\"" : "",
				    t->label[t->ncols]);
		t->ncols++;
	}
	evbuffer_add_printf(b, "</tr></thead><tbody>");
}

void ui_row(struct ui_table *t)
{
	evbuffer_add_printf(t->b, "%s<tr>", t->rows ? "</tr>" : "");
	t->rows++;
	t->col = 0;
}

void ui_total_row(struct ui_table *t)
{
	evbuffer_add_printf(t->b, "%s<tr class=\"sum\">", t->rows ? "</tr>" : "");
	t->rows++;
	t->col = 0;
}

void ui_td_begin(struct ui_table *t)
{
	int i = t->col < t->ncols ? t->col : t->ncols - 1;
	/* the value in one box: on a phone the label and it are the row's two columns */
	evbuffer_add_printf(t->b, "<td data-label=\"%s\"%s><div class=\"v\">", t->label[i],
			    t->num[i] ? " class=\"num\"" : "");
	t->col++;
}

void ui_td_end(struct ui_table *t)
{
	evbuffer_add_printf(t->b, "</div></td>");
}

void ui_td(struct ui_table *t, const char *text)
{
	ui_td_begin(t);
	ui_esc(t->b, text);
	ui_td_end(t);
}

void ui_td_vnd(struct ui_table *t, int64_t amount)
{
	ui_td_begin(t);
	ui_vnd(t->b, amount);
	ui_td_end(t);
}

void ui_td_mono(struct ui_table *t, const char *text)
{
	ui_td_begin(t);
	evbuffer_add_printf(t->b, "<span class=\"mono\">");
	ui_esc(t->b, text);
	evbuffer_add_printf(t->b, "</span>");
	ui_td_end(t);
}

void ui_td_tag(struct ui_table *t, const char *cls, const char *label)
{
	ui_td_begin(t);
	evbuffer_add_printf(t->b, "<span class=\"tag ");
	ui_esc(t->b, cls);
	evbuffer_add_printf(t->b, "\">");
	ui_esc(t->b, label);
	evbuffer_add_printf(t->b, "</span>");
	ui_td_end(t);
}

void ui_td_time(struct ui_table *t, const char *iso)
{
	char at[24];
	ui_time(iso, at);
	ui_td(t, at);
}

void ui_td_int(struct ui_table *t, long long v)
{
	char n[24];
	snprintf(n, sizeof n, "%lld", v);
	ui_td(t, n);
}

void ui_td_agency(struct ui_table *t, const char *name, const char *code)
{
	ui_td_begin(t);
	ui_esc(t->b, name);
	evbuffer_add_printf(t->b, " <span class=\"tag\">");
	ui_esc(t->b, code);
	evbuffer_add_printf(t->b, "</span>");
	ui_td_end(t);
}

static void link_v(struct evbuffer *b, const char *text, const char *href_fmt, va_list ap)
{
	evbuffer_add_printf(b, "<a href=\"");
	evbuffer_add_vprintf(b, href_fmt, ap);
	evbuffer_add_printf(b, "\">");
	ui_esc(b, text);
	evbuffer_add_printf(b, "</a>");
}

void ui_td_link(struct ui_table *t, const char *text, const char *href_fmt, ...)
{
	va_list ap;
	va_start(ap, href_fmt);
	ui_td_begin(t);
	link_v(t->b, text, href_fmt, ap);
	ui_td_end(t);
	va_end(ap);
}

void ui_link(struct evbuffer *b, const char *text, const char *href_fmt, ...)
{
	va_list ap;
	va_start(ap, href_fmt);
	link_v(b, text, href_fmt, ap);
	va_end(ap);
}

void ui_table_end(struct ui_table *t, const char *empty)
{
	if (t->rows)
		evbuffer_add_printf(t->b, "</tr>");
	else
		evbuffer_add_printf(t->b, "<tr><td colspan=\"%d\" class=\"hint\">%s</td></tr>", t->ncols, empty);
	evbuffer_add_printf(t->b, "</tbody></table></div>");
}

void ui_facts_start(struct evbuffer *b, const char *id)
{
	evbuffer_add_printf(b, "<div class=\"card\"><table class=\"facts\"");
	if (id)
		evbuffer_add_printf(b, " id=\"%s\"", id);
	evbuffer_add_printf(b, "><tbody>");
}

void ui_fact_begin(struct evbuffer *b, const char *label)
{
	evbuffer_add_printf(b, "<tr><th scope=\"row\">%s</th><td>", label);
}

void ui_fact_end(struct evbuffer *b)
{
	evbuffer_add_printf(b, "</td></tr>");
}

void ui_fact(struct evbuffer *b, const char *label, const char *value)
{
	ui_fact_begin(b, label);
	ui_esc(b, value);
	ui_fact_end(b);
}

void ui_facts_end(struct evbuffer *b)
{
	evbuffer_add_printf(b, "</tbody></table></div>");
}

/* ---- stylesheet ---- */

static const char css[] =
	":root{--ink:#1b1f24;--muted:#5b6470;--line:#d5dae1;--navy:#12355b;--red:#a4161a;--bg:#f4f6f8;--ok:#1e6b3a}"
	"*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
	"color:var(--ink);background:var(--bg)}"
	".skip{position:absolute;left:-999px}.skip:focus{left:.5rem;top:.5rem;background:#fff;padding:.5rem;z-index:2}"
	"header.top{background:var(--navy);color:#fff;display:flex;flex-wrap:wrap;justify-content:space-between;"
	"align-items:center;gap:.5rem;padding:.6rem 1rem;border-bottom:4px solid var(--red)}"
	".brand{display:flex;align-items:center;gap:.6rem;font-weight:700}.brand small{display:block;font-weight:400;"
	"font-size:.8rem;opacity:.85}.emblem{color:#ffd100;font-size:1.4rem}"
	".who{font-size:.9rem;display:flex;flex-wrap:wrap;gap:.75rem;align-items:center}.who a{color:#fff}"
	"form.inline{display:inline;margin:0}button.link{background:none;border:0;color:#fff;text-decoration:underline;"
	"font:inherit;cursor:pointer;padding:0;margin:0}"
	"nav{background:#fff;border-bottom:1px solid var(--line)}nav ul{list-style:none;margin:0 auto;padding:0 .5rem;"
	"display:flex;flex-wrap:wrap;max-width:72rem}nav a{display:block;padding:.6rem .8rem;color:var(--navy);"
	"text-decoration:none}nav a[aria-current]{border-bottom:3px solid var(--navy);font-weight:700}"
	"main{max-width:72rem;margin:0 auto;padding:1rem}h1{font-size:1.4rem;margin:.5rem 0 1rem;color:var(--navy)}"
	"h2{font-size:1.1rem;margin:1.5rem 0 .5rem}"
	"footer{max-width:72rem;margin:2rem auto;padding:0 1rem;color:var(--muted);font-size:.85rem}"
	".card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:1rem;margin-bottom:1rem}"
	".card h2{margin-top:0}.narrow{max-width:26rem}.stats{display:flex;flex-wrap:wrap;gap:1rem}.stat{flex:1 1 12rem}"
	".stat b{display:block;font-size:1.5rem;color:var(--navy)}"
	".scroll{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:6px;margin-bottom:1rem}"
	"table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.5rem .6rem;border-bottom:1px solid var(--line);"
	"vertical-align:top}th{background:#eef1f5;font-size:.85rem;color:#33404f}td.num,th.num{text-align:right;"
	"white-space:nowrap}caption{text-align:left;padding:.5rem .6rem;font-weight:700}"
	"tr.sum td{font-weight:700;background:#f7f9fb}td form{margin:0}td button{margin-top:0}"
	"table.facts th{width:13rem;background:none;font-size:.9rem}.card table.facts td,.card table.facts th{padding:.35rem .4rem}"
	"label{display:block;font-weight:600;margin:.6rem 0 .2rem}input,select,textarea{font:inherit;padding:.5rem;width:100%;"
	"border:1px solid #8a94a3;border-radius:4px;background:#fff}textarea{min-height:5rem}"
	"input:focus,select:focus,textarea:focus,button:focus,a:focus{outline:3px solid #ffbf47;outline-offset:1px}"
	"fieldset{border:1px solid var(--line);border-radius:4px;margin:.8rem 0;padding:.4rem 1rem .8rem}"
	"legend{font-weight:600;padding:0 .3rem}.choice{display:flex;gap:.6rem;align-items:flex-start;margin:.5rem 0}"
	".choice input{width:auto;margin:.3rem 0 0}.choice label{font-weight:400;margin:0}.choice small{display:block;"
	"color:var(--muted)}"
	".filters{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:0 1rem;align-items:end}"
	"button,.button{display:inline-block;font:inherit;font-weight:600;padding:.55rem 1.1rem;margin-top:.8rem;"
	"border:0;border-radius:4px;background:var(--navy);color:#fff;cursor:pointer;text-decoration:none}"
	".button.secondary{background:#fff;color:var(--navy);border:1px solid var(--navy);padding:.45rem 1rem}"
	"button.danger{background:var(--red)}.hint{color:var(--muted);font-size:.9rem}"
	".actions{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center}.actions .button{margin-top:0}"
	".columns{display:grid;grid-template-columns:repeat(auto-fit,minmax(20rem,1fr));gap:0 1rem}"
	".notice{background:#fff4e5;border-left:5px solid #d97706;padding:.75rem 1rem}"
	".error{background:#fdecea;border-left:5px solid var(--red);padding:.75rem 1rem;margin-bottom:1rem}"
	".error p{margin:.2rem 0}"
	".success{background:#e7f4ec;border-left:5px solid var(--ok);padding:.75rem 1rem}"
	".tag{display:inline-block;padding:0 .4rem;border-radius:3px;background:#eef1f5;font-size:.85rem;white-space:nowrap}"
	".tag.succeeded,.tag.ok,.tag.matched,.tag.payout,.tag.resolved{background:#e7f4ec;color:var(--ok)}"
	".tag.failed,.tag.denied,.tag.open,.tag.case{background:#fdecea;color:var(--red)}"
	".tag.acknowledged,.tag.waiting,.tag.superseded{background:#fff4e5;color:#8a4b00}"
	"code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;word-break:break-all}"
	".qr svg{width:14rem;height:auto;display:block}.pager{margin:1rem 0}"
	"@media (max-width:40rem){main{padding:.6rem}th,td{padding:.4rem}h1{font-size:1.2rem}"
	"table.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}"
	"table.stack tr{display:block;border-bottom:2px solid var(--line);padding:.3rem 0}"
	"table.stack td{display:grid;grid-template-columns:38% 1fr;gap:.6rem;border:0;padding:.2rem .6rem;"
	"text-align:left;overflow-wrap:anywhere}"
	"table.stack td::before{content:attr(data-label);font-weight:600;color:#33404f;overflow-wrap:normal}"
	"table.stack td.num{white-space:normal;text-align:left}table.stack td[colspan]{display:block}"
	"table.stack td[colspan]::before{content:none}table.stack td button{margin:.1rem 0}"
	"table.facts tr{display:flex;gap:.5rem;border-bottom:1px solid var(--line);padding:.3rem 0}"
	"table.facts th,table.facts td{display:block;border:0;padding:0 .2rem;overflow-wrap:anywhere}"
	"table.facts th{flex:0 0 38%;width:auto}}";

void console_css(struct http_req *req)
{
	http_add_header(req, "Cache-Control", "max-age=300");
	http_reply_raw(req, 200, "text/css; charset=utf-8", css, sizeof css - 1);
}
