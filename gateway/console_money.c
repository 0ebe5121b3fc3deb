/*
 * The console's money work: the cases queue (acknowledge, resolve with a note, a second finance
 * member's approval), bank files and treasury statements (upload, the outcome of each line),
 * the settlement report of a day (totals, its CSV / XLSX / JSON download) and the refunds that
 * wait for a second finance member. Every rule is the API's own, called, never copied: cases
 * through case_act and imports through import_open (gateway/reconcile.h), downloads through
 * reports_settlement_send (gateway/reports.h), refunds through refund_approve and
 * refund_confirm (gateway/refunds.h); each writes its audit row as the API's route does.
 */
#include "gateway/console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "gateway/console_ui.h"
#include "gateway/db.h"
#include "gateway/reconcile.h"
#include "gateway/refunds.h"
#include "gateway/reports.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/multipart.h"

/* ---- words ---- */

static const struct ui_word case_kinds[] = {
	{"late_success", "Thanh toán sau khi hồ sơ đã đóng"},
	{"double_payment", "Thanh toán hai lần"},
	{"wrong_amount", "Thông báo sai số tiền"},
	{"unmatched_credit", "Tiền đến không khớp giao dịch"},
	{"txn_id_conflict", "Trùng mã giao dịch ngân hàng"},
	{"missing_in_ledger", "Ngân hàng có, sổ cái không có"},
	{"missing_at_bank", "Sổ cái có, ngân hàng không có"},
	{"amount_mismatch", "Chênh lệch số tiền"},
	{"duplicate", "Giao dịch lặp trong tệp"},
	{"refund_mismatch", "Hoàn tiền không khớp"},
	{"payout_missing", "Chưa thấy tiền chuyển về kho bạc"},
	{"payout_amount_mismatch", "Tiền chuyển về sai số"},
	{"unexpected_credit", "Khoản ghi có không xác định"},
};

static const struct ui_word case_states[] = {
	{"open", "Chưa xử lý"}, {"acknowledged", "Đang xử lý"}, {"resolved", "Đã xử lý"}};

/* What each resolution does, as the form explains it. */
static const struct ui_word resolutions[] = {
	{"posted", "Ghi sổ bù"},
	{"refund", "Hoàn tiền cho người nộp"},
	{"accepted", "Chấp nhận chênh lệch"},
	{"void", "Hủy hồ sơ (không phải sai lệch)"},
	{"auto", "Tự động (tệp sau đã khớp)"},
};
static const struct ui_word resolution_hints[] = {
	{"posted", "Ghi khoản tiền ngân hàng đã quyết toán vào sổ cái (vào giao dịch, hoặc vào tài khoản treo)."},
	{"refund", "Tạo lệnh hoàn tiền cho giao dịch của hồ sơ."},
	{"accepted", "Không chuyển tiền; cần một cán bộ tài chính khác phê duyệt."},
	{"void", "Hồ sơ không phản ánh sai lệch thật; không chuyển tiền."},
};

static const struct ui_word case_actions[] = {
	{"open", "Mở hồ sơ"},	      {"acknowledge", "Tiếp nhận"}, {"resolve", "Xử lý"},
	{"propose", "Đề xuất, chờ phê duyệt"}, {"approve", "Phê duyệt"},
};

/* feegate_case_act's reasons (migrations/functions/cases.sql), said in Vietnamese */
static const struct ui_word case_refusals[] = {
	{"the case is resolved", "Hồ sơ đã được xử lý xong."},
	{"the case is already acknowledged", "Hồ sơ đã được tiếp nhận."},
	{"nothing waits for approval on this case", "Không có đề xuất nào đang chờ phê duyệt."},
	{"a resolution already waits for approval", "Đã có một đề xuất đang chờ phê duyệt; hãy phê duyệt hoặc chờ."},
	{"this case has no bank account to post from", "Hồ sơ không có tài khoản ngân hàng để ghi sổ; hãy chọn cách khác."},
	{"this case has no order to refund", "Hồ sơ không gắn với giao dịch nào để hoàn tiền."},
	{"nothing of this order can be refunded", "Giao dịch không còn số tiền nào để hoàn."},
};

/* The files an import takes: each bank's settlement file, and the treasury's statement. */
#define SOURCES_CAP 16
struct source_list {
	struct ui_word words[SOURCES_CAP];
	char labels[SOURCES_CAP][64];
	size_t n;
};

static const struct source_list *sources(void)
{
	static struct source_list s;
	if (s.n)
		return &s;
	for (size_t i = 0; i < adapter_count() && s.n + 1 < SOURCES_CAP; i++, s.n++) {
		snprintf(s.labels[s.n], sizeof s.labels[s.n], "Tệp quyết toán %s", adapter_at(i)->display_name);
		s.words[s.n] = (struct ui_word){adapter_at(i)->name, s.labels[s.n]};
	}
	s.words[s.n++] = (struct ui_word){STMT_TREASURY_SOURCE, "Sao kê tài khoản kho bạc (camt.053)"};
	return &s;
}

static const char *source_label(const char *code)
{
	return ui_word(sources()->words, sources()->n, code);
}

static const struct ui_word statement_statuses[] = {{"imported", "Hiện hành"}, {"superseded", "Đã được thay thế"}};

static const struct ui_word line_kinds[] = {
	{"payment", "Thanh toán"}, {"refund", "Hoàn tiền"}, {"credit", "Ghi có"}, {"debit", "Ghi nợ"}};

static const struct ui_word line_outcomes[] = {
	{"matched", "Khớp"},
	{"missing_in_ledger", "Sổ cái không có"},
	{"amount_mismatch", "Chênh lệch số tiền"},
	{"duplicate", "Lặp"},
	{"refund_mismatch", "Hoàn tiền không khớp"},
	{"payout", "Tiền chuyển về khớp"},
	{"payout_amount_mismatch", "Tiền chuyển về sai số"},
	{"unexpected_credit", "Ghi có không xác định"},
	{"ignored", "Bỏ qua"},
};

/* A case's evidence (its details object), by key; amounts and times are shown as such. */
static const struct ui_word evidence_keys[] = {
	{"line", "Dòng trong tệp"},
	{"bank_order_ref", "Mã gửi ngân hàng"},
	{"bank_txn_id", "Mã giao dịch ngân hàng"},
	{"refund_ref", "Mã hoàn tiền"},
	{"amount", "Số tiền trong tệp"},
	{"fee", "Phí"},
	{"expected", "Số tiền dự kiến"},
	{"received", "Số tiền nhận được"},
	{"at", "Thời điểm trong tệp"},
	{"business_date", "Ngày nghiệp vụ"},
	{"due", "Hạn chuyển tiền"},
	{"remittance", "Nội dung chuyển tiền"},
	{"content", "Nội dung chuyển khoản"},
	{"account", "Tài khoản"},
	{"account_no", "Tài khoản nhận"},
	{"order_status", "Trạng thái hồ sơ lúc đó"},
	{"success", "Ngân hàng báo thành công"},
};

/* ---- the cases queue ---- */

#define CASE_KINDS                                                                                         \
	"late_success|double_payment|wrong_amount|unmatched_credit|txn_id_conflict|missing_in_ledger|"      \
	"missing_at_bank|amount_mismatch|duplicate|refund_mismatch|payout_missing|payout_amount_mismatch|" \
	"unexpected_credit"

static const struct query_field cases_query[] = {
	{"state", Q_CHOICE, "open|acknowledged|resolved", 0, 0},
	{"kind", Q_CHOICE, CASE_KINDS, 0, 0},
	{"order_id", Q_UUID, NULL, 0, 0},
	QUERY_LIST,
};

