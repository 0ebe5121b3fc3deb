/*
 * The staff console. Each page is one handler: it loads the session (console_begin), checks
 * the role, runs its query and renders. Pages share one layout (header, navigation by role,
 * footer saying times are Vietnam time) and one stylesheet, /console/static/console.css, so the
 * Content-Security-Policy can forbid every inline script and style.
 */
#include "gateway/console.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "adapters/vietqr.h"
#include "gateway/audit.h"
#include "gateway/gateway.h"
#include "gateway/session.h"
#include "gateway/staff.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/passwd.h"
#include "lib/query.h"
#include "lib/totp.h"

#define CSP "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; " \
	    "frame-ancestors 'none'; base-uri 'none'"

/* Everything one console request carries from step to step. */
struct cctx {
	struct session s;
	bool signed_in;
	struct principal *p;
	struct evkeyvalq form;
	bool has_form;
	struct query q;
	bool has_q;
	/* sign-in */
	char email[255];
	char *password;
	char code[32];
	char staff_id[37], role[16], name[256], agencies[512], totp_secret[64], pw_hash[PASSWD_HASH_CAP];
	long long last_step;
	int64_t step;
	int rate_pending;
	bool rate_over, rate_down, locked, found;
	/* enrolment, password */
	char new_hash[PASSWD_HASH_CAP];
	struct staff_recovery rec;
	char token[80];
	struct evbuffer *page; /* a page waiting for its second query */
};

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
	if (c->page)
		evbuffer_free(c->page);
	OPENSSL_cleanse(c, sizeof *c);
	free(c);
}

static struct cctx *cctx_of(struct http_req *req)
{
	if (!req->state) {
		struct cctx *c = xcalloc(1, sizeof *c);
		TAILQ_INIT(&c->form);
		req->state = c;
		req->state_free = cctx_free;
	}
	return req->state;
}

static const char *form_get(struct cctx *c, const char *name)
{
	return c->has_form ? evhttp_find_header(&c->form, name) : NULL;
}

/* ---- rendering ---- */

static void esc(struct evbuffer *b, const char *s)
{
	char *e = evhttp_htmlescape(s ? s : "");
	evbuffer_add(b, e, strlen(e));
	free(e);
}

static void vnd(struct evbuffer *b, int64_t amount)
{
	char a[48];
	format_vnd(amount, a, sizeof a);
	evbuffer_add_printf(b, "%s", a);
}

/* ISO 8601 UTC ("2026-12-02T04:31:03.123Z") as Vietnam time: Asia/Ho_Chi_Minh is UTC+7 all
 * year (no daylight saving since 1975). */
static void local_time(const char *iso, char out[24])
{
	struct tm tm = {0};
	out[0] = '\0';
	if (!iso || sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			   &tm.tm_sec) != 6)
		return;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm) + 7 * 3600;
	gmtime_r(&t, &tm);
	strftime(out, 24, "%d/%m/%Y %H:%M:%S", &tm);
}

static const char *role_label(const char *role)
{
	static const char *const labels[][2] = {
		{"agency", "Cán bộ đơn vị"}, {"finance", "Tài chính"}, {"admin", "Quản trị"}, {"auditor", "Kiểm toán"}};
	for (size_t i = 0; i < ARRAY_LEN(labels); i++)
		if (strcmp(role, labels[i][0]) == 0)
			return labels[i][1];
	return role;
}

static const char *status_label(const char *status)
{
	static const char *const labels[][2] = {
		{"created", "Mới tạo"},	       {"pending", "Chờ thanh toán"},	{"succeeded", "Đã thanh toán"},
		{"cancelled", "Đã hủy"},       {"expired", "Hết hạn"},		{"partially_refunded", "Hoàn một phần"},
		{"refunded", "Đã hoàn tiền"},  {"failed", "Thất bại"},		{"ok", "Thành công"},
		{"denied", "Bị từ chối"}};
	for (size_t i = 0; i < ARRAY_LEN(labels); i++)
		if (strcmp(status, labels[i][0]) == 0)
			return labels[i][1];
	return status;
}

/* The navigation, one row per page: shown to the roles whose permission it names. */
static const struct nav {
	const char *href, *label;
	enum perm perm;
	bool available;
} nav[] = {
	{"/console/", "Tổng quan", PERM_VIEW, true},
	{"/console/orders", "Giao dịch", PERM_VIEW, true},
	{"/console/refunds", "Hoàn tiền", PERM_REFUND, true},
	/* Slots for the reconciliation and reports pages: set available once their routes land. */
	{"/console/cases", "Xử lý sai lệch", PERM_VIEW, false},
	{"/console/statements", "Sao kê ngân hàng", PERM_IMPORT, false},
	{"/console/reports/settlement", "Báo cáo quyết toán", PERM_VIEW, false},
	{"/console/staff", "Cán bộ và token", PERM_STAFF, true},
	{"/console/audit", "Nhật ký kiểm toán", PERM_AUDIT, true},
};

