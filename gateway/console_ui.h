#ifndef FEEGATE_CONSOLE_UI_H
#define FEEGATE_CONSOLE_UI_H
/*
 * What every console page is made of, for the console's own files (console.c: sign-in and the
 * dashboard; console_orders.c; console_admin.c: audit log, staff and tokens; console_money.c:
 * cases, statements, the settlement report, refunds).
 *
 * A page is one handler behind a gate (UI_GATE): the session is loaded, a POST's CSRF field
 * checked, a pending TOTP enrolment enforced and the role's permission asked, before the page
 * function runs with its request context (struct cctx). Pages are written into an evbuffer
 * between ui_page_start and ui_page_send (one layout, navigation by role, a footer saying times
 * are Vietnam time), with the pieces they repeat: escaped text, amounts as "200.000 ₫", Vietnam
 * time, tables that stack into labelled rows on a phone, filter forms, the pager.
 */
#include <event2/buffer.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "gateway/gateway.h"
#include "gateway/session.h"
#include "gateway/staff.h"
#include "lib/passwd.h"
#include "lib/pgrow.h"
#include "lib/query.h"

/* Everything one console request carries from step to step. */
struct cctx {
	struct session s;
	bool signed_in;
	struct principal *p;
	struct evkeyvalq form;
	bool has_form;
	struct query q;
	bool has_q;
	const char *alert;     /* an error shown at the top of the page being rendered (static text) */
	char alert_detail[512]; /* more of it, escaped when shown (a refused file's reason) */
	int status;            /* the page's HTTP status when it carries an alert */
	const char *action;    /* the word of the form posted (a case's acknowledge | resolve | approve) */
	void *own;             /* a page's own state, freed with own_free */
	void (*own_free)(void *own);
	/* sign-in (console.c) */
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
	char open_cases[24];   /* the dashboard's count, read before its page */
};

struct cctx *cctx_of(struct http_req *req);
bool ui_parse_form(struct http_req *req, struct cctx *c);
const char *ui_form(struct cctx *c, const char *name);
/* The query string checked against fields into c->q, empty values dropped first (a GET form
 * sends every field, filled or not); false when it answered with a page saying what is wrong. */
bool ui_query(struct http_req *req, struct cctx *c, const struct query_field *fields, int n) WARN_UNUSED;

/* ---- the gate ---- */

typedef void (*ui_page_fn)(struct http_req *req, struct cctx *c);

enum {
	UI_GET = 0,
	UI_POST = 1 << 0,   /* a form: its CSRF field is checked before the page runs */
	UI_ENROL = 1 << 1,  /* opens while TOTP enrolment is pending */
	UI_STREAM = 1 << 2, /* a POST whose body the page streams (an upload): it checks the CSRF field itself */
};
#define UI_ANYONE (-1) /* any signed-in staff, whatever the role */

struct ui_gate {
	ui_page_fn page;
	int perm; /* an enum perm, or UI_ANYONE */
	int flags;
};
void ui_gate_run(struct http_req *req, struct session *s, const struct ui_gate *g);
/* True when token is the session's CSRF token (constant time). */
bool ui_csrf_ok(const struct cctx *c, const char *token) WARN_UNUSED;