static void case_state_cell(struct ui_table *t, json_t *e)
{
	bool waiting = json_is_object(json_object_get(e, "pending_approval"));
	ui_td_begin(t);
	evbuffer_add_printf(t->b, "<span class=\"tag %s\">%s</span>", waiting ? "waiting" : ui_jstr(e, "state"),
			    waiting ? "Chờ phê duyệt" : UI_WORD(case_states, ui_jstr(e, "state")));
	ui_td_end(t);
}

static void cases_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct page_row row;
	struct cctx *c = UI_RESULT_ROW(req, res, st, false, page_cols, &row);
	if (!c)
		return;
	json_t *list = json_loads(row.page, 0, NULL);
	bool more;
	int n = ui_page_rows(c, (int)json_array_size(list), &more);
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, "Xử lý sai lệch", "/console/cases");
	ui_filters_start(b, "/console/cases");
	ui_select(b, "state", "Trạng thái", case_states, ARRAY_LEN(case_states), query_get(&c->q, "state"), "Tất cả");
	ui_select(b, "kind", "Loại sai lệch", case_kinds, ARRAY_LEN(case_kinds), query_get(&c->q, "kind"), "Tất cả");
	if (query_get(&c->q, "order_id"))
		evbuffer_add_printf(b, "<input type=\"hidden\" name=\"order_id\" value=\"%s\">", query_get(&c->q, "order_id"));
	ui_filters_end(b, "Lọc", "Mới nhất trước. Thời gian theo giờ Việt Nam.");
	struct ui_table t;
	ui_table_start(&t, b, "cases", NULL, "Mở lúc|Loại sai lệch|Trạng thái|Đơn vị|Ngân hàng|#Số tiền");
	for (int i = 0; i < n; i++) {
		json_t *e = json_array_get(list, (size_t)i);
		ui_row(&t);
		ui_td_time(&t, ui_jstr(e, "created_at"));
		ui_td_link(&t, UI_WORD(case_kinds, ui_jstr(e, "kind")), "/console/cases/%s", ui_jstr(e, "id"));
		case_state_cell(&t, e);
		ui_td(&t, ui_jstr(e, "agency"));
		ui_td(&t, ui_bank(ui_jstr(e, "bank")));
		ui_td_vnd(&t, json_integer_value(json_object_get(e, "amount")));
	}
	ui_table_end(&t, "Không có hồ sơ sai lệch phù hợp.");
	if (more)
		ui_pager(b, c, "/console/cases", ui_jstr(json_array_get(list, (size_t)n - 1), "id"));
	json_decref(list);
	ui_page_send(req, 200, b);
}

static void cases_page(struct http_req *req, struct cctx *c)
{
	if (!ui_query(req, c, cases_query, (int)ARRAY_LEN(cases_query)))
		return;
	const char *cursor;
	if (!ui_uuid_cursor(req, c, &cursor))
		return;
	char scope[AUTH_SCOPE_CAP], limit[16];
	const char *params[6] = {auth_agency_scope(c->p, scope, sizeof scope), query_get(&c->q, "state"),
				 query_get(&c->q, "kind"), query_get(&c->q, "order_id"), cursor, ui_fetch_limit(c, limit)};
	pg_query(gw.db, "cases_list", 6, params, cfg.db_timeout_ms, cases_found, req);
}
UI_GATE(console_cases, cases_page, PERM_VIEW, UI_GET)

/* ---- a case's page ---- */

static const struct query_field case_query[] = {
	{"done", Q_CHOICE, "acknowledge|resolve|propose|approve", 0, 0},
};
static const struct ui_word case_done[] = {
	{"acknowledge", "Đã tiếp nhận hồ sơ."},
	{"resolve", "Đã xử lý hồ sơ."},
	{"propose", "Đã gửi đề xuất chấp nhận chênh lệch. Cần một cán bộ tài chính khác phê duyệt."},
	{"approve", "Đã phê duyệt. Hồ sơ đã xử lý xong."},
};

enum { CP_CASE, CP_LINE, CP_REF, CP_ACTORS };

/* The actor of a case action: the staff member's e-mail, "Hệ thống" for the matcher. */
static const char *actor_name(json_t *actors, const char *id)
{
	if (strcmp(id, "system") == 0)
		return "Hệ thống (đối soát tự động)";
	const char *email = json_string_value(json_object_get(actors, id));
	return email ? email : id;
}

static void evidence_value(struct evbuffer *b, const char *key, json_t *v)
{
	static const char *const amounts[] = {"amount", "fee", "expected", "received"};
	for (size_t i = 0; i < ARRAY_LEN(amounts); i++) {
		if (strcmp(key, amounts[i]) == 0 && json_is_integer(v)) {
			ui_vnd(b, json_integer_value(v));
			return;
		}
	}
	if ((strcmp(key, "business_date") == 0 || strcmp(key, "due") == 0) && json_is_string(v)) {
		char day[11];
		ui_day(json_string_value(v), day);
		ui_esc(b, day);
		return;
	}
	if (strcmp(key, "at") == 0 && json_is_string(v)) {
		char t[24];
		ui_time(json_string_value(v), t);
		ui_esc(b, t);
		return;
	}
	if (json_is_string(v)) {
		ui_esc(b, json_string_value(v));
		return;
	}
	char *text = json_dumps(v, JSON_ENCODE_ANY);
	ui_esc(b, text ? text : "");
	free(text);
}

static void case_summary(struct evbuffer *b, json_t *e, json_t *line, const char *reference)
{
	char t[24];
	ui_facts_start(b, "case");
	ui_fact(b, "Loại sai lệch", UI_WORD(case_kinds, ui_jstr(e, "kind")));
	ui_fact_begin(b, "Trạng thái");
	bool waiting = json_is_object(json_object_get(e, "pending_approval"));
	evbuffer_add_printf(b, "<span class=\"tag %s\" id=\"case-state\">%s</span>",
			    waiting ? "waiting" : ui_jstr(e, "state"),
			    waiting ? "Chờ phê duyệt" : UI_WORD(case_states, ui_jstr(e, "state")));
	ui_fact_end(b);
	ui_fact_begin(b, "Số tiền");
	ui_vnd(b, json_integer_value(json_object_get(e, "amount")));
	ui_fact_end(b);
	ui_fact(b, "Ngân hàng", ui_bank(ui_jstr(e, "bank")));
	ui_fact_begin(b, "Mã giao dịch ngân hàng");
	evbuffer_add_printf(b, "<span class=\"mono\">");
	ui_esc(b, ui_jstr(e, "bank_txn_id"));
	evbuffer_add_printf(b, "</span>");
	ui_fact_end(b);
	ui_fact(b, "Đơn vị", ui_jstr(e, "agency"));
	if (reference) {
		ui_fact_begin(b, "Hồ sơ thanh toán");
		ui_link(b, reference, "/console/orders/%s", ui_jstr(e, "order_id"));
		ui_fact_end(b);
	}
	if (json_is_object(line)) {
		ui_fact_begin(b, "Tệp đối soát");
		char label[160], day[11];
		ui_day(ui_jstr(line, "business_date"), day);
		snprintf(label, sizeof label, "%s ngày %s, dòng %lld", source_label(ui_jstr(line, "source")), day,
			 (long long)json_integer_value(json_object_get(line, "line")));
		if (json_is_true(json_object_get(line, "visible")))
			ui_link(b, label, "/console/statements/%s", ui_jstr(e, "statement_id"));
		else
			ui_esc(b, label);
		ui_fact_end(b);
	}
	ui_time(ui_jstr(e, "created_at"), t);
	ui_fact(b, "Mở lúc", t);
	if (json_is_string(json_object_get(e, "reopens"))) {
		ui_fact_begin(b, "Mở lại từ hồ sơ");
		ui_link(b, "hồ sơ trước", "/console/cases/%s", ui_jstr(e, "reopens"));
		ui_fact_end(b);
	}
	if (strcmp(ui_jstr(e, "state"), "resolved") == 0) {
		ui_fact(b, "Cách xử lý", UI_WORD(resolutions, ui_jstr(e, "resolution")));
		ui_fact(b, "Ghi chú", ui_jstr(e, "note"));
		ui_time(ui_jstr(e, "resolved_at"), t);
		ui_fact(b, "Xử lý xong lúc", t);
		if (json_is_string(json_object_get(e, "transfer_id")))
			ui_fact(b, "Bút toán", ui_jstr(e, "transfer_id"));
	}
	ui_facts_end(b);
}

