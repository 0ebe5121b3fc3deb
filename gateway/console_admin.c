/*
 * The console's administration pages: the audit log (admins and auditors; filters, paged
 * newest first) and staff with their tokens (admins: create and revoke tokens, disable staff).
 */
#include "gateway/console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/console_ui.h"
#include "gateway/staff.h"
#include "lib/config.h"
#include "lib/mem.h"

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
	struct cctx *c = ui_result(req, res, st);
	if (!c)
		return;
	bool more;
	int n = ui_page_rows(c, PQntuples(res), &more);
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, "Nhật ký kiểm toán", "/console/audit");
	ui_filters_start(b, "/console/audit");
	ui_text_field(b, "from", "Từ ngày", "date", query_get(&c->q, "from"));
	ui_text_field(b, "to", "Đến ngày", "date", query_get(&c->q, "to"));
	ui_text_field(b, "actor", "Người thực hiện (thư điện tử)", "text", query_get(&c->q, "actor"));
	ui_text_field(b, "action", "Hành động (vd. login, case.resolve)", "text", query_get(&c->q, "action"));
	ui_filters_end(b, "Lọc", "Ngày theo giờ Việt Nam.");
	evbuffer_add_printf(b, "<p class=\"hint\">Nhật ký chỉ ghi thêm, không sửa hay xóa được; chuỗi băm được kiểm tra "
			       "bằng lệnh <code>feegate audit verify</code>.</p>");
	struct ui_table t;
	ui_table_start(&t, b, "audit", NULL, "Lúc|Người thực hiện|Vai trò|Hành động|Đối tượng|Kết quả|Địa chỉ IP");
	for (int r = 0; r < n; r++) {
		ui_row(&t);
		ui_td_time(&t, PQgetvalue(res, r, AP_AT));
		ui_td(&t, PQgetvalue(res, r, AP_LABEL));
		ui_td(&t, UI_WORD(ui_roles, PQgetvalue(res, r, AP_ROLE)));
		ui_td_begin(&t);
		evbuffer_add_printf(b, "<code>");
		ui_esc(b, PQgetvalue(res, r, AP_ACTION));
		evbuffer_add_printf(b, "</code>");
		ui_td_end(&t);
		ui_td_mono(&t, PQgetvalue(res, r, AP_OBJECT));
		ui_td_tag(&t, PQgetvalue(res, r, AP_OUTCOME), UI_WORD(ui_statuses, PQgetvalue(res, r, AP_OUTCOME)));
		ui_td(&t, PQgetvalue(res, r, AP_IP));
	}
	ui_table_end(&t, "Không có mục nào.");
	if (more)
		ui_pager(b, c, "/console/audit", PQgetvalue(res, n - 1, AP_ID));
	ui_page_send(req, 200, b);
}

static void audit_page(struct http_req *req, struct cctx *c)
{
	if (!ui_query(req, c, audit_page_query, (int)ARRAY_LEN(audit_page_query)))
		return;
	const char *cursor = query_get(&c->q, "cursor");
	char *end = NULL;
	if (cursor && (strtoll(cursor, &end, 10) <= 0 || *end)) {
		ui_message(req, 400, "Tham số không hợp lệ", "Con trỏ trang không hợp lệ.");
		return;
	}
	char lim[16];
	const char *params[6] = {query_get(&c->q, "from"), query_get(&c->q, "to"), query_get(&c->q, "actor"),
				 query_get(&c->q, "action"), cursor, ui_fetch_limit(c, lim)};
	pg_query(gw.db, "audit_list", 6, params, cfg.db_timeout_ms, audit_found, req);
}
UI_GATE(console_audit, audit_page, PERM_AUDIT, UI_GET)

/* ---- staff and tokens (admin) ---- */

static void staff_tokens(struct evbuffer *b, struct cctx *c, json_t *member)
{
	size_t k;
	json_t *t;
	json_array_foreach(json_object_get(member, "tokens"), k, t)
	{
		char action[80], *aria = xasprintf("Thu hồi token %s của %s", ui_jstr(t, "label"), ui_jstr(member, "email"));
		snprintf(action, sizeof action, "/console/tokens/%s/revoke", ui_jstr(t, "id"));
		evbuffer_add_printf(b, "<div>");
		ui_esc(b, ui_jstr(t, "label"));
		evbuffer_add_printf(b, " ");
		ui_button_form(b, c, action, "Thu hồi", aria, true);
		evbuffer_add_printf(b, "</div>");
		free(aria);
	}
}

