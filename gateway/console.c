/*
 * The staff console's core pages: sign-in (password, TOTP or a recovery code, rate limits and
 * the lock after five failures), sign-out, the dashboard, the password change, the first TOTP
 * enrolment and the one-time setup link. The other pages are by area: console_orders.c,
 * console_admin.c (audit log, staff and tokens) and console_money.c (cases, statements, the
 * settlement report, refunds); what they share is console_ui.c.
 */
#include "gateway/console.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/adapter.h"
#include "gateway/audit.h"
#include "gateway/console_ui.h"
#include "gateway/db.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/totp.h"

/* ---- sign-in ---- */
static void login_form(struct http_req *req, int status, const char *error, const char *email)
{
	cctx_of(req); /* message pages read it */
	char *csrf = util_token("", 24);
	session_set_cookie(req, SESSION_LOGIN_COOKIE, csrf, 3600);
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, NULL, "Đăng nhập", NULL);
	evbuffer_add_printf(b, "<div class=\"card narrow\">");
	if (error) {
		evbuffer_add_printf(b, "<p class=\"error\" role=\"alert\" id=\"login-error\">");
		ui_esc(b, error);
		evbuffer_add_printf(b, "</p>");
	}
	evbuffer_add_printf(b, "<form method=\"post\" action=\"/console/login\" autocomplete=\"on\">");
	ui_csrf_field(b, csrf);
	evbuffer_add_printf(b, "<label for=\"email\">Thư điện tử</label>"
			       "<input id=\"email\" name=\"email\" type=\"email\" required autocomplete=\"username\" value=\"");
	ui_esc(b, email ? email : "");
	evbuffer_add_printf(b, "\"><label for=\"password\">Mật khẩu</label>"
			       "<input id=\"password\" name=\"password\" type=\"password\" required "
			       "autocomplete=\"current-password\">"
			       "<label for=\"totp\">Mã xác thực 6 số <span class=\"hint\">(tài chính, quản trị; hoặc mã "
			       "khôi phục)</span></label><input id=\"totp\" name=\"totp\" inputmode=\"numeric\" "
			       "autocomplete=\"one-time-code\" maxlength=\"16\">"
			       "<button type=\"submit\">Đăng nhập</button></form></div>"
			       "<p class=\"hint\">Nhập sai 5 lần liên tiếp, tài khoản bị khóa 15 phút.</p>");
	free(csrf);
	ui_page_send(req, status, b);
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
	struct cctx *c = ui_result(req, res, st);
	if (!c)
		return;
	struct outcome_row verdict = {OUTCOME_UNKNOWN};
	if (!PG_ROW(res, 0, outcome_cols, &verdict))
		verdict.outcome = OUTCOME_UNKNOWN;
	if (verdict.outcome == OUTCOME_LOCKED) {
		login_form(req, 200, locked_login, c->email);
		return;
	}
	if (verdict.outcome != OUTCOME_OK) {
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
	if (!ui_result(req, res, st))
		return;
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
	struct cctx *c = ui_result(req, res, st);
	if (!c)
		return;
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
		if (*PQgetvalue(res, 0, LL_LOCKED) == 't') { /* the SQL's true */
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
	const char *token = ui_parse_form(req, c) ? ui_form(c, "csrf") : NULL;
	if (!expected || !token || strcmp(expected, token) != 0) {
		ui_message(req, 403, "Yêu cầu bị từ chối",
			     "Biểu mẫu thiếu mã chống giả mạo (CSRF) hoặc đã cũ. Hãy tải lại trang đăng nhập.");
		return;
	}
	const char *email = ui_form(c, "email"), *password = ui_form(c, "password"), *code = ui_form(c, "totp");
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
UI_GATE(console_logout, logout_page, UI_ANYONE, UI_POST | UI_ENROL)
/* ---- dashboard ---- */

enum { DB_CODE, DB_NAME, DB_BANK, DB_COUNT, DB_AMOUNT };

static void home_collections(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = ui_result(req, res, st);
	if (!c)
		return;
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, "Tổng quan hôm nay", "/console/");
	int64_t total = 0, count = 0;
	for (int r = 0; r < PQntuples(res); r++) {
		count += strtoll(PQgetvalue(res, r, DB_COUNT), NULL, 10);
		total += strtoll(PQgetvalue(res, r, DB_AMOUNT), NULL, 10);
	}
	char day[11], shown[24];
	ui_today(day);
	snprintf(shown, sizeof shown, "%.2s/%.2s/%.4s", day + 8, day + 5, day);
	evbuffer_add_printf(b, "<div class=\"stats\"><div class=\"card stat\">Đã thu hôm nay (%s)<b>", shown);
	ui_vnd(b, total);
	evbuffer_add_printf(b, "</b>%lld giao dịch</div><div class=\"card stat\">Sai lệch chưa xử lý<b id=\"open-cases\">"
			       "%s</b><a href=\"/console/cases?state=open\">hồ sơ cần tài chính xem</a></div></div>",
			    (long long)count, c->open_cases);
	struct ui_table t;
	ui_table_start(&t, b, NULL, "Thu hôm nay theo đơn vị và ngân hàng", "Đơn vị|Ngân hàng|#Số giao dịch|#Số tiền");
	for (int r = 0; r < PQntuples(res); r++) {
		ui_row(&t);
		ui_td_agency(&t, PQgetvalue(res, r, DB_NAME), PQgetvalue(res, r, DB_CODE));
		ui_td(&t, ui_bank(PQgetvalue(res, r, DB_BANK)));
		ui_td(&t, PQgetvalue(res, r, DB_COUNT));
		ui_td_vnd(&t, strtoll(PQgetvalue(res, r, DB_AMOUNT), NULL, 10));
	}
	ui_table_end(&t, "Chưa có khoản thu nào hôm nay.");
	ui_page_send(req, 200, b);
}

/* console_open_cases */
struct open_cases_row {
	int64_t open_cases;
};
static const struct pg_col open_cases_cols[] = {PG_COL(struct open_cases_row, open_cases, PG_INT64)};

static void home_cases(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	/* the count is a pointer to the queue: the page still opens without it */
	struct open_cases_row n;
	if (st == PG_OK && PG_ROW(res, 0, open_cases_cols, &n))
		snprintf(c->open_cases, sizeof c->open_cases, "%lld", (long long)n.open_cases);
	else
		snprintf(c->open_cases, sizeof c->open_cases, "?");
	char scope[AUTH_SCOPE_CAP];
	const char *params[1] = {auth_agency_scope(c->p, scope, sizeof scope)};
	pg_query(gw.db, "console_dashboard", 1, params, cfg.db_timeout_ms, home_collections, req);
}

static void home_page(struct http_req *req, struct cctx *c)
{
	if (!auth_can(c->p, PERM_VIEW)) {
		struct evbuffer *b = evbuffer_new();
		ui_page_start(b, c, "Tổng quan", "/console/");
		evbuffer_add_printf(b, "<div class=\"card\"><p>Vai trò quản trị quản lý cán bộ và token; không xem và "
				       "không thực hiện giao dịch tiền.</p><p class=\"actions\"><a class=\"button\" "
				       "href=\"/console/staff\">Cán bộ và token</a> <a class=\"button\" "
				       "href=\"/console/audit\">Nhật ký kiểm toán</a></p></div>");
		ui_page_send(req, 200, b);
		return;
	}
	char scope[AUTH_SCOPE_CAP];
	const char *params[1] = {auth_agency_scope(c->p, scope, sizeof scope)};
	pg_query(gw.db, "console_open_cases", 1, params, cfg.db_timeout_ms, home_cases, req);
}
UI_GATE(console_home, home_page, UI_ANYONE, UI_GET)
/* ---- password change ---- */

static void password_form(struct http_req *req, int status, const char *error, const char *ok)
{
	struct cctx *c = req->state;
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, "Đổi mật khẩu", NULL);
	if (error) {
		evbuffer_add_printf(b, "<p class=\"error\" role=\"alert\">");
		ui_esc(b, error);
		evbuffer_add_printf(b, "</p>");
	}
	if (ok)
		evbuffer_add_printf(b, "<p class=\"success\" role=\"status\">%s</p>", ok);
	evbuffer_add_printf(b, "<form method=\"post\" action=\"/console/password\" class=\"card narrow\">");
	ui_csrf_field(b, c->s.csrf);
	evbuffer_add_printf(b, "<label for=\"current\">Mật khẩu hiện tại</label><input id=\"current\" name=\"current\" "
			       "type=\"password\" required autocomplete=\"current-password\">"
			       "<label for=\"new\">Mật khẩu mới <span class=\"hint\">(ít nhất 12 ký tự)</span></label>"
			       "<input id=\"new\" name=\"new\" type=\"password\" required minlength=\"12\" "
			       "autocomplete=\"new-password\"><button type=\"submit\">Lưu mật khẩu mới</button></form>");
	ui_page_send(req, status, b);
}