static void case_evidence(struct evbuffer *b, json_t *e, json_t *line)
{
	evbuffer_add_printf(b, "<h2>Bằng chứng</h2>");
	ui_facts_start(b, "evidence");
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(e, "details"), k, v)
	{
		if (json_is_null(v))
			continue;
		ui_fact_begin(b, UI_WORD(evidence_keys, k));
		evidence_value(b, k, v);
		ui_fact_end(b);
	}
	if (json_is_object(line) && json_is_string(json_object_get(line, "outcome"))) {
		ui_fact(b, "Kết quả đối chiếu dòng", UI_WORD(line_outcomes, ui_jstr(line, "outcome")));
		const char *said = ui_jstr(json_object_get(e, "details"), "remittance");
		if (json_is_string(json_object_get(line, "content")) && strcmp(said, ui_jstr(line, "content")) != 0)
			ui_fact(b, "Nội dung dòng", ui_jstr(line, "content"));
	}
	ui_facts_end(b);
}

static void case_forms(struct evbuffer *b, struct cctx *c, json_t *e, json_t *actors)
{
	const char *id = ui_jstr(e, "id");
	json_t *pending = json_object_get(e, "pending_approval");
	if (json_is_object(pending)) {
		const char *by = ui_jstr(pending, "proposed_by");
		bool mine = strcmp(by, c->s.staff_id) == 0;
		evbuffer_add_printf(b, "<div class=\"card\" id=\"approval\"><h2>Chờ phê duyệt</h2><p>");
		ui_esc(b, actor_name(actors, by));
		evbuffer_add_printf(b, " đề xuất <b>%s</b>. Ghi chú: ", UI_WORD(resolutions, ui_jstr(pending, "resolution")));
		ui_esc(b, ui_jstr(pending, "note"));
		evbuffer_add_printf(b, "</p>");
		if (mine)
			evbuffer_add_printf(b, "<p class=\"hint\">Bạn là người đề xuất: cần một cán bộ tài chính khác phê "
					       "duyệt.</p>");
		char action[96];
		snprintf(action, sizeof action, "/console/cases/%s/approve", id);
		ui_button_form(b, c, action, "Phê duyệt đề xuất", NULL, false);
		evbuffer_add_printf(b, "</div>");
		return;
	}
	evbuffer_add_printf(b, "<div class=\"columns\">");
	if (strcmp(ui_jstr(e, "state"), "open") == 0) {
		evbuffer_add_printf(b, "<form method=\"post\" action=\"/console/cases/%s/acknowledge\" class=\"card\" "
				       "id=\"acknowledge\"><h2>Tiếp nhận</h2>",
				    id);
		ui_csrf_field(b, c->s.csrf);
		evbuffer_add_printf(b, "<label for=\"ack-note\">Ghi chú <span class=\"hint\">(không bắt buộc)</span></label>"
				       "<textarea id=\"ack-note\" name=\"note\" maxlength=\"1000\"></textarea>"
				       "<button type=\"submit\">Tiếp nhận hồ sơ</button></form>");
	}
	evbuffer_add_printf(b, "<form method=\"post\" action=\"/console/cases/%s/resolve\" class=\"card\" id=\"resolve\">"
			       "<h2>Xử lý</h2>",
			    id);
	ui_csrf_field(b, c->s.csrf);
	evbuffer_add_printf(b, "<fieldset><legend>Cách xử lý</legend>");
	for (size_t i = 0; i < ARRAY_LEN(resolution_hints); i++) {
		const char *r = resolution_hints[i].key;
		evbuffer_add_printf(b, "<div class=\"choice\"><input type=\"radio\" name=\"resolution\" id=\"res-%s\" "
				       "value=\"%s\" required><label for=\"res-%s\">%s<small>%s</small></label></div>",
				    r, r, r, UI_WORD(resolutions, r), resolution_hints[i].label);
	}
	evbuffer_add_printf(b, "</fieldset><label for=\"note\">Ghi chú <span class=\"hint\">(bắt buộc, tối đa 1000 ký tự)"
			       "</span></label><textarea id=\"note\" name=\"note\" maxlength=\"1000\" required></textarea>"
			       "<button type=\"submit\">Ghi nhận cách xử lý</button></form></div>");
}

static void case_history(struct evbuffer *b, json_t *e, json_t *actors)
{
	evbuffer_add_printf(b, "<h2>Lịch sử xử lý</h2>");
	struct ui_table t;
	ui_table_start(&t, b, "history", NULL, "Lúc|Người thực hiện|Hành động|Ghi chú");
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(e, "actions"), i, a)
	{
		ui_row(&t);
		ui_td_time(&t, ui_jstr(a, "at"));
		ui_td(&t, actor_name(actors, ui_jstr(a, "actor")));
		ui_td(&t, UI_WORD(case_actions, ui_jstr(a, "action")));
		ui_td(&t, ui_jstr(a, "note"));
	}
	ui_table_end(&t, "Chưa có.");
}

static void case_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = ui_result_one(req, res, st);
	if (!c)
		return;
	json_t *e = json_loads(PQgetvalue(res, 0, CP_CASE), 0, NULL);
	json_t *line = PQgetisnull(res, 0, CP_LINE) ? NULL : json_loads(PQgetvalue(res, 0, CP_LINE), 0, NULL);
	json_t *actors = json_loads(PQgetvalue(res, 0, CP_ACTORS), 0, NULL);
	struct evbuffer *b = evbuffer_new();
	char title[160];
	snprintf(title, sizeof title, "Sai lệch: %s", UI_WORD(case_kinds, ui_jstr(e, "kind")));
	ui_page_start(b, c, title, "/console/cases");
	ui_alert(b, c, case_done, ARRAY_LEN(case_done));
	case_summary(b, e, line, PQgetisnull(res, 0, CP_REF) ? NULL : PQgetvalue(res, 0, CP_REF));
	case_evidence(b, e, line);
	if (auth_can(c->p, PERM_CASES) && strcmp(ui_jstr(e, "state"), "resolved") != 0)
		case_forms(b, c, e, actors);
	case_history(b, e, actors);
	evbuffer_add_printf(b, "<p><a href=\"/console/cases\">← Về danh sách sai lệch</a></p>");
	json_decref(e);
	json_decref(line);
	json_decref(actors);
	ui_page_send(req, c->alert ? c->status : 200, b);
}

static void case_load(struct http_req *req, struct cctx *c)
{
	if (!util_uuid_valid(req->params[0])) {
		ui_not_found(req);
		return;
	}
	char scope[AUTH_SCOPE_CAP];
	const char *params[2] = {req->params[0], auth_agency_scope(c->p, scope, sizeof scope)};
	pg_query(gw.db, "console_case", 2, params, cfg.db_timeout_ms, case_found, req);
}