static void staff_listed(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = ui_result(req, res, st);
	if (!c)
		return;
	struct staff_list_row r;
	if (!PG_ROW(res, 0, staff_list_cols, &r)) {
		ui_db_failed(req, res, PG_SQL_ERROR);
		return;
	}
	json_t *list = json_loads(r.staff, 0, NULL);
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, "Cán bộ và token", "/console/staff");
	evbuffer_add_printf(b, "<p class=\"hint\">Cán bộ mới được tạo bằng lệnh <code>feegate staff create</code>. "
			       "Token API mang vai trò của người sở hữu; chỉ hiện một lần khi tạo.</p>");
	struct ui_table t;
	ui_table_start(&t, b, "staff", NULL, "Họ tên|Thư điện tử|Vai trò|Đơn vị|Trạng thái|Token|Thao tác");
	size_t i, k;
	json_t *v, *a;
	json_array_foreach(list, i, v)
	{
		bool active = strcmp(ui_jstr(v, "state"), "active") == 0;
		const char *id = ui_jstr(v, "id");
		ui_row(&t);
		ui_td(&t, ui_jstr(v, "name"));
		ui_td(&t, ui_jstr(v, "email"));
		ui_td_begin(&t);
		evbuffer_add_printf(b, "%s%s", UI_WORD(ui_roles, ui_jstr(v, "role")),
				    json_is_true(json_object_get(v, "totp")) ? " · có mã xác thực" : "");
		ui_td_end(&t);
		ui_td_begin(&t);
		json_array_foreach(json_object_get(v, "agencies"), k, a)
		{
			evbuffer_add_printf(b, "<span class=\"tag\">");
			ui_esc(b, json_string_value(a));
			evbuffer_add_printf(b, "</span> ");
		}
		ui_td_end(&t);
		ui_td_begin(&t);
		evbuffer_add_printf(b, "%s%s", active ? "Đang hoạt động" : "Đã khóa",
				    json_is_true(json_object_get(v, "locked")) ? " · tạm khóa đăng nhập" : "");
		ui_td_end(&t);
		ui_td_begin(&t);
		staff_tokens(b, c, v);
		ui_td_end(&t);
		ui_td_begin(&t);
		if (active) {
			evbuffer_add_printf(b, "<form method=\"post\" action=\"/console/staff/%s/tokens\">", id);
			ui_csrf_field(b, c->s.csrf);
			evbuffer_add_printf(b, "<label for=\"label-%s\">Tên token</label><input id=\"label-%s\" name=\"label\" "
					       "maxlength=\"100\" required><button type=\"submit\">Tạo token</button></form>",
					    id, id);
			if (strcmp(id, c->s.staff_id) != 0) {
				char action[80];
				snprintf(action, sizeof action, "/console/staff/%s/disable", id);
				ui_button_form(b, c, action, "Khóa tài khoản", NULL, true);
			}
		}
		ui_td_end(&t);
	}
	ui_table_end(&t, "Chưa có cán bộ.");
	json_decref(list);
	ui_page_send(req, 200, b);
}

static void staff_page(struct http_req *req, struct cctx *c)
{
	pg_query(gw.db, "staff_list", 0, NULL, cfg.db_timeout_ms, staff_listed, req);
}
UI_GATE(console_staff, staff_page, PERM_STAFF, UI_GET)

static void admin_done(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = ui_result(req, res, st);
	if (!c)
		return;
	if (PQntuples(res) != 1) {
		ui_not_found(req);
		return;
	}
	if (!c->token[0]) {
		http_reply_redirect(req, "/console/staff");
		return;
	}
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, "Token mới", "/console/staff");
	evbuffer_add_printf(b, "<div class=\"card\"><p class=\"success\">Token đã được tạo. Hãy sao chép ngay: nó chỉ "
			       "hiện một lần.</p><p><code id=\"new-token\">");
	ui_esc(b, c->token);
	evbuffer_add_printf(b, "</code></p><p><a href=\"/console/staff\">Quay lại danh sách cán bộ</a></p></div>");
	ui_page_send(req, 200, b);
}

static void admin_run(struct http_req *req, const char *stmt, const char *const *extra, int nextra)
{
	if (!util_uuid_valid(req->params[0])) {
		ui_not_found(req);
		return;
	}
	staff_admin_query(req, stmt, extra, nextra, admin_done);
}

static void staff_disable_page(struct http_req *req, struct cctx *c)
{
	if (util_uuid_valid(req->params[0]))
		session_end_staff(req->params[0]); /* refused or not, the target has nothing more to do */
	admin_run(req, "staff_disable", NULL, 0);
}
UI_GATE(console_staff_disable, staff_disable_page, PERM_STAFF, UI_POST)

static void token_create_page(struct http_req *req, struct cctx *c)
{
	const char *label = ui_form(c, "label");
	if (!label || !*label || util_utf8_length(label, strlen(label)) > 100) {
		ui_message(req, 400, "Thiếu tên token", "Hãy đặt cho token một tên (tối đa 100 ký tự).");
		return;
	}
	char id[37], hash[65];
	staff_token_new(id, c->token, hash);
	const char *extra[3] = {id, hash, label};
	admin_run(req, "token_create", extra, 3);
}
UI_GATE(console_token_create, token_create_page, PERM_STAFF, UI_POST)

static void token_revoke_page(struct http_req *req, struct cctx *c)
{
	admin_run(req, "token_revoke", NULL, 0);
}
UI_GATE(console_token_revoke, token_revoke_page, PERM_STAFF, UI_POST)