static void password_page(struct http_req *req, struct cctx *c)
{
	password_form(req, 200, NULL, NULL);
}
UI_GATE(console_password_page, password_page, UI_ANYONE, UI_GET)

static void password_saved(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = ui_result(req, res, st);
	if (!c)
		return;
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
		ui_message(req, 500, "Lỗi", "Không lưu được mật khẩu.");
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
	const char *pw = ui_form(c, "new");
	if (!staff_passwd_hash(pw, c->new_hash, password_hashed, req))
		password_form(req, 503, "Hệ thống đang quá tải. Vui lòng thử lại sau ít giây.", NULL);
}

/* staff_password_hash */
struct hash_row {
	const char *password_hash;
};
static const struct pg_col hash_cols[] = {PG_COL(struct hash_row, password_hash, PG_TEXT)};

static void current_hash(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = req->state;
	struct hash_row h;
	if (st != PG_OK || PQntuples(res) != 1 || !PG_ROW(res, 0, hash_cols, &h)) {
		ui_db_failed(req, res, st);
		return;
	}
	if (!staff_passwd_verify(ui_form(c, "current"), h.password_hash, current_checked, req))
		password_form(req, 503, "Hệ thống đang quá tải. Vui lòng thử lại sau ít giây.", NULL);
}

static void password_post(struct http_req *req, struct cctx *c)
{
	const char *cur = ui_form(c, "current"), *pw = ui_form(c, "new");
	const char *weak = pw ? passwd_weak(pw, strlen(pw)) : "Hãy nhập mật khẩu mới.";
	if (!cur || strlen(cur) > PASSWD_MAX_LEN || weak) {
		password_form(req, 200, weak ? weak : "Hãy nhập mật khẩu hiện tại.", NULL);
		return;
	}
	const char *params[1] = {c->s.staff_id};
	pg_query(gw.db, "staff_password_hash", 1, params, cfg.db_timeout_ms, current_hash, req);
}
UI_GATE(console_password, password_post, UI_ANYONE, UI_POST)