UI_QUERY_PAGE(console_case, case_query, case_load, PERM_VIEW)

static void case_acted(struct http_req *req, const struct case_result *r)
{
	struct cctx *c = req->state;
	char path[80];
	snprintf(path, sizeof path, "/console/cases/%s", req->params[0]);
	switch (r->outcome) {
	case CASE_OK: {
		/* an accepted resolution is a proposal until a second member approves it */
		json_t *e = json_loads(r->case_json, 0, NULL);
		bool proposed = json_is_object(json_object_get(e, "pending_approval"));
		json_decref(e);
		ui_done(req, path, proposed ? "propose" : c->action);
		return;
	}
	case CASE_FORBIDDEN:
		ui_fail(c, 403,
			"Bạn không thể tự phê duyệt đề xuất của chính mình. Cần một cán bộ tài chính khác phê duyệt.",
			"Quy tắc hai người: người đề xuất chấp nhận chênh lệch không được phê duyệt đề xuất đó.");
		break;
	case CASE_INVALID_STATE:
		ui_fail(c, 409, "Không thực hiện được.", UI_WORD(case_refusals, r->message));
		break;
	case CASE_NOT_FOUND:
		ui_not_found(req);
		return;
	case CASE_FAILED:
		ui_db_failed(req, r->res, r->st);
		return;
	}
	case_load(req, c);
}

/* One form of the case page: its fields checked as the API checks them, then case_act. */
static void case_post(struct http_req *req, struct cctx *c, const char *verb)
{
	const char *note = ui_form(c, "note"), *resolution = ui_form(c, "resolution");
	if (note && !*note && strcmp(verb, "resolve") != 0)
		note = NULL; /* an empty optional note is no note */
	c->action = verb;
	const char *field, *msg = case_input_check(verb, resolution, note, &field);
	if (msg) {
		ui_fail(c, 400,
			strcmp(field, "note") == 0 ? "Hãy nhập ghi chú (1 đến 1000 ký tự)." : "Hãy chọn một cách xử lý.",
			NULL);
		case_load(req, c);
		return;
	}
	case_act(req, req->params[0], verb, resolution, note, case_acted);
}

static void case_acknowledge_page(struct http_req *req, struct cctx *c)
{
	case_post(req, c, "acknowledge");
}
UI_GATE(console_case_acknowledge, case_acknowledge_page, PERM_CASES, UI_POST)

static void case_resolve_page(struct http_req *req, struct cctx *c)
{
	case_post(req, c, "resolve");
}
UI_GATE(console_case_resolve, case_resolve_page, PERM_CASES, UI_POST)

static void case_approve_page(struct http_req *req, struct cctx *c)
{
	case_post(req, c, "approve");
}
UI_GATE(console_case_approve, case_approve_page, PERM_CASES, UI_POST)

/* ---- statements ---- */

static const struct query_field statements_query[] = {QUERY_LIST};

static void upload_form(struct evbuffer *b, struct cctx *c)
{
	evbuffer_add_printf(b, "<form method=\"post\" action=\"/console/statements\" enctype=\"multipart/form-data\" "
			       "class=\"card\" id=\"upload\"><h2>Nhập tệp mới</h2>");
	ui_csrf_field(b, c->s.csrf);
	evbuffer_add_printf(b, "<div class=\"filters\">");
	ui_select(b, "source", "Loại tệp", sources()->words, sources()->n, NULL, NULL);
	evbuffer_add_printf(b, "<div><label for=\"file\">Tệp (CSV của ngân hàng hoặc XML camt.053)</label>"
			       "<input id=\"file\" name=\"file\" type=\"file\" required accept=\".csv,.txt,.xml,text/csv,"
			       "application/xml,text/xml\"></div></div>"
			       "<button type=\"submit\">Tải lên và đối soát</button> <span class=\"hint\">Nhập toàn bộ hoặc "
			       "không nhập gì: tệp sai được từ chối và nêu vị trí lỗi. Cùng một tệp nhập lại không thay đổi "
			       "gì.</span></form>");
}

static void statements_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct page_row row;
	struct cctx *c = UI_RESULT_ROW(req, res, st, false, page_cols, &row);
	if (!c)
		return;
	json_t *list = json_loads(row.page, 0, NULL);
	bool more;
	int n = ui_page_rows(c, (int)json_array_size(list), &more);
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, "Sao kê ngân hàng và kho bạc", "/console/statements");
	ui_alert(b, c, NULL, 0);
	if (auth_can(c->p, PERM_IMPORT))
		upload_form(b, c);
	struct ui_table t;
	ui_table_start(&t, b, "statements", "Các tệp đã nhập",
		       "Nhập lúc|Loại tệp|Ngày nghiệp vụ|Tài khoản|#Số dòng|#Khớp|#Sai lệch|#Tổng tiền|Trạng thái");
	for (int i = 0; i < n; i++) {
		json_t *s = json_array_get(list, (size_t)i);
		char at[24], count[3][24];
		ui_time(ui_jstr(s, "imported_at"), at);
		snprintf(count[0], sizeof count[0], "%lld", (long long)json_integer_value(json_object_get(s, "lines")));
		snprintf(count[1], sizeof count[1], "%lld", (long long)json_integer_value(json_object_get(s, "matched")));
		snprintf(count[2], sizeof count[2], "%lld", (long long)json_integer_value(json_object_get(s, "cases")));
		ui_row(&t);
		ui_td_link(&t, at, "/console/statements/%s", ui_jstr(s, "id"));
		ui_td(&t, source_label(ui_jstr(s, "source")));
		char day[11];
		ui_day(ui_jstr(s, "business_date"), day);
		ui_td(&t, day);
		ui_td_mono(&t, ui_jstr(s, "account"));
		for (int k = 0; k < 3; k++)
			ui_td(&t, count[k]);
		ui_td_vnd(&t, json_integer_value(json_object_get(s, "total")));
		ui_td_tag(&t, ui_jstr(s, "status"), UI_WORD(statement_statuses, ui_jstr(s, "status")));
	}
	ui_table_end(&t, "Chưa có tệp nào.");
	if (more)
		ui_pager(b, c, "/console/statements", ui_jstr(json_array_get(list, (size_t)n - 1), "id"));
	json_decref(list);
	ui_page_send(req, c->alert ? c->status : 200, b);
}

static void statements_load(struct http_req *req, struct cctx *c)
{
	const char *cursor;
	if (!ui_uuid_cursor(req, c, &cursor))
		return;
	char scope[AUTH_SCOPE_CAP], limit[16];
	const char *params[3] = {auth_agency_scope(c->p, scope, sizeof scope), cursor, ui_fetch_limit(c, limit)};
	pg_query(gw.db, "statements_list", 3, params, cfg.db_timeout_ms, statements_found, req);
}

UI_QUERY_PAGE(console_statements, statements_query, statements_load, PERM_VIEW)

/* The upload form's body, read as it arrives: the CSRF and source fields come first (the form
 * puts them before the file), then the file streams into the importer, as POST /v1/statements
 * does with a body. */
struct upload {
	struct http_req *req;
	struct multipart *mp;
	struct import_job *job;
	enum { UP_NONE, UP_CSRF, UP_SOURCE, UP_FILE, UP_OTHER } part;
	char value[64];
	size_t vlen;
	bool csrf_ok, have_source, answered;
	stmt_source source;
};

static void upload_free(void *p)
{
	struct upload *up = p;
	if (up->job)
		import_drop(up->job);
	multipart_free(up->mp);
	free(up);
}