static void page_start(struct evbuffer *b, struct cctx *c, const char *title, const char *here)
{
	evbuffer_add_printf(b, "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
			       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
	esc(b, title);
	evbuffer_add_printf(b, " · Cổng thanh toán lệ phí</title>"
			       "<link rel=\"stylesheet\" href=\"/console/static/console.css\"></head><body>"
			       "<a class=\"skip\" href=\"#main\">Bỏ qua, tới nội dung chính</a>"
			       "<header class=\"top\"><div class=\"brand\"><span class=\"emblem\" aria-hidden=\"true\">★</span>"
			       "<span>Cổng thanh toán lệ phí<small>Bảng điều khiển cán bộ</small></span></div>");
	if (c && c->signed_in) {
		evbuffer_add_printf(b, "<div class=\"who\"><span>");
		esc(b, c->s.name[0] ? c->s.name : c->s.email);
		evbuffer_add_printf(b, " · %s</span> <a href=\"/console/password\">Đổi mật khẩu</a>"
				       "<form method=\"post\" action=\"/console/logout\" class=\"inline\">"
				       "<input type=\"hidden\" name=\"csrf\" value=\"",
				    role_label(c->s.role));
		esc(b, c->s.csrf);
		evbuffer_add_printf(b, "\"><button type=\"submit\" class=\"link\">Đăng xuất</button></form></div>");
	}
	evbuffer_add_printf(b, "</header>");
	if (c && c->signed_in && !c->s.must_enrol) {
		evbuffer_add_printf(b, "<nav aria-label=\"Chức năng\"><ul>");
		for (size_t i = 0; i < ARRAY_LEN(nav); i++) {
			if (!nav[i].available || !auth_can(c->p, nav[i].perm))
				continue;
			bool cur = here && strcmp(here, nav[i].href) == 0;
			evbuffer_add_printf(b, "<li><a href=\"%s\"%s>%s</a></li>", nav[i].href,
					    cur ? " aria-current=\"page\"" : "", nav[i].label);
		}
		evbuffer_add_printf(b, "</ul></nav>");
	}
	evbuffer_add_printf(b, "<main id=\"main\"><h1>");
	esc(b, title);
	evbuffer_add_printf(b, "</h1>");
}

static void page_send(struct http_req *req, int status, struct evbuffer *b)
{
	evbuffer_add_printf(b, "</main><footer>Thời gian hiển thị theo giờ Việt Nam (Asia/Ho_Chi_Minh, UTC+7). "
			       "Số tiền tính bằng đồng Việt Nam (₫).</footer></body></html>");
	http_add_header(req, "Content-Security-Policy", CSP);
	size_t len = evbuffer_get_length(b);
	http_reply_raw(req, status, "text/html; charset=utf-8", (const char *)evbuffer_pullup(b, -1), len);
	evbuffer_free(b);
}

static void message_page(struct http_req *req, int status, const char *title, const char *msg)
{
	struct cctx *c = req->state;
	struct evbuffer *b = evbuffer_new();
	page_start(b, c, title, NULL);
	evbuffer_add_printf(b, "<p class=\"notice\" role=\"alert\">");
	esc(b, msg);
	evbuffer_add_printf(b, "</p><p><a href=\"/console/\">Về trang tổng quan</a></p>");
	page_send(req, status, b);
}

static void not_found(struct http_req *req)
{
	message_page(req, 404, "Không tìm thấy", "Không có trang hoặc hồ sơ này, hoặc bạn không được xem nó.");
}

static void csrf_field(struct evbuffer *b, const char *csrf)
{
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
	esc(b, csrf);
	evbuffer_add_printf(b, "\">");
}

static void db_failed(struct http_req *req, PGresult *res, enum pg_status st)
{
	if (st == PG_SQL_ERROR)
		log_error(req->id, "console query failed: %s", PQresultErrorMessage(res));
	message_page(req, 503, "Tạm thời gián đoạn", "Cơ sở dữ liệu chưa trả lời. Vui lòng thử lại sau ít phút.");
}

/* ---- the session step every signed-in page goes through ---- */

typedef void (*page_fn)(struct http_req *req, struct cctx *c);

struct gate {
	page_fn page;
	int perm; /* -1: any signed-in staff */
	bool post;
	bool enrol_page; /* opens while TOTP enrolment is pending */
};

static bool parse_form(struct http_req *req, struct cctx *c)
{
	char *body = xstrndup(req->body ? req->body : "", req->body_len);
	bool ok = evhttp_parse_query_str(body, &c->form) == 0;
	free(body);
	c->has_form = true;
	return ok;
}

static void gate_run(struct http_req *req, struct session *s, const struct gate *g)
{
	struct cctx *c = cctx_of(req);
	if (!s) {
		if (g->post) {
			message_page(req, 403, "Phiên đã hết hạn", "Phiên làm việc đã kết thúc. Vui lòng đăng nhập lại.");
			return;
		}
		http_reply_redirect(req, "/console/login");
		return;
	}
	c->s = *s;
	c->signed_in = true;
	c->p = auth_staff_principal(s->staff_id, s->role, s->email, s->agencies);
	auth_attach(req, c->p);
	if (g->post) {
		const char *token = form_get(c, "csrf");
		if (!token || strlen(token) != strlen(s->csrf) || CRYPTO_memcmp(token, s->csrf, strlen(s->csrf)) != 0) {
			log_info(req->id, "console POST without its CSRF token refused");
			message_page(req, 403, "Yêu cầu bị từ chối", "Biểu mẫu thiếu mã chống giả mạo (CSRF). Hãy tải lại trang và thử lại.");
			return;
		}
	}
	if (s->must_enrol && !g->enrol_page) {
		http_reply_redirect(req, "/console/totp");
		return;
	}
	if (g->perm >= 0 && !auth_can(c->p, (enum perm)g->perm)) {
		message_page(req, 403, "Không có quyền", "Vai trò của bạn không được dùng chức năng này.");
		return;
	}
	g->page(req, c);
}

#define GATE(fn_name, page_, perm_, post_, enrol_)                                                \
	static void fn_name##_gated(struct http_req *req, struct session *s)                     \
	{                                                                                         \
		static const struct gate g = {page_, perm_, post_, enrol_};                       \
		gate_run(req, s, &g);                                                             \
	}                                                                                         \
	void fn_name(struct http_req *req)                                                        \
	{                                                                                         \
		struct cctx *c = cctx_of(req);                                                    \
		if (post_ && !parse_form(req, c)) {                                               \
			message_page(req, 400, "Biểu mẫu không hợp lệ", "Không đọc được biểu mẫu."); \
			return;                                                                   \
		}                                                                                 \
		session_load(req, fn_name##_gated);                                               \
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
	".narrow{max-width:26rem}.stats{display:flex;flex-wrap:wrap;gap:1rem}.stat{flex:1 1 12rem}"
	".stat b{display:block;font-size:1.5rem;color:var(--navy)}"
	".scroll{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:6px}"
	"table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.5rem .6rem;border-bottom:1px solid var(--line);"
	"vertical-align:top}th{background:#eef1f5;font-size:.85rem;color:#33404f}td.num,th.num{text-align:right;"
	"white-space:nowrap}caption{text-align:left;padding:.5rem .6rem;font-weight:700}"
	"label{display:block;font-weight:600;margin:.6rem 0 .2rem}input,select{font:inherit;padding:.5rem;width:100%;"
	"border:1px solid #8a94a3;border-radius:4px;background:#fff}"
	"input:focus,select:focus,button:focus,a:focus{outline:3px solid #ffbf47;outline-offset:1px}"
	".filters{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:0 1rem;align-items:end}"
	"button,.button{display:inline-block;font:inherit;font-weight:600;padding:.55rem 1.1rem;margin-top:.8rem;"
	"border:0;border-radius:4px;background:var(--navy);color:#fff;cursor:pointer;text-decoration:none}"
	"button.danger{background:var(--red)}.hint{color:var(--muted);font-size:.9rem}"
	".notice{background:#fff4e5;border-left:5px solid #d97706;padding:.75rem 1rem}"
	".error{background:#fdecea;border-left:5px solid var(--red);padding:.75rem 1rem}"
	".success{background:#e7f4ec;border-left:5px solid var(--ok);padding:.75rem 1rem}"
	".tag{display:inline-block;padding:0 .4rem;border-radius:3px;background:#eef1f5;font-size:.85rem}"
	".tag.succeeded,.tag.ok{background:#e7f4ec;color:var(--ok)}.tag.failed,.tag.denied{background:#fdecea;color:var(--red)}"
	"code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;word-break:break-all}"
	".qr svg{width:14rem;height:auto;display:block}.pager{margin:1rem 0}"
	"@media (max-width:40rem){main{padding:.6rem}th,td{padding:.4rem}h1{font-size:1.2rem}}";

void console_css(struct http_req *req)
{
	http_add_header(req, "Cache-Control", "max-age=300");
	http_reply_raw(req, 200, "text/css; charset=utf-8", css, sizeof css - 1);
}

/* ---- sign-in ---- */

static void login_form(struct http_req *req, int status, const char *error, const char *email)
{
	cctx_of(req); /* message pages read it */
	char *csrf = util_token("", 24);
	session_set_cookie(req, SESSION_LOGIN_COOKIE, csrf, 3600);
	struct evbuffer *b = evbuffer_new();
	page_start(b, NULL, "Đăng nhập", NULL);
	evbuffer_add_printf(b, "<div class=\"card narrow\">");
	if (error) {
		evbuffer_add_printf(b, "<p class=\"error\" role=\"alert\" id=\"login-error\">");
		esc(b, error);
		evbuffer_add_printf(b, "</p>");
	}
	evbuffer_add_printf(b, "<form method=\"post\" action=\"/console/login\" autocomplete=\"on\">");
	csrf_field(b, csrf);
	evbuffer_add_printf(b, "<label for=\"email\">Thư điện tử</label>"
			       "<input id=\"email\" name=\"email\" type=\"email\" required autocomplete=\"username\" value=\"");
	esc(b, email ? email : "");
	evbuffer_add_printf(b, "\"><label for=\"password\">Mật khẩu</label>"
			       "<input id=\"password\" name=\"password\" type=\"password\" required "
			       "autocomplete=\"current-password\">"
			       "<label for=\"totp\">Mã xác thực 6 số <span class=\"hint\">(tài chính, quản trị; hoặc mã "
			       "khôi phục)</span></label><input id=\"totp\" name=\"totp\" inputmode=\"numeric\" "
			       "autocomplete=\"one-time-code\" maxlength=\"16\">"
			       "<button type=\"submit\">Đăng nhập</button></form></div>"
			       "<p class=\"hint\">Nhập sai 5 lần liên tiếp, tài khoản bị khóa 15 phút.</p>");
	free(csrf);
	page_send(req, status, b);
}

static void login_page_session(struct http_req *req, struct session *s)
{
	if (s && !s->must_enrol) {
		http_reply_redirect(req, "/console/");
		return;
	}
	login_form(req, 200, NULL, NULL);
}

void console_login_page(struct http_req *req)
{
	session_load(req, login_page_session);
}

static const char bad_login[] = "Thư điện tử, mật khẩu hoặc mã xác thực không đúng.";
static const char locked_login[] = "Tài khoản đang tạm khóa 15 phút vì nhập sai 5 lần liên tiếp. Vui lòng thử lại sau.";

static void login_session_made(struct http_req *req, struct session *s)
{
	if (!s) {
		login_form(req, 503, "Hệ thống phiên làm việc tạm thời gián đoạn. Vui lòng thử lại sau ít phút.", NULL);
		return;
	}
	http_reply_redirect(req, s->must_enrol ? "/console/totp" : "/console/");
}

static void login_recorded(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	const char *verdict = PQgetvalue(res, 0, 0);
	if (strcmp(verdict, "locked") == 0) {
		login_form(req, 200, locked_login, c->email);
		return;
	}
	if (strcmp(verdict, "ok") != 0) {
		login_form(req, 200, bad_login, c->email);
		return;
	}
	snprintf(c->s.staff_id, sizeof c->s.staff_id, "%s", c->staff_id);
	snprintf(c->s.role, sizeof c->s.role, "%s", c->role);
	snprintf(c->s.email, sizeof c->s.email, "%s", c->email);
	snprintf(c->s.name, sizeof c->s.name, "%s", c->name);
	snprintf(c->s.agencies, sizeof c->s.agencies, "%s", c->agencies);
	c->s.must_enrol = staff_role_needs_totp(c->role) && !c->totp_secret[0];
	session_create(req, &c->s, login_session_made);
}

static void login_record(struct http_req *req, const char *result)
{
	struct cctx *c = req->state;
	const char *who[6];
	char ip[AUDIT_IP_CAP], step[24];
	audit_params(req, c->email, who, ip);
	snprintf(step, sizeof step, "%lld", (long long)c->step);
	const char *params[7] = {c->email, c->found ? c->staff_id : NULL, result, c->step >= 0 ? step : NULL,
				 who[3], who[4], who[5]};
	pg_query(gw.db, "login_result", 7, params, cfg.db_timeout_ms, login_recorded, req);
}

static void recovery_used(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	login_record(req, PQntuples(res) == 1 ? "ok" : "bad");
}

static void password_checked(void *arg, bool ok)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	c->step = -1;
	if (!ok || !c->found) {
		login_record(req, "bad");
		return;
	}
	/* the second factor: always once enrolled, and finance and admin must enrol */
	if (c->totp_secret[0]) {
		int64_t step;
		if (totp_check(c->totp_secret, c->code, (int64_t)time(NULL), c->last_step, &step)) {
			c->step = step;
			login_record(req, "ok");
			return;
		}
		if (strlen(c->code) > 6) {
			char h[65];
			staff_recovery_hash(c->code, h);
			const char *params[2] = {c->staff_id, h};
			pg_query(gw.db, "login_recovery", 2, params, cfg.db_timeout_ms, recovery_used, req);
			return;
		}
		login_record(req, "bad");
		return;
	}
	login_record(req, "ok");
}

enum { LL_ID, LL_ROLE, LL_EMAIL, LL_HASH, LL_TOTP, LL_LAST_STEP, LL_LOCKED, LL_AGENCIES, LL_NAME };

static void login_looked_up(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	c->found = PQntuples(res) == 1;
	c->step = -1;
	if (c->found) {
		snprintf(c->staff_id, sizeof c->staff_id, "%s", PQgetvalue(res, 0, LL_ID));
		snprintf(c->role, sizeof c->role, "%s", PQgetvalue(res, 0, LL_ROLE));
		snprintf(c->pw_hash, sizeof c->pw_hash, "%s", PQgetvalue(res, 0, LL_HASH));
		snprintf(c->totp_secret, sizeof c->totp_secret, "%s", PQgetvalue(res, 0, LL_TOTP));
		c->last_step = strtoll(PQgetvalue(res, 0, LL_LAST_STEP), NULL, 10);
		snprintf(c->agencies, sizeof c->agencies, "%s", PQgetvalue(res, 0, LL_AGENCIES));
		snprintf(c->name, sizeof c->name, "%s", PQgetvalue(res, 0, LL_NAME));
		if (strcmp(PQgetvalue(res, 0, LL_LOCKED), "t") == 0) {
			/* refused without hashing: the lock is decided again under the row lock */
			login_record(req, "locked");
			return;
		}
	}
	if (!staff_passwd_verify(c->password, c->found ? c->pw_hash : NULL, password_checked, req))
		login_form(req, 503, "Hệ thống đang quá tải. Vui lòng thử lại sau ít giây.", c->email);
}

static void rate_counted(void *arg, redisReply *reply)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER)
		c->rate_down = true;
	else if (reply->element[0]->integer > (c->rate_pending == 2 ? cfg.login_rate_per_ip : cfg.login_rate_per_account))
		c->rate_over = true;
	if (--c->rate_pending > 0)
		return;
	if (c->rate_down) {
		login_form(req, 503, "Hệ thống phiên làm việc tạm thời gián đoạn. Vui lòng thử lại sau ít phút.", c->email);
		return;
	}
	if (c->rate_over) {
		http_add_header(req, "Retry-After", "60");
		login_form(req, 429, "Quá nhiều lần đăng nhập trong một phút. Vui lòng đợi rồi thử lại.", c->email);
		return;
	}
	const char *params[1] = {c->email};
	pg_query(gw.db, "login_lookup", 1, params, cfg.db_timeout_ms, login_looked_up, req);
}