/* ---- TOTP enrolment ---- */

static void totp_form(struct http_req *req, struct cctx *c, const char *secret, const char *error)
{
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, "Cài đặt mã xác thực hai lớp", NULL);
	if (error) {
		evbuffer_add_printf(b, "<p class=\"error\" role=\"alert\">");
		ui_esc(b, error);
		evbuffer_add_printf(b, "</p>");
	}
	char *uri = xasprintf("otpauth://totp/feegate:%s?secret=%s&issuer=feegate&algorithm=SHA1&digits=6&period=30",
			      c->s.email, secret);
	char *svg = NULL;
	evbuffer_add_printf(b, "<div class=\"card narrow\"><p>Vai trò tài chính và quản trị bắt buộc dùng mã xác thực. "
			       "Quét mã QR bằng ứng dụng xác thực (Google Authenticator, Microsoft Authenticator...), rồi "
			       "nhập mã 6 số ứng dụng hiển thị.</p><div class=\"qr\" role=\"img\" aria-label=\"Mã QR cài "
			       "đặt mã xác thực\">");
	if (adapter_qr_svg(uri, &svg) == ADAPTER_OK)
		evbuffer_add_printf(b, "%s", svg);
	free(svg);
	free(uri);
	evbuffer_add_printf(b, "</div><p>Hoặc nhập khóa: <code id=\"totp-secret\">%s</code></p>"
			       "<form method=\"post\" action=\"/console/totp\">", secret);
	ui_csrf_field(b, c->s.csrf);
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"secret\" value=\"%s\"><label for=\"code\">Mã 6 số</label>"
			       "<input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" "
			       "maxlength=\"6\" required><button type=\"submit\">Xác nhận</button></form></div>",
			    secret);
	ui_page_send(req, 200, b);
}

static void totp_page(struct http_req *req, struct cctx *c)
{
	if (!c->s.must_enrol) {
		ui_message(req, 200, "Mã xác thực", "Tài khoản đã có mã xác thực hai lớp.");
		return;
	}
	char secret[TOTP_SECRET_B32];
	totp_new_secret(secret);
	totp_form(req, c, secret, NULL);
}
UI_GATE(console_totp_page, totp_page, UI_ANYONE, UI_ENROL)