/* Answers the form with the statements page and its alert; nothing is imported, nothing more
 * of the body is read. The page comes from a query, never within this call (pg_query), so the
 * upload is still whole when a multipart handler calls this and returns. */
static void upload_refuse(struct upload *up, int status, const char *alert, const char *detail)
{
	struct cctx *c = up->req->state;
	if (up->job)
		import_drop(up->job);
	up->job = NULL;
	up->answered = true;
	http_body_pause(up->req);
	ui_fail(c, status, alert, detail);
	statements_load(up->req, c);
}

static void upload_done(struct http_req *req, const struct stmt_result *r)
{
	struct cctx *c = req->state;
	struct upload *up = c->own;
	char path[80], detail[520];
	up->job = NULL; /* the import has answered: the job is gone */
	switch (r->outcome) {
	case STMT_CREATED:
	case STMT_EXISTING:
		snprintf(path, sizeof path, "/console/statements/%s", r->id);
		ui_done(req, path, r->outcome == STMT_CREATED ? "imported" : "existing");
		return;
	case STMT_MALFORMED:
		snprintf(detail, sizeof detail, "%s%s%s", r->field, r->field[0] ? ": " : "", r->message);
		ui_fail(c, 400, "Tệp bị từ chối, không có gì được lưu. Vị trí và lý do:", detail);
		break;
	case STMT_TOO_LARGE:
		ui_fail(c, 413, "Tệp vượt quá dung lượng cho phép; không có gì được lưu.", r->message);
		break;
	case STMT_FAILED:
		ui_fail(c, 503, "Chưa nhập được tệp; không có gì được lưu. Vui lòng thử lại sau ít phút.", NULL);
		break;
	}
	statements_load(req, c);
}

static bool up_part(void *arg, const char *name, const char *filename)
{
	struct upload *up = arg;
	up->vlen = 0;
	if (strcmp(name, "file") == 0) {
		if (!up->csrf_ok) {
			upload_refuse(up, 403, "Biểu mẫu thiếu mã chống giả mạo (CSRF). Hãy tải lại trang và thử lại.", NULL);
			return false;
		}
		if (!up->have_source) {
			upload_refuse(up, 400, "Hãy chọn loại tệp.", NULL);
			return false;
		}
		up->part = UP_FILE;
		return true;
	}
	up->part = strcmp(name, "csrf") == 0 ? UP_CSRF : strcmp(name, "source") == 0 ? UP_SOURCE : UP_OTHER;
	return true;
}

static bool up_data(void *arg, const char *data, size_t len)
{
	struct upload *up = arg;
	if (up->part == UP_FILE) {
		if (!up->job && !(up->job = import_open(up->req, up->source, upload_done))) {
			upload_refuse(up, 503, "Hệ thống đang nhập các tệp khác. Vui lòng thử lại sau ít phút.", NULL);
			return false;
		}
		import_feed(up->job, data, len);
		return true;
	}
	if (up->part == UP_CSRF || up->part == UP_SOURCE) {
		if (up->vlen + len >= sizeof up->value) {
			upload_refuse(up, 400, "Biểu mẫu không hợp lệ.", NULL);
			return false;
		}
		memcpy(up->value + up->vlen, data, len);
		up->vlen += len;
	}
	return true;
}

static bool up_part_end(void *arg)
{
	struct upload *up = arg;
	up->value[up->vlen] = '\0';
	if (up->part == UP_CSRF)
		up->csrf_ok = ui_csrf_ok(up->req->state, up->value);
	else if (up->part == UP_SOURCE)
		up->have_source = stmt_source_parse(up->value, &up->source);
	up->part = UP_NONE;
	return true;
}

static const struct multipart_handler upload_parts = {up_part, up_data, up_part_end};

static void upload_chunk(struct http_req *req, const char *data, size_t len, void *arg)
{
	struct upload *up = arg;
	if (up->answered)
		return;
	if (multipart_feed(up->mp, data, len) == MULTIPART_BAD)
		upload_refuse(up, 400, "Không đọc được biểu mẫu tải lên.", multipart_error(up->mp));
}

static void upload_end(struct http_req *req, enum http_body_end end, void *arg)
{
	struct upload *up = arg;
	if (up->answered)
		return;
	if (end == HTTP_BODY_GONE || end == HTTP_BODY_TOO_SLOW) {
		if (!up->job || !import_close(up->job, end)) {
			up->job = NULL;
			http_reply_body_error(req, end);
		}
		return;
	}
	if (end == HTTP_BODY_TOO_LARGE) {
		upload_refuse(up, 413, "Tệp vượt quá dung lượng cho phép; không có gì được lưu.", NULL);
		return;
	}
	if (multipart_end(up->mp) != MULTIPART_DONE) {
		upload_refuse(up, 400, "Không đọc được biểu mẫu tải lên.", multipart_error(up->mp));
		return;
	}
	if (!up->csrf_ok) {
		upload_refuse(up, 403, "Biểu mẫu thiếu mã chống giả mạo (CSRF). Hãy tải lại trang và thử lại.", NULL);
		return;
	}
	if (!up->job) {
		upload_refuse(up, 400, "Hãy chọn một tệp để tải lên.", NULL);
		return;
	}
	/* from here the import answers (upload_done) */
	struct import_job *job = up->job;
	up->job = NULL;
	if (!import_close(job, end))
		upload_refuse(up, 400, "Không đọc được biểu mẫu tải lên.", NULL);
}

static void upload_page(struct http_req *req, struct cctx *c)
{
	if (!ui_query(req, c, statements_query, (int)ARRAY_LEN(statements_query)))
		return;
	struct upload *up = xcalloc(1, sizeof *up);
	up->req = req;
	c->own = up;
	c->own_free = upload_free;
	up->mp = multipart_new(http_header(req, "Content-Type"), &upload_parts, up);
	if (!up->mp) {
		upload_refuse(up, 400, "Biểu mẫu tải lên phải là multipart/form-data.", NULL);
		return;
	}
	http_body_stream(req, upload_chunk, upload_end, up);
}
UI_GATE(console_statement_upload, upload_page, PERM_IMPORT, UI_STREAM)

/* ---- a statement's page ---- */

static const struct query_field statement_query[] = {
	{"done", Q_CHOICE, "imported|existing", 0, 0},
	QUERY_LIST,
};
static const struct ui_word statement_done[] = {
	{"imported", "Đã nhập tệp và đối soát. Kết quả từng dòng ở dưới."},
	{"existing", "Tệp này đã được nhập trước đó; không có gì thay đổi."},
};

static void statement_facts(struct evbuffer *b, json_t *s)
{
	char at[24], n[64];
	ui_facts_start(b, "statement");
	ui_fact(b, "Loại tệp", source_label(ui_jstr(s, "source")));
	char day[11];
	ui_day(ui_jstr(s, "business_date"), day);
	ui_fact(b, "Ngày nghiệp vụ", day);
	if (json_is_string(json_object_get(s, "account")))
		ui_fact(b, "Tài khoản", ui_jstr(s, "account"));
	snprintf(n, sizeof n, "%lld dòng: %lld khớp, %lld sai lệch mở",
		 (long long)json_integer_value(json_object_get(s, "lines")),
		 (long long)json_integer_value(json_object_get(s, "matched")),
		 (long long)json_integer_value(json_object_get(s, "cases")));
	ui_fact(b, "Kết quả", n);
	ui_fact_begin(b, "Tổng tiền theo tệp");
	ui_vnd(b, json_integer_value(json_object_get(s, "total")));
	ui_fact_end(b);
	ui_fact_begin(b, "Trạng thái");
	evbuffer_add_printf(b, "<span class=\"tag %s\">%s</span>", ui_jstr(s, "status"),
			    UI_WORD(statement_statuses, ui_jstr(s, "status")));
	if (json_is_string(json_object_get(s, "supersedes"))) {
		evbuffer_add_printf(b, " · thay cho ");
		ui_link(b, "tệp trước", "/console/statements/%s", ui_jstr(s, "supersedes"));
	}
	ui_fact_end(b);
	ui_time(ui_jstr(s, "imported_at"), at);
	ui_fact(b, "Nhập lúc", at);
	ui_fact_begin(b, "SHA-256");
	evbuffer_add_printf(b, "<span class=\"mono\">");
	ui_esc(b, ui_jstr(s, "sha256"));
	evbuffer_add_printf(b, "</span>");
	ui_fact_end(b);
	ui_facts_end(b);
}