void console_login(struct http_req *req)
{
	struct cctx *c = cctx_of(req);
	char cookie[64];
	const char *expected = session_cookie(req, SESSION_LOGIN_COOKIE, cookie, sizeof cookie);
	const char *token = parse_form(req, c) ? form_get(c, "csrf") : NULL;
	if (!expected || !token || strcmp(expected, token) != 0) {
		message_page(req, 403, "Yêu cầu bị từ chối",
			     "Biểu mẫu thiếu mã chống giả mạo (CSRF) hoặc đã cũ. Hãy tải lại trang đăng nhập.");
		return;
	}
	const char *email = form_get(c, "email"), *password = form_get(c, "password"), *code = form_get(c, "totp");
	if (!email || !*email || !password || !*password || strlen(email) >= sizeof c->email ||
	    strlen(password) > PASSWD_MAX_LEN) {
		login_form(req, 200, "Hãy nhập thư điện tử và mật khẩu.", email);
		return;
	}
	size_t n = 0;
	for (const char *e = email; *e && n + 1 < sizeof c->email; e++)
		c->email[n++] = (*e >= 'A' && *e <= 'Z') ? (char)(*e - 'A' + 'a') : *e;
	c->email[n] = '\0';
	c->password = xstrdup(password);
	snprintf(c->code, sizeof c->code, "%s", code ? code : "");
	/* per address and per account, counted in Redis before any hashing */
	char ip[AUDIT_IP_CAP], h[65];
	audit_client_ip(req, ip);
	util_sha256_hex(c->email, strlen(c->email), h);
	long minute = (long)(time(NULL) / 60);
	c->rate_pending = 2;
	redis_command(gw.redis, rate_counted, req, "EVAL %s 1 login:ip:%s:%ld", "local n = redis.call('INCR', KEYS[1]) "
		      "redis.call('EXPIRE', KEYS[1], 120) return {n}", ip, minute);
	redis_command(gw.redis, rate_counted, req, "EVAL %s 1 login:acct:%s:%ld", "local n = redis.call('INCR', KEYS[1]) "
		      "redis.call('EXPIRE', KEYS[1], 120) return {n}", h, minute);
}

static void logout_page(struct http_req *req, struct cctx *c)
{
	audit_record(req, "logout", c->s.staff_id, "ok", NULL, NULL);
	session_end(req, &c->s);
	http_reply_redirect(req, "/console/login");
}
GATE(console_logout, logout_page, -1, true, true)

/* ---- dashboard ---- */

static void home_cases(void *arg, PGresult *res, enum pg_status st);

static void home_collections(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	struct evbuffer *b = evbuffer_new();
	page_start(b, c, "Tổng quan hôm nay", "/console/");
	int64_t total = 0, count = 0;
	for (int r = 0; r < PQntuples(res); r++) {
		count += strtoll(PQgetvalue(res, r, 3), NULL, 10);
		total += strtoll(PQgetvalue(res, r, 4), NULL, 10);
	}
	char day[16];
	time_t now = time(NULL) + 7 * 3600;
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(day, sizeof day, "%d/%m/%Y", &tm);
	evbuffer_add_printf(b, "<div class=\"stats\"><div class=\"card stat\">Đã thu hôm nay (%s)<b>", day);
	vnd(b, total);
	evbuffer_add_printf(b, "</b>%lld giao dịch</div><div class=\"card stat\">Sai lệch chưa xử lý<b id=\"open-cases\">"
			       "%%OPEN%%</b>hồ sơ cần tài chính xem</div></div>",
			    (long long)count);
	evbuffer_add_printf(b, "<div class=\"scroll\"><table><caption>Thu hôm nay theo đơn vị và ngân hàng</caption>"
			       "<thead><tr><th scope=\"col\">Đơn vị</th><th scope=\"col\">Ngân hàng</th>"
			       "<th scope=\"col\" class=\"num\">Số giao dịch</th><th scope=\"col\" class=\"num\">Số tiền</th>"
			       "</tr></thead><tbody>");
	for (int r = 0; r < PQntuples(res); r++) {
		evbuffer_add_printf(b, "<tr><td>");
		esc(b, PQgetvalue(res, r, 1));
		evbuffer_add_printf(b, " <span class=\"tag\">");
		esc(b, PQgetvalue(res, r, 0));
		evbuffer_add_printf(b, "</span></td><td>");
		esc(b, PQgetvalue(res, r, 2));
		evbuffer_add_printf(b, "</td><td class=\"num\">%s</td><td class=\"num\">", PQgetvalue(res, r, 3));
		vnd(b, strtoll(PQgetvalue(res, r, 4), NULL, 10));
		evbuffer_add_printf(b, "</td></tr>");
	}
	if (PQntuples(res) == 0)
		evbuffer_add_printf(b, "<tr><td colspan=\"4\">Chưa có khoản thu nào hôm nay.</td></tr>");
	evbuffer_add_printf(b, "</tbody></table></div>");
	/* keep the page until the open-cases count arrives */
	c->page = b;
	char scope[AUTH_SCOPE_CAP];
	const char *params[1] = {auth_agency_scope(c->p, scope, sizeof scope)};
	pg_query(gw.db, "console_open_cases", 1, params, cfg.db_timeout_ms, home_cases, req);
}

