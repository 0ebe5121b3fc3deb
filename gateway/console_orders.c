/*
 * The console's collections: the order search (dates, status, bank, reference, payer name,
 * paged newest first), its download as CSV or XLSX with the same filters, and an order's page
 * (attempts, bank notifications, ledger transfers, webhooks, refunds).
 */
#include "gateway/console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "gateway/console_ui.h"
#include "gateway/reports.h"
#include "lib/config.h"
#include "lib/mem.h"
#include "lib/pgrow.h"

static const struct ui_word order_statuses[] = {
	{"created", "Mới tạo"},	      {"pending", "Chờ thanh toán"},	 {"succeeded", "Đã thanh toán"},
	{"cancelled", "Đã hủy"},      {"expired", "Hết hạn"},		 {"partially_refunded", "Hoàn một phần"},
	{"refunded", "Đã hoàn tiền"},
};

/* The search's filters, and the download's: the same names, so the page's links carry them. */
#define ORDERS_FILTERS                                                                                 \
	{"from", Q_DATE, NULL, 0, 0}, {"to", Q_DATE, NULL, 0, 0},                                       \
	{"status", Q_CHOICE, "created|pending|succeeded|cancelled|expired|partially_refunded|refunded", 0, 0}, \
	{"bank", Q_CHOICE, ADAPTER_CHOICES, 0, 0}, {"reference", Q_TEXT, NULL, 0, 64},              \
	{"payer", Q_TEXT, NULL, 0, 100}

static const struct query_field orders_query[] = {ORDERS_FILTERS, QUERY_LIST};
static const struct query_field export_query[] = {ORDERS_FILTERS, {"format", Q_CHOICE, "csv|xlsx", 0, 0}};

enum { OF_ID, OF_REF, OF_AGENCY, OF_AMOUNT, OF_STATUS, OF_CREATED, OF_PAYER, OF_BANKS };

static void orders_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct cctx *c = ui_result(req, res, st);
	if (!c)
		return;
	bool more;
	int n = ui_page_rows(c, PQntuples(res), &more);
	struct evbuffer *b = evbuffer_new();
	ui_page_start(b, c, "Giao dịch", "/console/orders");
	ui_filters_start(b, "/console/orders");
	ui_text_field(b, "from", "Từ ngày", "date", query_get(&c->q, "from"));
	ui_text_field(b, "to", "Đến ngày", "date", query_get(&c->q, "to"));
	ui_select(b, "status", "Trạng thái", order_statuses, ARRAY_LEN(order_statuses), query_get(&c->q, "status"), "Tất cả");
	struct ui_word banks[16];
	ui_select(b, "bank", "Ngân hàng", banks, ui_bank_choices(banks, ARRAY_LEN(banks)), query_get(&c->q, "bank"), "Tất cả");
	ui_text_field(b, "reference", "Mã hồ sơ (bắt đầu bằng)", "text", query_get(&c->q, "reference"));
	ui_text_field(b, "payer", "Tên người nộp", "text", query_get(&c->q, "payer"));
	ui_filters_end(b, "Tìm kiếm", "Ngày tạo hồ sơ, theo giờ Việt Nam.");
	if (auth_can(c->p, PERM_EXPORT)) {
		evbuffer_add_printf(b, "<p class=\"actions\"><span>Tải kết quả lọc:</span> <a class=\"button secondary\" "
				       "id=\"download-csv\" href=\"");
		ui_link_query(b, c, "/console/orders/export", "format=csv");
		evbuffer_add_printf(b, "\">Tải CSV</a> <a class=\"button secondary\" id=\"download-xlsx\" href=\"");
		ui_link_query(b, c, "/console/orders/export", "format=xlsx");
		evbuffer_add_printf(b, "\">Tải Excel (XLSX)</a></p>");
	}
	struct ui_table t;
	ui_table_start(&t, b, "orders", "Kết quả",
		       "Thời gian tạo|Mã hồ sơ|Đơn vị|Người nộp|Ngân hàng|Trạng thái|#Số tiền");
	for (int r = 0; r < n; r++) {
		ui_row(&t);
		ui_td(&t, PQgetvalue(res, r, OF_CREATED));
		ui_td_link(&t, PQgetvalue(res, r, OF_REF), "/console/orders/%s", PQgetvalue(res, r, OF_ID));
		ui_td(&t, PQgetvalue(res, r, OF_AGENCY));
		ui_td(&t, PQgetvalue(res, r, OF_PAYER));
		ui_td(&t, ui_bank(PQgetvalue(res, r, OF_BANKS)));
		ui_td_tag(&t, PQgetvalue(res, r, OF_STATUS), UI_WORD(order_statuses, PQgetvalue(res, r, OF_STATUS)));
		ui_td_vnd(&t, strtoll(PQgetvalue(res, r, OF_AMOUNT), NULL, 10));
	}
	ui_table_end(&t, "Không có giao dịch phù hợp.");
	if (more)
		ui_pager(b, c, "/console/orders", PQgetvalue(res, n - 1, OF_ID));
	ui_page_send(req, 200, b);
}