static void statement_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct statement_row row;
	struct cctx *c = UI_RESULT_ROW(req, res, st, true, statement_cols, &row);
	if (!c)
		return;
	json_t *s = json_loads(row.statement, 0, NULL);
	json_t *lines = json_loads(row.lines, 0, NULL);
	bool more;
	int n = ui_page_rows(c, (int)json_array_size(lines), &more);
	struct evbuffer *b = evbuffer_new();
	char title[160];
	char day[11];
	ui_day(ui_jstr(s, "business_date"), day);
	snprintf(title, sizeof title, "%s ngày %s", source_label(ui_jstr(s, "source")), day);
	ui_page_start(b, c, title, "/console/statements");
	ui_alert(b, c, statement_done, ARRAY_LEN(statement_done));
	statement_facts(b, s);
	struct ui_table t;
	ui_table_start(&t, b, "lines", "Kết quả đối chiếu từng dòng",
		       "Dòng|Loại|Ngân hàng|Mã gửi ngân hàng|Mã giao dịch|Lúc|#Số tiền|#Phí|Kết quả|Hồ sơ");
	for (int i = 0; i < n; i++) {
		json_t *l = json_array_get(lines, (size_t)i);
		char no[24], at[24];
		snprintf(no, sizeof no, "%lld", (long long)json_integer_value(json_object_get(l, "line")));
		ui_time(ui_jstr(l, "at"), at);
		const char *outcome = json_is_string(json_object_get(l, "outcome")) ? ui_jstr(l, "outcome") : "ignored";
		ui_row(&t);
		ui_td(&t, no);
		ui_td(&t, UI_WORD(line_kinds, ui_jstr(l, "kind")));
		ui_td(&t, ui_bank(ui_jstr(l, "bank")));
		ui_td_mono(&t, ui_jstr(l, "bank_order_ref"));
		ui_td_mono(&t, ui_jstr(l, "bank_txn_id"));
		ui_td(&t, at);
		ui_td_vnd(&t, json_integer_value(json_object_get(l, "amount")));
		ui_td_vnd(&t, json_integer_value(json_object_get(l, "fee")));
		ui_td_tag(&t, strcmp(outcome, "matched") == 0 || strcmp(outcome, "payout") == 0 ? "matched" : "case",
			  UI_WORD(line_outcomes, outcome));
		ui_td_begin(&t);
		if (json_is_string(json_object_get(l, "order_id")))
			ui_link(b, "Xem hồ sơ", "/console/orders/%s", ui_jstr(l, "order_id"));
		ui_td_end(&t);
	}
	ui_table_end(&t, "Tệp không có dòng nào ở trang này.");
	if (more) {
		char cursor[24];
		snprintf(cursor, sizeof cursor, "%lld",
			 (long long)json_integer_value(json_object_get(json_array_get(lines, (size_t)n - 1), "line")));
		char path[80];
		snprintf(path, sizeof path, "/console/statements/%s", req->params[0]);
		ui_pager(b, c, path, cursor);
	}
	evbuffer_add_printf(b, "<p><a href=\"/console/statements\">← Về danh sách tệp</a></p>");
	json_decref(s);
	json_decref(lines);
	ui_page_send(req, 200, b);
}

static void statement_page(struct http_req *req, struct cctx *c)
{
	if (!ui_query(req, c, statement_query, (int)ARRAY_LEN(statement_query)))
		return;
	const char *cursor = query_get(&c->q, "cursor");
	char *end = NULL;
	long long after = cursor ? strtoll(cursor, &end, 10) : 0;
	if (!util_uuid_valid(req->params[0]) || (cursor && (*end || after < 0))) {
		ui_not_found(req);
		return;
	}
	char scope[AUTH_SCOPE_CAP], limit[16], after_s[24];
	snprintf(after_s, sizeof after_s, "%lld", after);
	const char *params[4] = {req->params[0], auth_agency_scope(c->p, scope, sizeof scope), after_s, ui_fetch_limit(c, limit)};
	pg_query(gw.db, "statement_get", 4, params, cfg.db_timeout_ms, statement_found, req);
}
UI_GATE(console_statement, statement_page, PERM_VIEW, UI_GET)

/* ---- the settlement report of a day ---- */

static const struct query_field settlement_query[] = {
	{"date", Q_DATE, NULL, 0, 0},
	{"agency", Q_TEXT, NULL, 0, 32},
};
static const struct query_field download_query[] = {
	{"date", Q_DATE, NULL, 0, 0},
	{"agency", Q_TEXT, NULL, 0, 32},
	{"format", Q_CHOICE, "csv|xlsx|json", 0, 0},
};

enum { ST_AGENCY, ST_NAME, ST_BANK, ST_COUNT, ST_GROSS, ST_REFUNDS, ST_FEES, ST_NET, ST_CASES, ST_PAYOUT, ST_OWED };

/* The report page's agency choices: those the staff member sees. */
struct report_page {
	char date[11];
	struct agency_choice {
		char code[33], label[300];
	} *choices;
	struct ui_word *agencies; /* pointing into choices */
	size_t nagencies;
};

static void report_page_free(void *p)
{
	struct report_page *rp = p;
	free(rp->choices);
	free(rp->agencies);
	free(rp);
}