static void home_cases(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	struct evbuffer *b = c->page;
	c->page = NULL;
	const char *open = st == PG_OK ? PQgetvalue(res, 0, 0) : "?";
	/* the page was rendered with a placeholder for the count */
	size_t len = evbuffer_get_length(b);
	char *text = xstrndup((const char *)evbuffer_pullup(b, -1), len);
	evbuffer_free(b);
	struct evbuffer *out = evbuffer_new();
	char *mark = strstr(text, "%OPEN%");
	if (mark) {
		evbuffer_add(out, text, (size_t)(mark - text));
		evbuffer_add_printf(out, "%s", open);
		evbuffer_add_printf(out, "%s", mark + 6);
	} else {
		evbuffer_add_printf(out, "%s", text);
	}
	free(text);
	page_send(req, 200, out);
}

static void home_page(struct http_req *req, struct cctx *c)
{
	if (!auth_can(c->p, PERM_VIEW)) {
		struct evbuffer *b = evbuffer_new();
		page_start(b, c, "Tổng quan", "/console/");
		evbuffer_add_printf(b, "<div class=\"card\"><p>Vai trò quản trị quản lý cán bộ và token; không xem và "
				       "không thực hiện giao dịch tiền.</p><p><a class=\"button\" href=\"/console/staff\">"
				       "Cán bộ và token</a> <a class=\"button\" href=\"/console/audit\">Nhật ký kiểm toán</a>"
				       "</p></div>");
		page_send(req, 200, b);
		return;
	}
	char scope[AUTH_SCOPE_CAP];
	const char *params[1] = {auth_agency_scope(c->p, scope, sizeof scope)};
	pg_query(gw.db, "console_dashboard", 1, params, cfg.db_timeout_ms, home_collections, req);
}
GATE(console_home, home_page, -1, false, false)

/* ---- orders ---- */

static const struct query_field orders_query[] = {
	{"from", Q_DATE, NULL, 0, 0},
	{"to", Q_DATE, NULL, 0, 0},
	{"status", Q_CHOICE, "created|pending|succeeded|cancelled|expired|partially_refunded|refunded", 0, 0},
	{"bank", Q_CHOICE, "vnpay|momo|vietqr", 0, 0},
	{"reference", Q_TEXT, NULL, 0, 64},
	{"payer", Q_TEXT, NULL, 0, 100},
	QUERY_LIST,
};

static void select_field(struct evbuffer *b, const char *name, const char *label, const char *choices,
			 const char *const *labels, const char *cur)
{
	evbuffer_add_printf(b, "<div><label for=\"%s\">%s</label><select id=\"%s\" name=\"%s\"><option value=\"\">Tất cả"
			       "</option>",
			    name, label, name, name);
	char *list = xstrdup(choices);
	int i = 0;
	for (char *save, *t = strtok_r(list, "|", &save); t; t = strtok_r(NULL, "|", &save), i++)
		evbuffer_add_printf(b, "<option value=\"%s\"%s>%s</option>", t, cur && strcmp(cur, t) == 0 ? " selected" : "",
				    labels ? labels[i] : t);
	free(list);
	evbuffer_add_printf(b, "</select></div>");
}

static void text_field(struct evbuffer *b, const char *name, const char *label, const char *type, const char *cur)
{
	evbuffer_add_printf(b, "<div><label for=\"%s\">%s</label><input id=\"%s\" name=\"%s\" type=\"%s\" value=\"", name,
			    label, name, name, type);
	esc(b, cur ? cur : "");
	evbuffer_add_printf(b, "\"></div>");
}

enum { OF_ID, OF_REF, OF_AGENCY, OF_AMOUNT, OF_STATUS, OF_CREATED, OF_PAYER, OF_BANKS };

static void orders_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	int limit = (int)query_num(&c->q, "limit");
	int n = PQntuples(res);
	bool more = n > limit;
	if (more)
		n = limit;
	struct evbuffer *b = evbuffer_new();
	page_start(b, c, "Giao dịch", "/console/orders");
	static const char *const status_labels[] = {"Mới tạo", "Chờ thanh toán", "Đã thanh toán", "Đã hủy",
						    "Hết hạn", "Hoàn một phần", "Đã hoàn tiền"};
	static const char *const bank_labels[] = {"VNPAY", "MoMo", "VietQR"};
	evbuffer_add_printf(b, "<form method=\"get\" action=\"/console/orders\" class=\"card\" role=\"search\">"
			       "<div class=\"filters\">");
	text_field(b, "from", "Từ ngày", "date", query_get(&c->q, "from"));
	text_field(b, "to", "Đến ngày", "date", query_get(&c->q, "to"));
	select_field(b, "status", "Trạng thái", orders_query[2].choices, status_labels, query_get(&c->q, "status"));
	select_field(b, "bank", "Ngân hàng", orders_query[3].choices, bank_labels, query_get(&c->q, "bank"));
	text_field(b, "reference", "Mã hồ sơ (bắt đầu bằng)", "text", query_get(&c->q, "reference"));
	text_field(b, "payer", "Tên người nộp", "text", query_get(&c->q, "payer"));
	evbuffer_add_printf(b, "</div><button type=\"submit\">Tìm kiếm</button> <span class=\"hint\">Ngày theo giờ Việt "
			       "Nam.</span></form>");
	evbuffer_add_printf(b, "<div class=\"scroll\"><table id=\"orders\"><caption>Kết quả</caption><thead><tr>"
			       "<th scope=\"col\">Thời gian tạo</th><th scope=\"col\">Mã hồ sơ</th><th scope=\"col\">Đơn vị</th>"
			       "<th scope=\"col\">Người nộp</th><th scope=\"col\">Ngân hàng</th><th scope=\"col\">Trạng thái</th>"
			       "<th scope=\"col\" class=\"num\">Số tiền</th></tr></thead><tbody>");
	for (int r = 0; r < n; r++) {
		evbuffer_add_printf(b, "<tr><td>%s</td><td><a href=\"/console/orders/%s\">", PQgetvalue(res, r, OF_CREATED),
				    PQgetvalue(res, r, OF_ID));
		esc(b, PQgetvalue(res, r, OF_REF));
		evbuffer_add_printf(b, "</a></td><td>");
		esc(b, PQgetvalue(res, r, OF_AGENCY));
		evbuffer_add_printf(b, "</td><td>");
		esc(b, PQgetvalue(res, r, OF_PAYER));
		evbuffer_add_printf(b, "</td><td>");
		esc(b, PQgetvalue(res, r, OF_BANKS));
		evbuffer_add_printf(b, "</td><td><span class=\"tag %s\">%s</span></td><td class=\"num\">",
				    PQgetvalue(res, r, OF_STATUS), status_label(PQgetvalue(res, r, OF_STATUS)));
		vnd(b, strtoll(PQgetvalue(res, r, OF_AMOUNT), NULL, 10));
		evbuffer_add_printf(b, "</td></tr>");
	}
	if (n == 0)
		evbuffer_add_printf(b, "<tr><td colspan=\"7\">Không có giao dịch phù hợp.</td></tr>");
	evbuffer_add_printf(b, "</tbody></table></div>");
	if (more) {
		/* the next page keeps every filter and adds the cursor */
		struct evbuffer *u = evbuffer_new();
		for (int i = 0; i < 6; i++) {
			const char *v = query_get(&c->q, orders_query[i].name);
			if (!v)
				continue;
			char *e = evhttp_encode_uri(v);
			evbuffer_add_printf(u, "%s=%s&", orders_query[i].name, e);
			free(e);
		}
		evbuffer_add_printf(u, "cursor=%s", PQgetvalue(res, n - 1, OF_ID));
		evbuffer_add(u, "", 1);
		evbuffer_add_printf(b, "<p class=\"pager\"><a class=\"button\" id=\"next-page\" href=\"/console/orders?");
		esc(b, (const char *)evbuffer_pullup(u, -1));
		evbuffer_add_printf(b, "\">Trang sau →</a></p>");
		evbuffer_free(u);
	}
	page_send(req, 200, b);
}