static void orders_page(struct http_req *req, struct cctx *c)
{
	if (!ui_query(req, c, orders_query, (int)ARRAY_LEN(orders_query)))
		return;
	const char *cursor;
	if (!ui_uuid_cursor(req, c, &cursor))
		return;
	char scope[AUTH_SCOPE_CAP], lim[16];
	const char *params[9] = {auth_agency_scope(c->p, scope, sizeof scope),
				 query_get(&c->q, "from"),
				 query_get(&c->q, "to"),
				 query_get(&c->q, "status"),
				 query_get(&c->q, "bank"),
				 query_get(&c->q, "reference"),
				 query_get(&c->q, "payer"),
				 cursor,
				 ui_fetch_limit(c, lim)};
	pg_query(gw.db, "orders_find_staff", 9, params, cfg.db_timeout_ms, orders_found, req);
}
UI_GATE(console_orders, orders_page, PERM_VIEW, UI_GET)

static void orders_export_page(struct http_req *req, struct cctx *c)
{
	if (!ui_query(req, c, export_query, (int)ARRAY_LEN(export_query)))
		return;
	struct orders_filter f = {0};
	char scope[AUTH_SCOPE_CAP];
	f.scope = auth_agency_scope(c->p, scope, sizeof scope);
	f.from = query_get(&c->q, "from");
	f.to = query_get(&c->q, "to");
	f.status = query_get(&c->q, "status");
	f.bank = query_get(&c->q, "bank");
	f.reference = query_get(&c->q, "reference");
	f.payer = query_get(&c->q, "payer");
	enum report_format format = REPORT_CSV;
	if (query_get(&c->q, "format") && !report_format_parse(query_get(&c->q, "format"), &format))
		format = REPORT_CSV;
	/* the export copies the filters, then frees this context (which holds them) */
	reports_orders_send(req, &f, format, ui_export_refused);
}

UI_GATE(console_orders_export, orders_export_page, PERM_EXPORT, UI_GET)

/* The order page's lists, each shown from its JSON: a column's key and how its value reads. */
enum shown { SHOW_TEXT, SHOW_MONO, SHOW_VND, SHOW_INT, SHOW_BANK, SHOW_STATUS, SHOW_TIME };
struct json_col {
	const char *key;
	enum shown how;
};
/* the detail's times are Vietnam time already (feegate_order_detail_json); an attempt's are UTC */
static const struct json_col attempt_cols[] = {
	{"bank", SHOW_BANK}, {"bank_order_ref", SHOW_MONO}, {"bank_txn_id", SHOW_MONO},
	{"status", SHOW_STATUS}, {"updated_at", SHOW_TIME}};
static const struct json_col notification_cols[] = {
	{"at", SHOW_TEXT}, {"bank", SHOW_BANK}, {"source", SHOW_TEXT}, {"outcome", SHOW_TEXT}, {"amount", SHOW_VND}};
static const struct json_col transfer_cols[] = {
	{"at", SHOW_TEXT}, {"code", SHOW_TEXT}, {"debit", SHOW_MONO}, {"credit", SHOW_MONO}, {"amount", SHOW_VND}};
static const struct json_col webhook_cols[] = {
	{"at", SHOW_TEXT}, {"type", SHOW_TEXT}, {"status", SHOW_TEXT}, {"attempts", SHOW_INT}};
static const struct json_col refund_cols[] = {
	{"at", SHOW_TEXT}, {"reason", SHOW_TEXT}, {"status", SHOW_STATUS}, {"amount", SHOW_VND}};

static void json_table(struct evbuffer *b, const char *title, const char *id, const char *cols, json_t *rows,
		       const struct json_col *spec, size_t n)
{
	struct ui_table t;
	size_t i;
	json_t *v;
	evbuffer_add_printf(b, "<h2>%s</h2>", title);
	ui_table_start(&t, b, id, NULL, cols);
	json_array_foreach(rows, i, v)
	{
		ui_row(&t);
		for (size_t k = 0; k < n; k++) {
			const char *text = ui_jstr(v, spec[k].key);
			json_int_t num = json_integer_value(json_object_get(v, spec[k].key));
			switch (spec[k].how) {
			case SHOW_TEXT: ui_td(&t, text); break;
			case SHOW_MONO: ui_td_mono(&t, text); break;
			case SHOW_VND: ui_td_vnd(&t, num); break;
			case SHOW_INT: ui_td_int(&t, num); break;
			case SHOW_BANK: ui_td(&t, ui_bank(text)); break;
			case SHOW_STATUS: ui_td_tag(&t, text, UI_WORD(ui_statuses, text)); break;
			case SHOW_TIME: ui_td_time(&t, text); break;
			}
		}
	}
	ui_table_end(&t, "Chưa có.");
}