static void totp_saved(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = ui_result(req, res, st);
	if (!c)
		return;
	c->s.must_enrol = false;
	session_save(&c->s);
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, "Mã khôi phục", NULL);
	evbuffer_add_printf(b, "<div class=\"card narrow\"><p class=\"success\">Đã bật mã xác thực hai lớp.</p><p>Mã khôi "
			       "phục dưới đây chỉ hiện một lần. Mỗi mã dùng được một lần thay cho mã 6 số khi mất "
			       "điện thoại. Hãy in hoặc cất giữ nơi an toàn.</p><ul id=\"recovery\">");
	for (int i = 0; i < STAFF_RECOVERY_CODES; i++)
		evbuffer_add_printf(b, "<li><code>%s</code></li>", c->rec.codes[i]);
	evbuffer_add_printf(b, "</ul><p><a class=\"button\" href=\"/console/\">Tiếp tục</a></p></div>");
	ui_page_send(req, 200, b);
}

static void totp_post(struct http_req *req, struct cctx *c)
{
	const char *secret = ui_form(c, "secret"), *code = ui_form(c, "code");
	unsigned char key[64];
	if (!c->s.must_enrol) {
		http_reply_redirect(req, "/console/");
		return;
	}
	if (!secret || strlen(secret) != TOTP_SECRET_B32 - 1 || totp_base32_decode(secret, key, sizeof key) != TOTP_SECRET_BYTES) {
		ui_message(req, 400, "Biểu mẫu không hợp lệ", "Khóa mã xác thực không hợp lệ.");
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
UI_GATE(console_totp, totp_post, UI_ANYONE, UI_POST | UI_ENROL)

/* ---- one-time setup link (feegate staff create without --password-stdin) ---- */

static void setup_form(struct http_req *req, int status, const char *email, const char *error)
{
	char *csrf = util_token("", 24);
	session_set_cookie(req, SESSION_LOGIN_COOKIE, csrf, 3600);
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, NULL, "Đặt mật khẩu lần đầu", NULL);
	if (error) {
		evbuffer_add_printf(b, "<p class=\"error\" role=\"alert\">");
		ui_esc(b, error);
		evbuffer_add_printf(b, "</p>");
	}
	evbuffer_add_printf(b, "<form method=\"post\" class=\"card narrow\"><p>Tài khoản: <b>");
	ui_esc(b, email);
	evbuffer_add_printf(b, "</b></p>");
	ui_csrf_field(b, csrf);
	evbuffer_add_printf(b, "<label for=\"new\">Mật khẩu mới <span class=\"hint\">(ít nhất 12 ký tự)</span></label>"
			       "<input id=\"new\" name=\"new\" type=\"password\" required minlength=\"12\" "
			       "autocomplete=\"new-password\"><button type=\"submit\">Lưu mật khẩu</button></form>");
	free(csrf);
	ui_page_send(req, status, b);
}

/* staff_setup_lookup */
struct setup_row {
	const char *id, *email, *role;
};
static const struct pg_col setup_cols[] = {
	PG_COL(struct setup_row, id, PG_TEXT),
	PG_COL(struct setup_row, email, PG_TEXT),
	PG_COL(struct setup_row, role, PG_TEXT),
};

static void setup_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = ui_result(req, res, st);
	if (!c)
		return;
	if (PQntuples(res) != 1) {
		ui_message(req, 404, "Liên kết không còn hiệu lực",
			     "Liên kết đặt mật khẩu đã dùng hoặc đã hết hạn. Hãy liên hệ quản trị.");
		return;
	}
	struct setup_row s;
	if (!PG_ROW(res, 0, setup_cols, &s)) {
		ui_db_failed(req, res, PG_SQL_ERROR);
		return;
	}
	snprintf(c->staff_id, sizeof c->staff_id, "%s", s.id);
	snprintf(c->email, sizeof c->email, "%s", s.email);
	snprintf(c->role, sizeof c->role, "%s", s.role);
	if (!c->has_form) {
		setup_form(req, 200, c->email, NULL);
		return;
	}
	const char *pw = ui_form(c, "new");
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
	const char *token = ui_parse_form(req, c) ? ui_form(c, "csrf") : NULL;
	if (!expected || !token || strcmp(expected, token) != 0) {
		ui_message(req, 403, "Yêu cầu bị từ chối", "Biểu mẫu thiếu mã chống giả mạo (CSRF). Hãy tải lại trang.");
		return;
	}
	setup_lookup(req);
}