static void orders_page(struct http_req *req, struct cctx *c)
{
	if (!query_parse(req, orders_query, (int)ARRAY_LEN(orders_query), &c->q)) {
		query_free(&c->q);
		return;
	}
	c->has_q = true;
	const char *cursor = query_get(&c->q, "cursor");
	if (cursor && !util_uuid_valid(cursor)) {
		message_page(req, 400, "Tham số không hợp lệ", "Con trỏ trang không hợp lệ.");
		return;
	}
	char scope[AUTH_SCOPE_CAP], lim[16];
	snprintf(lim, sizeof lim, "%d", (int)query_num(&c->q, "limit") + 1);
	const char *params[9] = {auth_agency_scope(c->p, scope, sizeof scope),
				 query_get(&c->q, "from"),
				 query_get(&c->q, "to"),
				 query_get(&c->q, "status"),
				 query_get(&c->q, "bank"),
				 query_get(&c->q, "reference"),
				 query_get(&c->q, "payer"),
				 cursor,
				 lim};
	pg_query(gw.db, "orders_find_staff", 9, params, cfg.db_timeout_ms, orders_found, req);
}
GATE(console_orders, orders_page, PERM_VIEW, false, false)

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

static void empty_row(struct evbuffer *b, json_t *list, int cols)
{
	if (json_array_size(list) == 0)
		evbuffer_add_printf(b, "<tr><td colspan=\"%d\" class=\"hint\">Chưa có.</td></tr>", cols);
}

static void order_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		not_found(req);
		return;
	}
	json_t *o = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	json_t *d = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
	if (!o || !d) {
		json_decref(o);
		json_decref(d);
		db_failed(req, NULL, PG_UNAVAILABLE);
		return;
	}
	struct evbuffer *b = evbuffer_new();
	char title[128], t[24];
	snprintf(title, sizeof title, "Hồ sơ %s", jstr(o, "reference"));
	page_start(b, c, title, "/console/orders");
	evbuffer_add_printf(b, "<div class=\"card\"><table><tbody><tr><th scope=\"row\">Đơn vị</th><td>");
	esc(b, PQgetvalue(res, 0, 2));
	evbuffer_add_printf(b, " (");
	esc(b, jstr(o, "agency"));
	evbuffer_add_printf(b, ")</td></tr><tr><th scope=\"row\">Nội dung</th><td>");
	esc(b, jstr(o, "description"));
	evbuffer_add_printf(b, "</td></tr><tr><th scope=\"row\">Số tiền</th><td id=\"amount\">");
	vnd(b, json_integer_value(json_object_get(o, "amount")));
	evbuffer_add_printf(b, "</td></tr><tr><th scope=\"row\">Trạng thái</th><td><span class=\"tag %s\" id=\"status\">%s"
			       "</span></td></tr><tr><th scope=\"row\">Người nộp</th><td>",
			    jstr(o, "status"), status_label(jstr(o, "status")));
	esc(b, jstr(json_object_get(o, "payer"), "name"));
	local_time(jstr(o, "created_at"), t);
	evbuffer_add_printf(b, "</td></tr><tr><th scope=\"row\">Tạo lúc</th><td>%s</td></tr>"
			       "<tr><th scope=\"row\">Mã giao dịch</th><td class=\"mono\">%s</td></tr></tbody></table></div>",
			    t, jstr(o, "id"));

	evbuffer_add_printf(b, "<h2>Lần thanh toán</h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Ngân hàng"
			       "</th><th scope=\"col\">Mã gửi ngân hàng</th><th scope=\"col\">Mã ngân hàng</th>"
			       "<th scope=\"col\">Trạng thái</th><th scope=\"col\">Cập nhật</th></tr></thead><tbody>");
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(o, "attempts"), i, v)
	{
		local_time(jstr(v, "updated_at"), t);
		evbuffer_add_printf(b, "<tr><td>");
		esc(b, jstr(v, "bank"));
		evbuffer_add_printf(b, "</td><td class=\"mono\">");
		esc(b, jstr(v, "bank_order_ref"));
		evbuffer_add_printf(b, "</td><td class=\"mono\">");
		esc(b, jstr(v, "bank_txn_id"));
		evbuffer_add_printf(b, "</td><td><span class=\"tag %s\">%s</span></td><td>%s</td></tr>", jstr(v, "status"),
				    status_label(jstr(v, "status")), t);
	}
	empty_row(b, json_object_get(o, "attempts"), 5);
	evbuffer_add_printf(b, "</tbody></table></div>");

	evbuffer_add_printf(b, "<h2>Thông báo từ ngân hàng</h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">"
			       "Lúc</th><th scope=\"col\">Ngân hàng</th><th scope=\"col\">Nguồn</th><th scope=\"col\">Kết quả"
			       "</th><th scope=\"col\" class=\"num\">Số tiền</th></tr></thead><tbody>");
	json_array_foreach(json_object_get(d, "notifications"), i, v)
	{
		evbuffer_add_printf(b, "<tr><td>%s</td><td>", jstr(v, "at"));
		esc(b, jstr(v, "bank"));
		evbuffer_add_printf(b, "</td><td>");
		esc(b, jstr(v, "source"));
		evbuffer_add_printf(b, "</td><td>");
		esc(b, jstr(v, "outcome"));
		evbuffer_add_printf(b, "</td><td class=\"num\">");
		vnd(b, json_integer_value(json_object_get(v, "amount")));
		evbuffer_add_printf(b, "</td></tr>");
	}
	empty_row(b, json_object_get(d, "notifications"), 5);
	evbuffer_add_printf(b, "</tbody></table></div>");

	evbuffer_add_printf(b, "<h2>Bút toán sổ cái</h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Lúc</th>"
			       "<th scope=\"col\">Loại</th><th scope=\"col\">Nợ</th><th scope=\"col\">Có</th>"
			       "<th scope=\"col\" class=\"num\">Số tiền</th></tr></thead><tbody>");
	json_array_foreach(json_object_get(d, "transfers"), i, v)
	{
		evbuffer_add_printf(b, "<tr><td>%s</td><td>", jstr(v, "at"));
		esc(b, jstr(v, "code"));
		evbuffer_add_printf(b, "</td><td class=\"mono\">");
		esc(b, jstr(v, "debit"));
		evbuffer_add_printf(b, "</td><td class=\"mono\">");
		esc(b, jstr(v, "credit"));
		evbuffer_add_printf(b, "</td><td class=\"num\">");
		vnd(b, json_integer_value(json_object_get(v, "amount")));
		evbuffer_add_printf(b, "</td></tr>");
	}
	empty_row(b, json_object_get(d, "transfers"), 5);
	evbuffer_add_printf(b, "</tbody></table></div>");

	evbuffer_add_printf(b, "<h2>Webhook tới cổng dịch vụ công</h2><div class=\"scroll\"><table><thead><tr>"
			       "<th scope=\"col\">Lúc</th><th scope=\"col\">Sự kiện</th><th scope=\"col\">Trạng thái</th>"
			       "<th scope=\"col\" class=\"num\">Số lần gửi</th></tr></thead><tbody>");
	json_array_foreach(json_object_get(d, "webhooks"), i, v)
	{
		evbuffer_add_printf(b, "<tr><td>%s</td><td>", jstr(v, "at"));
		esc(b, jstr(v, "type"));
		evbuffer_add_printf(b, "</td><td>");
		esc(b, jstr(v, "status"));
		evbuffer_add_printf(b, "</td><td class=\"num\">%lld</td></tr>",
				    (long long)json_integer_value(json_object_get(v, "attempts")));
	}
	empty_row(b, json_object_get(d, "webhooks"), 4);
	evbuffer_add_printf(b, "</tbody></table></div>");

	evbuffer_add_printf(b, "<h2>Hoàn tiền</h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Lúc</th>"
			       "<th scope=\"col\">Lý do</th><th scope=\"col\">Trạng thái</th><th scope=\"col\" class=\"num\">"
			       "Số tiền</th></tr></thead><tbody>");
	json_array_foreach(json_object_get(d, "refunds"), i, v)
	{
		evbuffer_add_printf(b, "<tr><td>%s</td><td>", jstr(v, "at"));
		esc(b, jstr(v, "reason"));
		evbuffer_add_printf(b, "</td><td>%s</td><td class=\"num\">", status_label(jstr(v, "status")));
		vnd(b, json_integer_value(json_object_get(v, "amount")));
		evbuffer_add_printf(b, "</td></tr>");
	}
	empty_row(b, json_object_get(d, "refunds"), 4);
	evbuffer_add_printf(b, "</tbody></table></div>");
	json_decref(o);
	json_decref(d);
	page_send(req, 200, b);
}

static void order_page(struct http_req *req, struct cctx *c)
{
	if (!util_uuid_valid(req->params[0])) {
		not_found(req);
		return;
	}
	char scope[AUTH_SCOPE_CAP];
	const char *params[3] = {req->params[0], auth_agency_scope(c->p, scope, sizeof scope), cfg.public_url};
	pg_query(gw.db, "console_order", 3, params, cfg.db_timeout_ms, order_found, req);
}
GATE(console_order, order_page, PERM_VIEW, false, false)