/* console_order */
struct console_order_row {
	const char *doc, *detail, *agency_name; /* the order as the API renders it, its detail (JSON) */
};
static const struct pg_col console_order_cols[] = {
	PG_COL(struct console_order_row, doc, PG_TEXT),
	PG_COL(struct console_order_row, detail, PG_TEXT),
	PG_COL(struct console_order_row, agency_name, PG_TEXT),
};

static void order_found(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct console_order_row row;
	struct cctx *c = UI_RESULT_ROW(req, res, st, true, console_order_cols, &row);
	if (!c)
		return;
	json_t *o = json_loads(row.doc, 0, NULL);
	json_t *d = json_loads(row.detail, 0, NULL);
	if (!o || !d) {
		json_decref(o);
		json_decref(d);
		ui_db_failed(req, NULL, PG_UNAVAILABLE);
		return;
	}
	struct evbuffer *b = evbuffer_new();
	char title[128], t[24];
	snprintf(title, sizeof title, "Hồ sơ %s", ui_jstr(o, "reference"));
	ui_page_start(b, c, title, "/console/orders");
	ui_facts_start(b, NULL);
	ui_fact_begin(b, "Đơn vị");
	ui_esc(b, row.agency_name);
	evbuffer_add_printf(b, " (");
	ui_esc(b, ui_jstr(o, "agency"));
	evbuffer_add_printf(b, ")");
	ui_fact_end(b);
	ui_fact(b, "Nội dung", ui_jstr(o, "description"));
	ui_fact_begin(b, "Số tiền");
	evbuffer_add_printf(b, "<span id=\"amount\">");
	ui_vnd(b, json_integer_value(json_object_get(o, "amount")));
	evbuffer_add_printf(b, "</span>");
	ui_fact_end(b);
	ui_fact_begin(b, "Trạng thái");
	evbuffer_add_printf(b, "<span class=\"tag ");
	ui_esc(b, ui_jstr(o, "status"));
	evbuffer_add_printf(b, "\" id=\"status\">%s</span>", UI_WORD(ui_statuses, ui_jstr(o, "status")));
	ui_fact_end(b);
	ui_fact(b, "Người nộp", ui_jstr(json_object_get(o, "payer"), "name"));
	ui_time(ui_jstr(o, "created_at"), t);
	ui_fact(b, "Tạo lúc", t);
	ui_fact_begin(b, "Mã giao dịch");
	evbuffer_add_printf(b, "<span class=\"mono\">");
	ui_esc(b, ui_jstr(o, "id"));
	evbuffer_add_printf(b, "</span> · ");
	ui_link(b, "Sai lệch của hồ sơ", "/console/cases?order_id=%s", ui_jstr(o, "id"));
	ui_fact_end(b);
	ui_facts_end(b);

	json_table(b, "Lần thanh toán", "attempts", "Ngân hàng|Mã gửi ngân hàng|Mã ngân hàng|Trạng thái|Cập nhật",
		   json_object_get(o, "attempts"), attempt_cols, ARRAY_LEN(attempt_cols));
	json_table(b, "Thông báo từ ngân hàng", NULL, "Lúc|Ngân hàng|Nguồn|Kết quả|#Số tiền",
		   json_object_get(d, "notifications"), notification_cols, ARRAY_LEN(notification_cols));
	json_table(b, "Bút toán sổ cái", NULL, "Lúc|Loại|Nợ|Có|#Số tiền", json_object_get(d, "transfers"), transfer_cols,
		   ARRAY_LEN(transfer_cols));
	json_table(b, "Webhook tới cổng dịch vụ công", NULL, "Lúc|Sự kiện|Trạng thái|#Số lần gửi",
		   json_object_get(d, "webhooks"), webhook_cols, ARRAY_LEN(webhook_cols));
	json_table(b, "Hoàn tiền", NULL, "Lúc|Lý do|Trạng thái|#Số tiền", json_object_get(d, "refunds"), refund_cols,
		   ARRAY_LEN(refund_cols));
	json_decref(o);
	json_decref(d);
	ui_page_send(req, 200, b);
}

static void order_page(struct http_req *req, struct cctx *c)
{
	if (!util_uuid_valid(req->params[0])) {
		ui_not_found(req);
		return;
	}
	char scope[AUTH_SCOPE_CAP];
	const char *params[3] = {req->params[0], auth_agency_scope(c->p, scope, sizeof scope), cfg.public_url};
	pg_query(gw.db, "console_order", 3, params, cfg.db_timeout_ms, order_found, req);
}
UI_GATE(console_order, order_page, PERM_VIEW, UI_GET)