/* Defines the route handler fn_name: the form parsed (UI_POST), the session loaded, then the gate. */
#define UI_GATE(fn_name, page_, perm_, flags_)                                                            \
	static void fn_name##_gated(struct http_req *req, struct session *s)                               \
	{                                                                                                   \
		static const struct ui_gate g = {page_, perm_, flags_};                                     \
		ui_gate_run(req, s, &g);                                                                    \
	}                                                                                                   \
	void fn_name(struct http_req *req)                                                                  \
	{                                                                                                   \
		struct cctx *c = cctx_of(req);                                                              \
		if (((flags_) & UI_POST) && !ui_parse_form(req, c)) {                                       \
			ui_message(req, 400, "Biểu mẫu không hợp lệ", "Không đọc được biểu mẫu.");       \
			return;                                                                             \
		}                                                                                           \
		session_load(req, fn_name##_gated);                                                         \
	}
/* A GET page that takes fields as its query, then load(req, c) (which a form's answer reuses to
 * show the page again). */
#define UI_QUERY_PAGE(fn_name, fields_, load_, perm_)                                                      \
	static void fn_name##_page(struct http_req *req, struct cctx *c)                                   \
	{                                                                                                   \
		if (ui_query(req, c, fields_, (int)ARRAY_LEN(fields_)))                                     \
			load_(req, c);                                                                      \
	}                                                                                                   \
	UI_GATE(fn_name, fn_name##_page, perm_, UI_GET)

/* ---- the layout ---- */

/* One word of the API's vocabulary and its Vietnamese label. */
struct ui_word {
	const char *key, *label;
};

void ui_page_start(struct evbuffer *b, struct cctx *c, const char *title, const char *here);
/* Ends the page, answers it with the console's headers and frees b. */
void ui_page_send(struct http_req *req, int status, struct evbuffer *b);
/* The alert of c (ui_fail), or else the success message of the page's ?done= word, one of
 * done's keys (the page's query names a "done" field). */
void ui_alert(struct evbuffer *b, const struct cctx *c, const struct ui_word *done, size_t n);
/* Sets the alert the page about to be rendered shows, and its status. */
void ui_fail(struct cctx *c, int status, const char *alert, const char *detail);
void ui_message(struct http_req *req, int status, const char *title, const char *msg);
void ui_not_found(struct http_req *req);
void ui_db_failed(struct http_req *req, PGresult *res, enum pg_status st);
/* A page's query answered: the request's context, or NULL when it failed (answered then). */
struct cctx *ui_result(struct http_req *req, PGresult *res, enum pg_status st);
/* The same for the query of one object: NULL also when no row came (answered 404: none such, or
 * another agency's). */
struct cctx *ui_result_one(struct http_req *req, PGresult *res, enum pg_status st);
/* ui_result_one (one: the query of one object) or ui_result, then the first row decoded into
 * out by cols (answered 500 when its columns are not those). */
struct cctx *ui_result_row(struct http_req *req, PGresult *res, enum pg_status st, bool one, const struct pg_col *cols,
			   size_t n, void *out);
#define UI_RESULT_ROW(req, res, st, one, cols, out) ui_result_row((req), (res), (st), (one), (cols), ARRAY_LEN(cols), (out))
/* The rows a list page fetches: one more than the query's limit, as text for its query. */
const char *ui_fetch_limit(const struct cctx *c, char buf[16]);
/* The query's cursor when it is absent or an id of the list's rows (a UUID); false when it
 * answered that the cursor is not one of ours. */
bool ui_uuid_cursor(struct http_req *req, const struct cctx *c, const char **cursor) WARN_UNUSED;
/* Of n rows fetched for a page of the query's limit (one more than it, to know), how many to
 * show; *more says whether a next page exists. */
int ui_page_rows(const struct cctx *c, int n, bool *more);
/* A page for the request's reply without the session's layout (an export that failed after the
 * request was handed over). */
void ui_plain_message(struct http_req *req, int status, const char *title, const char *msg);
/* An export refused before its first byte (reports.h's export_refuse_fn): the request is the
 * export's by then, so the page goes without the session's layout. */
void ui_export_refused(struct http_req *req, enum err code, const char *field, const char *message);
/* Redirects to the page a POST came from, with ?done=word (its success message). */
void ui_done(struct http_req *req, const char *path, const char *word);

/* ---- text ---- */

void ui_esc(struct evbuffer *b, const char *s);
void ui_vnd(struct evbuffer *b, int64_t amount);
/* ISO 8601 UTC as Vietnam time, "dd/mm/yyyy hh:mm:ss" ("" when iso is not a time). */
void ui_time(const char *iso, char out[24]);
/* A string member of a JSON object, "" when absent. */
const char *ui_jstr(json_t *o, const char *key);
/* A YYYY-MM-DD date as "dd/mm/yyyy" (as it came when it is not one). */
void ui_day(const char *iso, char out[11]);
/* A bank's name for people (the treasury, for a statement's cases, too). */
const char *ui_bank(const char *code);
/* Today's business day in Vietnam, YYYY-MM-DD. */
void ui_today(char out[11]);

const char *ui_word(const struct ui_word *words, size_t n, const char *key);
#define UI_WORD(words, key) ui_word(words, ARRAY_LEN(words), key)
extern const struct ui_word ui_roles[4];
extern const struct ui_word ui_statuses[10];
/* Every bank, for a select: its name and its name for people; returns how many (at most cap). */
size_t ui_bank_choices(struct ui_word *out, size_t cap);

/* ---- forms ---- */

void ui_csrf_field(struct evbuffer *b, const char *csrf);
void ui_text_field(struct evbuffer *b, const char *name, const char *label, const char *type, const char *cur);
/* A select of words, the first option "all" (value "") when all_label is not NULL. */
void ui_select(struct evbuffer *b, const char *name, const char *label, const struct ui_word *opts, size_t n,
	       const char *cur, const char *all_label);
/* A filter form (GET) of the page at action: ui_filters_start, its fields, ui_filters_end. */
void ui_filters_start(struct evbuffer *b, const char *action);
void ui_filters_end(struct evbuffer *b, const char *button, const char *hint);
/* A one-button form posting to action (with the CSRF field); label is the button's text,
 * aria (when not NULL) what a screen reader says of it. */
void ui_button_form(struct evbuffer *b, const struct cctx *c, const char *action, const char *label, const char *aria,
		    bool danger);
/* "Next page" to path with c's query values kept and cursor set. */
void ui_pager(struct evbuffer *b, const struct cctx *c, const char *path, const char *cursor);
/* path?query with c's query values (but limit and cursor), then extra ("format=csv"). */
void ui_link_query(struct evbuffer *b, const struct cctx *c, const char *path, const char *extra);

/* ---- tables ---- */

#define UI_TABLE_COLS 16
/* A table being written: its columns' labels (each cell repeats its own, so that on a phone a
 * row stacks into labelled lines) and which are amounts (right-aligned). */
struct ui_table {
	struct evbuffer *b;
	char cols[512];
	const char *label[UI_TABLE_COLS];
	bool num[UI_TABLE_COLS];
	int ncols, col, rows;
};
/* cols: "Lúc|Loại|#Số tiền", a leading '#' marks an amount column; id and caption may be NULL. */
void ui_table_start(struct ui_table *t, struct evbuffer *b, const char *id, const char *caption, const char *cols);
void ui_row(struct ui_table *t);       /* starts a row */
void ui_total_row(struct ui_table *t); /* starts the row of the table's sums */
void ui_td(struct ui_table *t, const char *text);
void ui_td_vnd(struct ui_table *t, int64_t amount);
void ui_td_mono(struct ui_table *t, const char *text);
void ui_td_tag(struct ui_table *t, const char *cls, const char *label);
void ui_td_time(struct ui_table *t, const char *iso); /* ISO 8601 UTC, shown as Vietnam time */
void ui_td_int(struct ui_table *t, long long v);
/* An agency's name with its code as a tag. */
void ui_td_agency(struct ui_table *t, const char *name, const char *code);
/* A cell holding one link: text escaped, href printf'd. */
void ui_td_link(struct ui_table *t, const char *text, const char *href_fmt, ...) __attribute__((format(printf, 3, 4)));
/* A cell the caller fills (links, forms), closed by ui_td_end. */
void ui_td_begin(struct ui_table *t);
void ui_td_end(struct ui_table *t);
/* Writes a link <a href="...">text</a>: href printf'd, text escaped. */
void ui_link(struct evbuffer *b, const char *text, const char *href_fmt, ...) __attribute__((format(printf, 3, 4)));
/* Ends the table; empty is the row shown when it has none. */
void ui_table_end(struct ui_table *t, const char *empty);
/* A card of label/value rows: ui_facts_start, ui_fact* and ui_facts_end. */
void ui_facts_start(struct evbuffer *b, const char *id);
void ui_fact(struct evbuffer *b, const char *label, const char *value);
void ui_fact_begin(struct evbuffer *b, const char *label); /* the caller writes the value, then ui_fact_end */
void ui_fact_end(struct evbuffer *b);
void ui_facts_end(struct evbuffer *b);

#endif