/* ---- audit log ---- */

static const struct query_field audit_page_query[] = {
	{"from", Q_DATE, NULL, 0, 0},
	{"to", Q_DATE, NULL, 0, 0},
	{"actor", Q_TEXT, NULL, 0, 254},
	{"action", Q_TEXT, NULL, 0, 64},
	QUERY_LIST,
};

enum { AP_ID, AP_JSON, AP_AT, AP_ACTOR, AP_LABEL, AP_ROLE, AP_ACTION, AP_OBJECT, AP_OUTCOME, AP_REQUEST, AP_IP };

static void audit_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	int limit = (int)query_num(&c->q, "limit");
	int n = PQntuples(res);
	bool more = n > limit;
	if (more)
		n = limit;
	struct evbuffer *b = evbuffer_new();
	page_start(b, c, "Nhật ký kiểm toán", "/console/audit");
	evbuffer_add_printf(b, "<form method=\"get\" action=\"/console/audit\" class=\"card\" role=\"search\">"
			       "<div class=\"filters\">");
	text_field(b, "from", "Từ ngày", "date", query_get(&c->q, "from"));
	text_field(b, "to", "Đến ngày", "date", query_get(&c->q, "to"));
	text_field(b, "actor", "Người thực hiện (thư điện tử)", "text", query_get(&c->q, "actor"));
	text_field(b, "action", "Hành động (vd. login, refund.create)", "text", query_get(&c->q, "action"));
	evbuffer_add_printf(b, "</div><button type=\"submit\">Lọc</button></form>"
			       "<p class=\"hint\">Nhật ký chỉ ghi thêm, không sửa hay xóa được; chuỗi băm được kiểm tra "
			       "bằng lệnh <code>feegate audit verify</code>.</p>");
	evbuffer_add_printf(b, "<div class=\"scroll\"><table id=\"audit\"><thead><tr><th scope=\"col\">Lúc</th>"
			       "<th scope=\"col\">Người thực hiện</th><th scope=\"col\">Vai trò</th><th scope=\"col\">Hành động"
			       "</th><th scope=\"col\">Đối tượng</th><th scope=\"col\">Kết quả</th><th scope=\"col\">Địa chỉ IP"
			       "</th></tr></thead><tbody>");
	for (int r = 0; r < n; r++) {
		char t[24];
		local_time(PQgetvalue(res, r, AP_AT), t);
		evbuffer_add_printf(b, "<tr><td>%s</td><td>", t);
		esc(b, PQgetvalue(res, r, AP_LABEL));
		evbuffer_add_printf(b, "</td><td>%s</td><td><code>", role_label(PQgetvalue(res, r, AP_ROLE)));
		esc(b, PQgetvalue(res, r, AP_ACTION));
		evbuffer_add_printf(b, "</code></td><td class=\"mono\">");
		esc(b, PQgetvalue(res, r, AP_OBJECT));
		evbuffer_add_printf(b, "</td><td><span class=\"tag %s\">%s</span></td><td>", PQgetvalue(res, r, AP_OUTCOME),
				    status_label(PQgetvalue(res, r, AP_OUTCOME)));
		esc(b, PQgetvalue(res, r, AP_IP));
		evbuffer_add_printf(b, "</td></tr>");
	}
	if (n == 0)
		evbuffer_add_printf(b, "<tr><td colspan=\"7\">Không có mục nào.</td></tr>");
	evbuffer_add_printf(b, "</tbody></table></div>");
	if (more) {
		struct evbuffer *u = evbuffer_new();
		for (int i = 0; i < 4; i++) {
			const char *v = query_get(&c->q, audit_page_query[i].name);
			if (!v)
				continue;
			char *e = evhttp_encode_uri(v);
			evbuffer_add_printf(u, "%s=%s&", audit_page_query[i].name, e);
			free(e);
		}
		evbuffer_add_printf(u, "cursor=%s", PQgetvalue(res, n - 1, AP_ID));
		evbuffer_add(u, "", 1);
		evbuffer_add_printf(b, "<p class=\"pager\"><a class=\"button\" href=\"/console/audit?");
		esc(b, (const char *)evbuffer_pullup(u, -1));
		evbuffer_add_printf(b, "\">Trang sau →</a></p>");
		evbuffer_free(u);
	}
	page_send(req, 200, b);
}

static void audit_page(struct http_req *req, struct cctx *c)
{
	if (!query_parse(req, audit_page_query, (int)ARRAY_LEN(audit_page_query), &c->q)) {
		query_free(&c->q);
		return;
	}
	c->has_q = true;
	const char *cursor = query_get(&c->q, "cursor");
	char *end = NULL;
	if (cursor && (strtoll(cursor, &end, 10) <= 0 || *end)) {
		message_page(req, 400, "Tham số không hợp lệ", "Con trỏ trang không hợp lệ.");
		return;
	}
	char lim[16];
	snprintf(lim, sizeof lim, "%d", (int)query_num(&c->q, "limit") + 1);
	const char *params[6] = {query_get(&c->q, "from"), query_get(&c->q, "to"), query_get(&c->q, "actor"),
				 query_get(&c->q, "action"), cursor, lim};
	pg_query(gw.db, "audit_list", 6, params, cfg.db_timeout_ms, audit_found, req);
}
GATE(console_audit, audit_page, PERM_AUDIT, false, false)

/* ---- staff and tokens (admin) ---- */

static void staff_listed(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	json_t *list = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	struct evbuffer *b = evbuffer_new();
	page_start(b, c, "Cán bộ và token", "/console/staff");
	evbuffer_add_printf(b, "<p class=\"hint\">Cán bộ mới được tạo bằng lệnh <code>feegate staff create</code>. "
			       "Token API mang vai trò của người sở hữu; chỉ hiện một lần khi tạo.</p>"
			       "<div class=\"scroll\"><table id=\"staff\"><thead><tr><th scope=\"col\">Họ tên</th>"
			       "<th scope=\"col\">Thư điện tử</th><th scope=\"col\">Vai trò</th><th scope=\"col\">Đơn vị</th>"
			       "<th scope=\"col\">Trạng thái</th><th scope=\"col\">Token</th><th scope=\"col\">Thao tác</th>"
			       "</tr></thead><tbody>");
	size_t i, k;
	json_t *v, *t;
	json_array_foreach(list, i, v)
	{
		bool active = strcmp(jstr(v, "state"), "active") == 0;
		evbuffer_add_printf(b, "<tr><td>");
		esc(b, jstr(v, "name"));
		evbuffer_add_printf(b, "</td><td>");
		esc(b, jstr(v, "email"));
		evbuffer_add_printf(b, "</td><td>%s%s</td><td>", role_label(jstr(v, "role")),
				    json_is_true(json_object_get(v, "totp")) ? " · có mã xác thực" : "");
		json_array_foreach(json_object_get(v, "agencies"), k, t)
		{
			evbuffer_add_printf(b, "<span class=\"tag\">");
			esc(b, json_string_value(t));
			evbuffer_add_printf(b, "</span> ");
		}
		evbuffer_add_printf(b, "</td><td>%s%s</td><td>", active ? "Đang hoạt động" : "Đã khóa",
				    json_is_true(json_object_get(v, "locked")) ? " · tạm khóa đăng nhập" : "");
		json_array_foreach(json_object_get(v, "tokens"), k, t)
		{
			evbuffer_add_printf(b, "<form method=\"post\" action=\"/console/tokens/%s/revoke\">", jstr(t, "id"));
			csrf_field(b, c->s.csrf);
			esc(b, jstr(t, "label"));
			evbuffer_add_printf(b, " <button type=\"submit\" class=\"danger\" aria-label=\"Thu hồi token ");
			esc(b, jstr(t, "label"));
			evbuffer_add_printf(b, " của ");
			esc(b, jstr(v, "email"));
			evbuffer_add_printf(b, "\">Thu hồi</button></form>");
		}
		evbuffer_add_printf(b, "</td><td>");
		if (active) {
			evbuffer_add_printf(b, "<form method=\"post\" action=\"/console/staff/%s/tokens\">", jstr(v, "id"));
			csrf_field(b, c->s.csrf);
			evbuffer_add_printf(b, "<label for=\"label-%s\">Tên token</label><input id=\"label-%s\" name=\"label\" "
					       "maxlength=\"100\" required><button type=\"submit\">Tạo token</button></form>",
					    jstr(v, "id"), jstr(v, "id"));
			if (strcmp(jstr(v, "id"), c->s.staff_id) != 0) {
				evbuffer_add_printf(b, "<form method=\"post\" action=\"/console/staff/%s/disable\">",
						    jstr(v, "id"));
				csrf_field(b, c->s.csrf);
				evbuffer_add_printf(b, "<button type=\"submit\" class=\"danger\">Khóa tài khoản</button></form>");
			}
		}
		evbuffer_add_printf(b, "</td></tr>");
	}
	evbuffer_add_printf(b, "</tbody></table></div>");
	json_decref(list);
	page_send(req, 200, b);
}