static void totals_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = ui_result(req, res, st);
	if (!c)
		return;
	struct report_page *rp = c->own;
	const char *agency = query_get(&c->q, "agency");
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, "Báo cáo quyết toán theo ngày", "/console/reports/settlement");
	ui_filters_start(b, "/console/reports/settlement");
	ui_text_field(b, "date", "Ngày nghiệp vụ", "date", rp->date);
	if (rp->nagencies > 1)
		ui_select(b, "agency", "Đơn vị", rp->agencies, rp->nagencies, agency, "Tất cả đơn vị");
	ui_filters_end(b, "Xem báo cáo", "Ngày nghiệp vụ theo giờ Việt Nam (Asia/Ho_Chi_Minh).");
	evbuffer_add_printf(b, "<p class=\"actions\" id=\"downloads\"><span>Tải báo cáo (tổng và từng giao dịch):</span>");
	static const char *const formats[][2] = {{"csv", "CSV"}, {"xlsx", "Excel (XLSX)"}, {"json", "JSON"}};
	for (size_t i = 0; i < ARRAY_LEN(formats); i++) {
		/* the day shown (today when none was asked for) and the agency chosen, if any */
		evbuffer_add_printf(b, " <a class=\"button secondary\" id=\"download-%s\" href=\"/console/reports/settlement/"
				       "download?date=%s&amp;format=%s", formats[i][0], rp->date, formats[i][0]);
		if (agency)
			evbuffer_add_printf(b, "&amp;agency=%s", agency);
		evbuffer_add_printf(b, "\">Tải %s</a>", formats[i][1]);
	}
	evbuffer_add_printf(b, "</p>");
	struct ui_table t;
	ui_table_start(&t, b, "totals", "Tổng theo đơn vị và ngân hàng",
		       "Đơn vị|Ngân hàng|#Số giao dịch|#Tổng thu|#Hoàn tiền|#Phí ngân hàng|#Thực nhận|#Sai lệch mở|"
		       "#Đã chuyển về kho bạc|#Đơn vị còn nợ");
	int64_t sum[4] = {0}, count = 0;
	for (int r = 0; r < PQntuples(res); r++) {
		ui_row(&t);
		if (PQgetisnull(res, r, ST_BANK)) { /* the agency's own row: what it owes (feegate_report_totals) */
			ui_td_agency(&t, PQgetvalue(res, r, ST_NAME), PQgetvalue(res, r, ST_AGENCY));
			ui_td(&t, "Hoàn tiền sau khi đã chuyển về, chờ bù trừ");
			for (int k = 0; k < 7; k++)
				ui_td(&t, "");
			ui_td_vnd(&t, strtoll(PQgetvalue(res, r, ST_OWED), NULL, 10));
			continue;
		}
		ui_td_agency(&t, PQgetvalue(res, r, ST_NAME), PQgetvalue(res, r, ST_AGENCY));
		ui_td(&t, ui_bank(PQgetvalue(res, r, ST_BANK)));
		ui_td(&t, PQgetvalue(res, r, ST_COUNT));
		count += strtoll(PQgetvalue(res, r, ST_COUNT), NULL, 10);
		for (int k = 0; k < 4; k++) {
			int64_t v = strtoll(PQgetvalue(res, r, ST_GROSS + k), NULL, 10);
			sum[k] += v;
			ui_td_vnd(&t, v);
		}
		ui_td(&t, PQgetvalue(res, r, ST_CASES));
		if (PQgetisnull(res, r, ST_PAYOUT))
			ui_td(&t, "chưa thấy");
		else
			ui_td_vnd(&t, strtoll(PQgetvalue(res, r, ST_PAYOUT), NULL, 10));
		ui_td(&t, "");
	}
	if (t.rows) {
		char n[24];
		snprintf(n, sizeof n, "%lld", (long long)count);
		ui_total_row(&t);
		ui_td(&t, "Cộng");
		ui_td(&t, "");
		ui_td(&t, n);
		for (int k = 0; k < 4; k++)
			ui_td_vnd(&t, sum[k]);
		ui_td(&t, "");
		ui_td(&t, "");
		ui_td(&t, "");
	}
	ui_table_end(&t, "Không có khoản thu nào trong ngày này.");
	evbuffer_add_printf(b, "<p class=\"hint\">Thực nhận = tổng thu − hoàn tiền − phí ngân hàng. Tệp tải về ghi giờ "
			       "địa phương kèm múi giờ (+07:00); mỗi lần tải được ghi vào nhật ký kiểm toán.</p>");
	ui_page_send(req, 200, b);
}

/* console_agencies */
struct agency_row {
	const char *id, *code, *name;
};
static const struct pg_col agency_cols[] = {
	PG_COL(struct agency_row, id, PG_TEXT),
	PG_COL(struct agency_row, code, PG_TEXT),
	PG_COL(struct agency_row, name, PG_TEXT),
};

static void report_agencies(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = ui_result(req, res, st);
	if (!c)
		return;
	struct report_page *rp = c->own;
	const char *agency = query_get(&c->q, "agency");
	size_t n = (size_t)PQntuples(res);
	rp->choices = xcalloc(n ? n : 1, sizeof *rp->choices);
	rp->agencies = xcalloc(n ? n : 1, sizeof *rp->agencies);
	char only[40] = "";
	struct agency_row row;
	for (size_t i = 0; i < n && PG_ROW(res, (int)i, agency_cols, &row); i++) {
		struct agency_choice *a = &rp->choices[i];
		snprintf(a->code, sizeof a->code, "%s", row.code);
		snprintf(a->label, sizeof a->label, "%s (%s)", row.name, a->code);
		rp->agencies[i] = (struct ui_word){a->code, a->label};
		if (agency && strcmp(agency, a->code) == 0)
			snprintf(only, sizeof only, "{%s}", row.id);
	}
	rp->nagencies = n;
	if (agency && !only[0]) {
		ui_not_found(req); /* another agency's report, or none such */
		return;
	}
	char scope[AUTH_SCOPE_CAP];
	const char *params[2] = {rp->date, only[0] ? only : auth_agency_scope(c->p, scope, sizeof scope)};
	pg_query(gw.db, "console_settlement_totals", 2, params, cfg.db_timeout_ms, totals_found, req);
}

static void settlement_page(struct http_req *req, struct cctx *c)
{
	if (!ui_query(req, c, settlement_query, (int)ARRAY_LEN(settlement_query)))
		return;
	struct report_page *rp = xcalloc(1, sizeof *rp);
	c->own = rp;
	c->own_free = report_page_free;
	if (query_get(&c->q, "date"))
		snprintf(rp->date, sizeof rp->date, "%s", query_get(&c->q, "date"));
	else
		ui_today(rp->date);
	char scope[AUTH_SCOPE_CAP];
	const char *params[1] = {auth_agency_scope(c->p, scope, sizeof scope)};
	pg_query(gw.db, "console_agencies", 1, params, cfg.db_timeout_ms, report_agencies, req);
}
UI_GATE(console_settlement, settlement_page, PERM_VIEW, UI_GET)

static void download_page(struct http_req *req, struct cctx *c)
{
	if (!ui_query(req, c, download_query, (int)ARRAY_LEN(download_query)))
		return;
	struct report_request r = {.format = REPORT_CSV};
	if (query_get(&c->q, "date"))
		snprintf(r.from, sizeof r.from, "%s", query_get(&c->q, "date"));
	else
		ui_today(r.from);
	snprintf(r.to, sizeof r.to, "%s", r.from);
	snprintf(r.agency, sizeof r.agency, "%s", query_get(&c->q, "agency") ? query_get(&c->q, "agency") : "");
	if (query_get(&c->q, "format") && !report_format_parse(query_get(&c->q, "format"), &r.format))
		r.format = REPORT_CSV;
	char scope[AUTH_SCOPE_CAP];
	r.scope = auth_agency_scope(c->p, scope, sizeof scope);
	reports_settlement_send(req, &r, ui_export_refused);
}
UI_GATE(console_settlement_download, download_page, PERM_EXPORT, UI_GET)

/* ---- refunds waiting for a second finance member ---- */

static const struct query_field refunds_query[] = {
	{"done", Q_CHOICE, "approved|asked|confirmed", 0, 0},
};
static const struct ui_word refunds_done[] = {
	{"approved", "Đã phê duyệt: lệnh hoàn tiền đã được tạo và gửi tới ngân hàng."},
	{"asked", "Đã ghi nhận xác nhận thứ nhất. Cần một cán bộ tài chính khác xác nhận lần hai."},
	{"confirmed", "Đã xác nhận lần hai: khoản hoàn tiền đã hoàn tất và được ghi sổ."},
};

/* What both lists show of a refund first: when, the order, the agency, why, how much. */
static void refund_cells(struct ui_table *t, json_t *r)
{
	ui_row(t);
	ui_td_time(t, ui_jstr(r, "at"));
	ui_td_link(t, ui_jstr(r, "reference"), "/console/orders/%s", ui_jstr(r, "order_id"));
	ui_td(t, ui_jstr(r, "agency"));
	ui_td(t, ui_jstr(r, "reason"));
	ui_td_vnd(t, json_integer_value(json_object_get(r, "amount")));
}