static void staff_page(struct http_req *req, struct cctx *c)
{
	pg_query(gw.db, "staff_list", 0, NULL, cfg.db_timeout_ms, staff_listed, req);
}
GATE(console_staff, staff_page, PERM_STAFF, false, false)

static void admin_done(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		not_found(req);
		return;
	}
	if (!c->token[0]) {
		http_reply_redirect(req, "/console/staff");
		return;
	}
	struct evbuffer *b = evbuffer_new();
	page_start(b, c, "Token mới", "/console/staff");
	evbuffer_add_printf(b, "<div class=\"card\"><p class=\"success\">Token đã được tạo. Hãy sao chép ngay: nó chỉ "
			       "hiện một lần.</p><p><code id=\"new-token\">");
	esc(b, c->token);
	evbuffer_add_printf(b, "</code></p><p><a href=\"/console/staff\">Quay lại danh sách cán bộ</a></p></div>");
	page_send(req, 200, b);
}

/* Runs an admin statement whose parameters are: the target, then the acting staff's six
 * audit values, then extra ones. */
static void admin_run(struct http_req *req, const char *stmt, const char *const *extra, int nextra)
{
	if (!util_uuid_valid(req->params[0])) {
		not_found(req);
		return;
	}
	const char *params[12] = {req->params[0]};
	char ip[AUDIT_IP_CAP];
	audit_params(req, NULL, params + 1, ip);
	for (int i = 0; i < nextra; i++)
		params[7 + i] = extra[i];
	pg_query(gw.db, stmt, 7 + nextra, params, cfg.db_timeout_ms, admin_done, req);
}

static void staff_disable_page(struct http_req *req, struct cctx *c)
{
	if (util_uuid_valid(req->params[0]))
		session_end_staff(req->params[0]); /* refused or not, the target has nothing more to do */
	admin_run(req, "staff_disable", NULL, 0);
}
GATE(console_staff_disable, staff_disable_page, PERM_STAFF, true, false)

static void token_create_page(struct http_req *req, struct cctx *c)
{
	const char *label = form_get(c, "label");
	if (!label || !*label || util_utf8_length(label, strlen(label)) > 100) {
		message_page(req, 400, "Thiếu tên token", "Hãy đặt cho token một tên (tối đa 100 ký tự).");
		return;
	}
	char id[37], hash[65];
	util_uuid(id);
	char *token = util_token("fgs_", 32);
	snprintf(c->token, sizeof c->token, "%s", token);
	free(token);
	util_sha256_hex(c->token, strlen(c->token), hash);
	const char *extra[3] = {id, hash, label};
	admin_run(req, "token_create", extra, 3);
}
GATE(console_token_create, token_create_page, PERM_STAFF, true, false)

static void token_revoke_page(struct http_req *req, struct cctx *c)
{
	admin_run(req, "token_revoke", NULL, 0);
}
GATE(console_token_revoke, token_revoke_page, PERM_STAFF, true, false)

/* ---- refunds waiting (finance) ---- */

static void refunds_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	struct evbuffer *b = evbuffer_new();
	page_start(b, c, "Hoàn tiền đang chờ", "/console/refunds");
	evbuffer_add_printf(b, "<p class=\"hint\">Khoản hoàn qua VietQR là lệnh chi chờ tài chính xác nhận đã chuyển; "
			       "các ngân hàng khác tự xác nhận.</p><div class=\"scroll\"><table><thead><tr>"
			       "<th scope=\"col\">Lúc yêu cầu</th><th scope=\"col\">Mã hồ sơ</th><th scope=\"col\">Đơn vị</th>"
			       "<th scope=\"col\">Ngân hàng</th><th scope=\"col\">Lý do</th><th scope=\"col\" class=\"num\">"
			       "Số tiền</th></tr></thead><tbody>");
	for (int r = 0; r < PQntuples(res); r++) {
		evbuffer_add_printf(b, "<tr><td>%s</td><td><a href=\"/console/orders/%s\">", PQgetvalue(res, r, 7),
				    PQgetvalue(res, r, 1));
		esc(b, PQgetvalue(res, r, 2));
		evbuffer_add_printf(b, "</a></td><td>");
		esc(b, PQgetvalue(res, r, 3));
		evbuffer_add_printf(b, "</td><td>");
		esc(b, PQgetvalue(res, r, 6));
		evbuffer_add_printf(b, "</td><td>");
		esc(b, PQgetvalue(res, r, 5));
		evbuffer_add_printf(b, "</td><td class=\"num\">");
		vnd(b, strtoll(PQgetvalue(res, r, 4), NULL, 10));
		evbuffer_add_printf(b, "</td></tr>");
	}
	if (PQntuples(res) == 0)
		evbuffer_add_printf(b, "<tr><td colspan=\"6\">Không có khoản hoàn nào đang chờ.</td></tr>");
	evbuffer_add_printf(b, "</tbody></table></div>");
	page_send(req, 200, b);
}

static void refunds_page(struct http_req *req, struct cctx *c)
{
	pg_query(gw.db, "console_refunds_pending", 0, NULL, cfg.db_timeout_ms, refunds_found, req);
}
GATE(console_refunds, refunds_page, PERM_REFUND, false, false)

/* ---- password change ---- */

static void password_form(struct http_req *req, int status, const char *error, const char *ok)
{
	struct cctx *c = req->state;
	struct evbuffer *b = evbuffer_new();
	page_start(b, c, "Đổi mật khẩu", NULL);
	if (error) {
		evbuffer_add_printf(b, "<p class=\"error\" role=\"alert\">");
		esc(b, error);
		evbuffer_add_printf(b, "</p>");
	}
	if (ok)
		evbuffer_add_printf(b, "<p class=\"success\" role=\"status\">%s</p>", ok);
	evbuffer_add_printf(b, "<form method=\"post\" action=\"/console/password\" class=\"card narrow\">");
	csrf_field(b, c->s.csrf);
	evbuffer_add_printf(b, "<label for=\"current\">Mật khẩu hiện tại</label><input id=\"current\" name=\"current\" "
			       "type=\"password\" required autocomplete=\"current-password\">"
			       "<label for=\"new\">Mật khẩu mới <span class=\"hint\">(ít nhất 12 ký tự)</span></label>"
			       "<input id=\"new\" name=\"new\" type=\"password\" required minlength=\"12\" "
			       "autocomplete=\"new-password\"><button type=\"submit\">Lưu mật khẩu mới</button></form>");
	page_send(req, status, b);
}

static void password_page(struct http_req *req, struct cctx *c)
{
	password_form(req, 200, NULL, NULL);
}
GATE(console_password_page, password_page, -1, false, false)

static void password_saved(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	if (!c->signed_in) {
		/* the setup link is used up: sign in with the new password */
		http_reply_redirect(req, "/console/login");
		return;
	}
	password_form(req, 200, NULL, "Đã đổi mật khẩu.");
}

static void password_hashed(void *arg, bool ok)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (!ok) {
		message_page(req, 500, "Lỗi", "Không lưu được mật khẩu.");
		return;
	}
	const char *params[7] = {c->signed_in ? c->s.staff_id : c->staff_id, c->new_hash};
	char ip[AUDIT_IP_CAP];
	const char *who[6];
	audit_params(req, c->signed_in ? NULL : c->email, who, ip);
	if (!c->signed_in)
		who[2] = c->role;
	params[2] = who[1], params[3] = who[2], params[4] = who[3], params[5] = who[4], params[6] = who[5];
	pg_query(gw.db, "staff_set_password", 7, params, cfg.db_timeout_ms, password_saved, req);
}

static void current_checked(void *arg, bool ok)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (!ok) {
		password_form(req, 200, "Mật khẩu hiện tại không đúng.", NULL);
		return;
	}
	const char *pw = form_get(c, "new");
	if (!staff_passwd_hash(pw, c->new_hash, password_hashed, req))
		password_form(req, 503, "Hệ thống đang quá tải. Vui lòng thử lại sau ít giây.", NULL);
}

static void current_hash(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (st != PG_OK || PQntuples(res) != 1) {
		db_failed(req, res, st);
		return;
	}
	if (!staff_passwd_verify(form_get(c, "current"), PQgetvalue(res, 0, 0), current_checked, req))
		password_form(req, 503, "Hệ thống đang quá tải. Vui lòng thử lại sau ít giây.", NULL);
}

static void password_post(struct http_req *req, struct cctx *c)
{
	const char *cur = form_get(c, "current"), *pw = form_get(c, "new");
	const char *weak = pw ? passwd_weak(pw, strlen(pw)) : "Hãy nhập mật khẩu mới.";
	if (!cur || strlen(cur) > PASSWD_MAX_LEN || weak) {
		password_form(req, 200, weak ? weak : "Hãy nhập mật khẩu hiện tại.", NULL);
		return;
	}
	const char *params[1] = {c->s.staff_id};
	pg_query(gw.db, "staff_password_hash", 1, params, cfg.db_timeout_ms, current_hash, req);
}
GATE(console_password, password_post, -1, true, false)

/* ---- TOTP enrolment ---- */

static void totp_form(struct http_req *req, struct cctx *c, const char *secret, const char *error)
{
	struct evbuffer *b = evbuffer_new();
	page_start(b, c, "Cài đặt mã xác thực hai lớp", NULL);
	if (error) {
		evbuffer_add_printf(b, "<p class=\"error\" role=\"alert\">");
		esc(b, error);
		evbuffer_add_printf(b, "</p>");
	}
	char *uri = xasprintf("otpauth://totp/feegate:%s?secret=%s&issuer=feegate&algorithm=SHA1&digits=6&period=30",
			      c->s.email, secret);
	char *svg = NULL;
	evbuffer_add_printf(b, "<div class=\"card narrow\"><p>Vai trò tài chính và quản trị bắt buộc dùng mã xác thực. "
			       "Quét mã QR bằng ứng dụng xác thực (Google Authenticator, Microsoft Authenticator...), rồi "
			       "nhập mã 6 số ứng dụng hiển thị.</p><div class=\"qr\" role=\"img\" aria-label=\"Mã QR cài "
			       "đặt mã xác thực\">");
	if (vietqr_svg(uri, &svg) == ADAPTER_OK)
		evbuffer_add_printf(b, "%s", svg);
	free(svg);
	free(uri);
	evbuffer_add_printf(b, "</div><p>Hoặc nhập khóa: <code id=\"totp-secret\">%s</code></p>"
			       "<form method=\"post\" action=\"/console/totp\">", secret);
	csrf_field(b, c->s.csrf);
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"secret\" value=\"%s\"><label for=\"code\">Mã 6 số</label>"
			       "<input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" "
			       "maxlength=\"6\" required><button type=\"submit\">Xác nhận</button></form></div>",
			    secret);
	page_send(req, 200, b);
}

static void totp_page(struct http_req *req, struct cctx *c)
{
	if (!c->s.must_enrol) {
		message_page(req, 200, "Mã xác thực", "Tài khoản đã có mã xác thực hai lớp.");
		return;
	}
	char secret[TOTP_SECRET_B32];
	totp_new_secret(secret);
	totp_form(req, c, secret, NULL);
}
GATE(console_totp_page, totp_page, -1, false, true)

static void totp_saved(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	c->s.must_enrol = false;
	session_save(&c->s);
	struct evbuffer *b = evbuffer_new();
	page_start(b, c, "Mã khôi phục", NULL);
	evbuffer_add_printf(b, "<div class=\"card narrow\"><p class=\"success\">Đã bật mã xác thực hai lớp.</p><p>Mã khôi "
			       "phục dưới đây chỉ hiện một lần. Mỗi mã dùng được một lần thay cho mã 6 số khi mất "
			       "điện thoại. Hãy in hoặc cất giữ nơi an toàn.</p><ul id=\"recovery\">");
	for (int i = 0; i < STAFF_RECOVERY_CODES; i++)
		evbuffer_add_printf(b, "<li><code>%s</code></li>", c->rec.codes[i]);
	evbuffer_add_printf(b, "</ul><p><a class=\"button\" href=\"/console/\">Tiếp tục</a></p></div>");
	page_send(req, 200, b);
}

static void totp_post(struct http_req *req, struct cctx *c)
{
	const char *secret = form_get(c, "secret"), *code = form_get(c, "code");
	unsigned char key[64];
	if (!c->s.must_enrol) {
		http_reply_redirect(req, "/console/");
		return;
	}
	if (!secret || strlen(secret) != TOTP_SECRET_B32 - 1 || totp_base32_decode(secret, key, sizeof key) != TOTP_SECRET_BYTES) {
		message_page(req, 400, "Biểu mẫu không hợp lệ", "Khóa mã xác thực không hợp lệ.");
		return;
	}
	int64_t step;
	if (!totp_check(secret, code, (int64_t)time(NULL), -1, &step)) {
		totp_form(req, c, secret, "Mã không đúng. Kiểm tra giờ trên điện thoại và nhập mã mới.");
		return;
	}
	staff_recovery_new(&c->rec);
	char step_s[24];
	snprintf(step_s, sizeof step_s, "%lld", (long long)step);
	const char *params[9] = {c->s.staff_id, secret};
	char ip[AUDIT_IP_CAP];
	const char *who[6];
	audit_params(req, NULL, who, ip);
	params[2] = who[1], params[3] = who[2], params[4] = who[3], params[5] = who[4], params[6] = who[5];
	params[7] = step_s;
	params[8] = c->rec.hashes_literal;
	pg_query(gw.db, "staff_set_totp", 9, params, cfg.db_timeout_ms, totp_saved, req);
}
GATE(console_totp, totp_post, -1, true, true)

/* ---- one-time setup link (feegate staff create without --password-stdin) ---- */

static void setup_form(struct http_req *req, int status, const char *email, const char *error)
{
	char *csrf = util_token("", 24);
	session_set_cookie(req, SESSION_LOGIN_COOKIE, csrf, 3600);
	struct evbuffer *b = evbuffer_new();
	page_start(b, NULL, "Đặt mật khẩu lần đầu", NULL);
	if (error) {
		evbuffer_add_printf(b, "<p class=\"error\" role=\"alert\">");
		esc(b, error);
		evbuffer_add_printf(b, "</p>");
	}
	evbuffer_add_printf(b, "<form method=\"post\" class=\"card narrow\"><p>Tài khoản: <b>");
	esc(b, email);
	evbuffer_add_printf(b, "</b></p>");
	csrf_field(b, csrf);
	evbuffer_add_printf(b, "<label for=\"new\">Mật khẩu mới <span class=\"hint\">(ít nhất 12 ký tự)</span></label>"
			       "<input id=\"new\" name=\"new\" type=\"password\" required minlength=\"12\" "
			       "autocomplete=\"new-password\"><button type=\"submit\">Lưu mật khẩu</button></form>");
	free(csrf);
	page_send(req, status, b);
}

static void setup_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = cctx_of(req);
	if (st != PG_OK) {
		db_failed(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		message_page(req, 404, "Liên kết không còn hiệu lực",
			     "Liên kết đặt mật khẩu đã dùng hoặc đã hết hạn. Hãy liên hệ quản trị.");
		return;
	}
	snprintf(c->staff_id, sizeof c->staff_id, "%s", PQgetvalue(res, 0, 0));
	snprintf(c->email, sizeof c->email, "%s", PQgetvalue(res, 0, 1));
	snprintf(c->role, sizeof c->role, "%s", PQgetvalue(res, 0, 2));
	if (!c->has_form) {
		setup_form(req, 200, c->email, NULL);
		return;
	}
	const char *pw = form_get(c, "new");
	const char *weak = pw ? passwd_weak(pw, strlen(pw)) : "Hãy nhập mật khẩu mới.";
	if (weak) {
		setup_form(req, 200, c->email, weak);
		return;
	}
	if (!staff_passwd_hash(pw, c->new_hash, password_hashed, req))
		setup_form(req, 503, c->email, "Hệ thống đang quá tải. Vui lòng thử lại sau ít giây.");
}

static void setup_lookup(struct http_req *req)
{
	char h[65];
	util_sha256_hex(req->params[0], strlen(req->params[0]), h);
	const char *params[1] = {h};
	pg_query(gw.db, "staff_setup_lookup", 1, params, cfg.db_timeout_ms, setup_found, req);
}

void console_setup_page(struct http_req *req)
{
	cctx_of(req);
	setup_lookup(req);
}

void console_setup(struct http_req *req)
{
	struct cctx *c = cctx_of(req);
	char cookie[64];
	const char *expected = session_cookie(req, SESSION_LOGIN_COOKIE, cookie, sizeof cookie);
	const char *token = parse_form(req, c) ? form_get(c, "csrf") : NULL;
	if (!expected || !token || strcmp(expected, token) != 0) {
		message_page(req, 403, "Yêu cầu bị từ chối", "Biểu mẫu thiếu mã chống giả mạo (CSRF). Hãy tải lại trang.");
		return;
	}
	setup_lookup(req);
}