/* The one button of a refund's row, named for a screen reader with the order's reference. */
static void refund_button(struct evbuffer *b, struct cctx *c, const char *action_fmt, json_t *r, const char *label,
			  const char *aria)
{
	char action[96], *named = xasprintf("%s, hồ sơ %s", aria, ui_jstr(r, "reference"));
	snprintf(action, sizeof action, action_fmt, ui_jstr(r, "id"));
	ui_button_form(b, c, action, label, named, false);
	free(named);
}

static void approvals_table(struct evbuffer *b, struct cctx *c, json_t *list)
{
	evbuffer_add_printf(b, "<h2>Hoàn tiền lớn chờ phê duyệt</h2><p class=\"hint\">Khoản hoàn trên ");
	ui_vnd(b, cfg.refund_approval_vnd);
	evbuffer_add_printf(b, " chỉ được tạo khi một cán bộ tài chính khác người đề nghị phê duyệt.</p>");
	struct ui_table t;
	ui_table_start(&t, b, "approvals", NULL, "Lúc đề nghị|Mã hồ sơ|Đơn vị|Lý do|#Số tiền|Người đề nghị|Thao tác");
	size_t i;
	json_t *a;
	json_array_foreach(list, i, a)
	{
		refund_cells(&t, a);
		ui_td(&t, ui_jstr(a, "requested_by_email"));
		ui_td_begin(&t);
		refund_button(b, c, "/console/refund-approvals/%s/approve", a, "Phê duyệt", "Phê duyệt hoàn tiền");
		if (strcmp(ui_jstr(a, "requested_by"), c->s.staff_id) == 0)
			evbuffer_add_printf(b, "<div class=\"hint\">Bạn đã đề nghị; cần người khác phê duyệt.</div>");
		ui_td_end(&t);
	}
	ui_table_end(&t, "Không có khoản hoàn nào chờ phê duyệt.");
}

static void pending_table(struct evbuffer *b, struct cctx *c, json_t *list)
{
	const adapter *transfer = adapter_transfer();
	evbuffer_add_printf(b, "<h2>Hoàn tiền đang chờ</h2><p class=\"hint\">Khoản hoàn qua %s là lệnh chi: cán bộ "
			       "tài chính xác nhận đã chuyển tiền, rồi một cán bộ khác xác nhận lần hai. Các ngân hàng "
			       "khác tự xác nhận.</p>",
			    transfer ? transfer->display_name : "chuyển khoản");
	struct ui_table t;
	ui_table_start(&t, b, "pending", NULL, "Lúc yêu cầu|Mã hồ sơ|Đơn vị|Lý do|#Số tiền|Ngân hàng|Xác nhận");
	size_t i;
	json_t *r;
	json_array_foreach(list, i, r)
	{
		refund_cells(&t, r);
		ui_td(&t, ui_bank(ui_jstr(r, "bank")));
		ui_td_begin(&t);
		bool first = json_is_string(json_object_get(r, "confirmed_by"));
		if (!refund_confirmed_by_finance(ui_jstr(r, "bank"))) {
			evbuffer_add_printf(b, "<span class=\"hint\">Ngân hàng tự xác nhận</span>");
		} else if (first) {
			char when[24];
			ui_time(ui_jstr(r, "confirmed_at"), when);
			evbuffer_add_printf(b, "<div class=\"hint\">Lần 1: ");
			ui_esc(b, ui_jstr(r, "confirmed_by_email"));
			evbuffer_add_printf(b, ", %s</div>", when);
			refund_button(b, c, "/console/refunds/%s/confirm", r, "Xác nhận lần 2", "Xác nhận lần hai đã chuyển tiền");
		} else {
			refund_button(b, c, "/console/refunds/%s/confirm", r, "Xác nhận đã chuyển", "Xác nhận đã chuyển tiền");
		}
		ui_td_end(&t);
	}
	ui_table_end(&t, "Không có khoản hoàn nào đang chờ.");
}

/* console_refunds: refunds waiting for a second member's approval, and pending refunds, JSON */
struct waiting_row {
	const char *approvals, *pending;
};
static const struct pg_col waiting_cols[] = {
	PG_COL(struct waiting_row, approvals, PG_TEXT),
	PG_COL(struct waiting_row, pending, PG_TEXT),
};

static void refunds_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct waiting_row row;
	struct cctx *c = UI_RESULT_ROW(req, res, st, false, waiting_cols, &row);
	if (!c)
		return;
	json_t *approvals = json_loads(row.approvals, 0, NULL);
	json_t *pending = json_loads(row.pending, 0, NULL);
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, "Hoàn tiền chờ xử lý", "/console/refunds");
	ui_alert(b, c, refunds_done, ARRAY_LEN(refunds_done));
	approvals_table(b, c, approvals);
	pending_table(b, c, pending);
	json_decref(approvals);
	json_decref(pending);
	ui_page_send(req, c->alert ? c->status : 200, b);
}

static void refunds_load(struct http_req *req, struct cctx *c)
{
	pg_query(gw.db, "console_refunds", 0, NULL, cfg.db_timeout_ms, refunds_found, req);
}

UI_QUERY_PAGE(console_refunds, refunds_query, refunds_load, PERM_REFUND)

static void refund_acted(struct http_req *req, const struct refund_result *r)
{
	struct cctx *c = req->state;
	switch (r->outcome) {
	case REFUND_CREATED:
	case REFUND_REPLAY:
		ui_done(req, "/console/refunds", "approved");
		return;
	case REFUND_ASKED:
		ui_done(req, "/console/refunds", "asked");
		return;
	case REFUND_CONFIRMED:
		ui_done(req, "/console/refunds", "confirmed");
		return;
	case REFUND_SAME_PERSON:
		ui_fail(c, 403, "Bạn không thể tự phê duyệt hoặc tự xác nhận lần hai khoản hoàn do chính mình đề nghị.",
			"Quy tắc hai người: cần một cán bộ tài chính khác thực hiện bước này.");
		break;
	case REFUND_ALREADY_APPROVED:
		ui_fail(c, 409, "Khoản hoàn này đã được phê duyệt trước đó.", NULL);
		break;
	case REFUND_TOO_MUCH:
	case REFUND_NOT_PAID:
		ui_fail(c, 409, "Không tạo được lệnh hoàn: số tiền vượt quá phần đã thu và chưa hoàn của hồ sơ.", NULL);
		break;
	case REFUND_BANK_CONFIRMS:
		ui_fail(c, 409, "Khoản hoàn ở ngân hàng này do ngân hàng tự xác nhận.", NULL);
		break;
	case REFUND_NOT_PENDING:
		ui_fail(c, 409, "Khoản hoàn này không còn chờ xác nhận.", NULL);
		break;
	case REFUND_KEY_REUSED:
	case REFUND_KEY_IN_USE:
		ui_fail(c, 409, "Khoản hoàn đang được xử lý; hãy tải lại trang.", NULL);
		break;
	case REFUND_NO_ORDER:
	case REFUND_NO_APPROVAL:
	case REFUND_NO_REFUND:
		ui_not_found(req);
		return;
	case REFUND_FAILED:
		ui_db_failed(req, r->res, r->st);
		return;
	}
	refunds_load(req, c);
}

static void refund_approve_page(struct http_req *req, struct cctx *c)
{
	refund_approve(req, req->params[0], refund_acted);
}
UI_GATE(console_refund_approve, refund_approve_page, PERM_REFUND, UI_POST)

static void refund_confirm_page(struct http_req *req, struct cctx *c)
{
	refund_confirm(req, req->params[0], refund_acted);
}
UI_GATE(console_refund_confirm, refund_confirm_page, PERM_REFUND, UI_POST)
