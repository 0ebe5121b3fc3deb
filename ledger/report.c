#include "ledger/report.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xlsxwriter.h>

#include "lib/mem.h"

#define OUT_CAP (64 * 1024) /* bytes gathered before they go to the sink */

/* The columns of every tabular format, in order; the metadata keys follow, "meta.<key>". */
static const char *const csv_columns[] = {
	"record", "business_date", "agency", "bank", "count", "gross", "refunds", "fees", "net", "cases_open",
	"payout", "receivable", "local_time_asia_ho_chi_minh", "order_id", "reference", "procedure", "payer_name",
	"payer_id_last4", "bank_txn_id", "amount", "fee", "reconciliation", "budget_chapter", "budget_ndkt",
	"budget_dbhc",
};
static const char *const total_columns[] = {
	"business_date", "agency", "bank", "count", "gross", "refunds", "fees", "net", "cases_open", "payout",
	"receivable",
};
static const char *const line_columns[] = {
	"kind", "business_date", "local_time_asia_ho_chi_minh", "agency", "bank", "order_id", "reference",
	"procedure", "payer_name", "payer_id_last4", "bank_txn_id", "amount", "fee", "net", "reconciliation",
	"budget_chapter", "budget_ndkt", "budget_dbhc",
};

struct report_writer {
	enum report_format format;
	report_sink sink;
	void *arg;
	char **keys;
	int nkeys;
	bool failed;
	bool in_lines;  /* JSON: the totals array is closed */
	bool any_total; /* JSON: a comma is due before the next element */
	bool any_line;
	char *out; /* gathered output, flushed at OUT_CAP */
	size_t len;
	lxw_workbook *wb;
	lxw_worksheet *totals_ws, *lines_ws;
	lxw_format *bold;
	uint32_t totals_row, lines_row;
	char **cols; /* a plain table's columns (report_table_new), else NULL */
	int ncols;
};

bool report_format_parse(const char *name, enum report_format *out)
{
	static const char *const names[] = {[REPORT_JSON] = "json", [REPORT_CSV] = "csv", [REPORT_XLSX] = "xlsx"};
	for (int i = 0; i < (int)ARRAY_LEN(names); i++) {
		if (name && strcmp(name, names[i]) == 0) {
			*out = (enum report_format)i;
			return true;
		}
	}
	return false;
}

const char *report_content_type(enum report_format f)
{
	return f == REPORT_CSV	  ? "text/csv; charset=utf-8"
	       : f == REPORT_XLSX ? "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
				  : "application/json; charset=utf-8";
}

const char *report_extension(enum report_format f)
{
	return f == REPORT_CSV ? "csv" : f == REPORT_XLSX ? "xlsx" : "json";
}

size_t report_csv_cell(const char *s, char *out, size_t cap)
{
	size_t n = 0;
#define PUT(c)                          \
	do {                            \
		if (n + 1 < cap)        \
			out[n] = (c);   \
		n++;                    \
	} while (0)
	bool inert = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r';
	bool quote = strpbrk(s, "\",\r\n") != NULL;
	if (quote)
		PUT('"');
	if (inert)
		PUT('\'');
	for (const char *c = s; *c; c++) {
		if (*c == '"')
			PUT('"');
		PUT(*c);
	}
	if (quote)
		PUT('"');
	if (cap)
		out[n < cap ? n : cap - 1] = '\0';
#undef PUT
	return n;
}

static bool flush(struct report_writer *w)
{
	if (w->len && !w->failed && !w->sink(w->arg, w->out, w->len))
		w->failed = true;
	w->len = 0;
	return !w->failed;
}

static void put(struct report_writer *w, const char *s, size_t n)
{
	if (w->len + n > OUT_CAP)
		flush(w);
	if (n > OUT_CAP) {
		if (!w->failed && !w->sink(w->arg, s, n))
			w->failed = true;
		return;
	}
	memcpy(w->out + w->len, s, n);
	w->len += n;
}

static void puts_(struct report_writer *w, const char *s)
{
	put(w, s, strlen(s));
}

/* ---- CSV ---- */

static void csv_text(struct report_writer *w, const char *s, bool first)
{
	if (!first)
		put(w, ",", 1);
	if (!s || !*s)
		return;
	char small[512];
	size_t need = report_csv_cell(s, small, sizeof small);
	if (need < sizeof small) {
		put(w, small, need);
		return;
	}
	char *big = xmalloc(need + 1);
	report_csv_cell(s, big, need + 1);
	put(w, big, need);
	free(big);
}

static void csv_int(struct report_writer *w, int64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof buf, ",%lld", (long long)v);
	put(w, buf, (size_t)n);
}

static void csv_empty(struct report_writer *w, int n)
{
	for (int i = 0; i < n; i++)
		put(w, ",", 1);
}

/* ---- what a line shows of its payer and its time ---- */

/* Asia/Ho_Chi_Minh is UTC+7 all year (no daylight saving since 1975), which is what the
 * "+07:00" every local time carries says. */
#define LOCAL_OFFSET_S (7 * 3600)

/* 2026-03-10T09:15:00+07:00 (seconds truncated, as the business day is cut). */
static void local_time(int64_t at, char out[80])
{
	time_t t = (time_t)(at + LOCAL_OFFSET_S);
	struct tm tm;
	if (!gmtime_r(&t, &tm)) {
		out[0] = '\0';
		return;
	}
	snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d+07:00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- a line's JSON: the payer, the metadata ---- */

/* The members of a JSON object as a line needs them: each key with its value's text (a string
 * unescaped, a number, true or false as written; NULL for null). Orders hold flat objects of a
 * few scalars (order_validate.c), which are read here in one pass without building a tree: on a
 * million-line report a parser's tree cost more than all the rest of the formatting. Anything
 * else (a nested value, more members than FLAT_MAX) is read with jansson, its nested values
 * written as compact JSON. */
#define FLAT_MAX 16
struct flat {
	int n;
	const char *key[FLAT_MAX], *val[FLAT_MAX];
	bool is_str[FLAT_MAX];
	char *buf; /* the unescaped texts: small, or allocated when the JSON is longer */
	char small[1024];
	json_t *doc; /* the jansson reading, when the fast one declined */
	char *owned[FLAT_MAX];
};

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static long hex4(const char *p)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* The JSON string at p (its opening quote) unescaped at *o, NUL terminated; *o moves past it.
 * Returns what follows the closing quote, or NULL when it is not a string this reader takes. */
static const char *flat_string(const char *p, char **o)
{
	char *d = *o;
	if (*p++ != '"')
		return NULL;
	for (;;) {
		unsigned char c = (unsigned char)*p++;
		if (c == '"')
			break;
		if (c < 0x20)
			return NULL;
		if (c != '\\') {
			*d++ = (char)c;
			continue;
		}
		long cp;
		switch (*p++) {
		case '"': *d++ = '"'; continue;
		case '\\': *d++ = '\\'; continue;
		case '/': *d++ = '/'; continue;
		case 'b': *d++ = '\b'; continue;
		case 'f': *d++ = '\f'; continue;
		case 'n': *d++ = '\n'; continue;
		case 'r': *d++ = '\r'; continue;
		case 't': *d++ = '\t'; continue;
		case 'u':
			if ((cp = hex4(p)) < 0)
				return NULL;
			p += 4;
			if (cp >= 0xD800 && cp < 0xDC00) {
				long lo = p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
				if (lo < 0xDC00 || lo > 0xDFFF)
					return NULL;
				p += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if ((cp >= 0xDC00 && cp < 0xE000) || cp == 0) {
				return NULL; /* a lone low surrogate; a NUL no C string can hold */
			}
			if (cp < 0x80) {
				*d++ = (char)cp;
			} else if (cp < 0x800) {
				*d++ = (char)(0xC0 | (cp >> 6));
				*d++ = (char)(0x80 | (cp & 0x3F));
			} else if (cp < 0x10000) {
				*d++ = (char)(0xE0 | (cp >> 12));
				*d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
				*d++ = (char)(0x80 | (cp & 0x3F));
			} else {
				*d++ = (char)(0xF0 | (cp >> 18));
				*d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
				*d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
				*d++ = (char)(0x80 | (cp & 0x3F));
			}
			continue;
		default:
			return NULL;
		}
	}
	*d++ = '\0';
	*o = d;
	return p;
}

/* A number, true or false at p, copied as written to *o; NULL when it is none of them. */
static const char *flat_scalar(const char *p, char **o)
{
	size_t n = 0;
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0)
		n = *p == 't' ? 4 : 5;
	else
		while (p[n] && strchr("-+.eE0123456789", p[n]))
			n++;
	if (!n)
		return NULL;
	memcpy(*o, p, n);
	(*o)[n] = '\0';
	*o += n + 1;
	return p + n;
}

static bool flat_fast(const char *json, struct flat *f)
{
	/* unescaped texts and their NULs never outgrow the JSON: each had quotes or a separator */
	size_t len = strlen(json);
	f->buf = len < sizeof f->small ? f->small : xmalloc(len + 1);
	char *o = f->buf;
	const char *p = skip_ws(json);
	if (*p++ != '{')
		return false;
	p = skip_ws(p);
	if (*p == '}')
		return *skip_ws(p + 1) == '\0';
	for (;;) {
		if (f->n == FLAT_MAX)
			return false;
		f->key[f->n] = o;
		if (!(p = flat_string(p, &o)))
			return false;
		p = skip_ws(p);
		if (*p++ != ':')
			return false;
		p = skip_ws(p);
		f->is_str[f->n] = *p == '"';
		f->val[f->n] = o;
		if (*p == '"')
			p = flat_string(p, &o);
		else if (strncmp(p, "null", 4) == 0)
			f->val[f->n] = NULL, p += 4;
		else
			p = flat_scalar(p, &o);
		if (!p)
			return false;
		f->n++;
		p = skip_ws(p);
		if (*p == '}')
			return *skip_ws(p + 1) == '\0';
		if (*p++ != ',')
			return false;
		p = skip_ws(p);
	}
}

static void flat_free(struct flat *f)
{
	if (f->buf != f->small)
		free(f->buf);
	for (int i = 0; i < FLAT_MAX; i++)
		free(f->owned[i]);
	json_decref(f->doc);
}

/* f->n is 0 when json is NULL or not an object. Free with flat_free. */
static void flat_read(const char *json, struct flat *f)
{
	f->n = 0;
	f->buf = f->small;
	f->doc = NULL;
	memset(f->owned, 0, sizeof f->owned);
	if (!json || flat_fast(json, f))
		return;
	flat_free(f);
	f->n = 0;
	f->buf = f->small;
	memset(f->owned, 0, sizeof f->owned);
	f->doc = json_loads(json, JSON_DECODE_ANY, NULL);
	f->doc = json_is_object(f->doc) ? f->doc : (json_decref(f->doc), NULL);
	const char *k;
	json_t *v;
	json_object_foreach (f->doc, k, v) {
		if (f->n == FLAT_MAX)
			break;
		f->key[f->n] = k;
		f->is_str[f->n] = json_is_string(v);
		f->val[f->n] = json_is_string(v) ? json_string_value(v)
			       : json_is_null(v) ? NULL
						  : (f->owned[f->n] = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT));
		f->n++;
	}
}

/* The value's text for key, NULL when absent or null; strings only when str. */
static const char *flat_get(const struct flat *f, const char *key, bool str)
{
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->key[i], key) == 0)
			return str && !f->is_str[i] ? NULL : f->val[i];
	return NULL;
}

/* The last four characters (UTF-8) of s, or NULL when s has four or fewer. */
static const char *last4(const char *s)
{
	if (!s)
		return NULL;
	const char *p = s + strlen(s);
	for (int n = 0; n < 4; n++) {
		if (p == s)
			return NULL;
		do
			p--;
		while (p > s && ((unsigned char)*p & 0xC0) == 0x80);
	}
	return p == s ? NULL : p;
}

/* What a line shows of its payer and its metadata (vals[i]: the value of w->keys[i], or NULL). */
struct line_view {
	struct flat payer, meta;
	const char *name, *last4;
};

static void line_view_read(const struct report_writer *w, const struct report_line *l, struct line_view *v,
			   const char **vals)
{
	flat_read(l->payer, &v->payer);
	v->name = flat_get(&v->payer, "name", true);
	v->last4 = last4(flat_get(&v->payer, "id_number", true));
	flat_read(w->nkeys ? l->metadata : NULL, &v->meta);
	for (int i = 0; i < w->nkeys; i++)
		vals[i] = flat_get(&v->meta, w->keys[i], false);
}

static void line_view_free(struct line_view *v)
{
	flat_free(&v->payer);
	flat_free(&v->meta);
}

/* ---- XLSX ---- */

/* Writes o (stolen) as the next element of a JSON array, after a comma unless it is the first
 * (*any says whether one was written). */
static void json_element(struct report_writer *w, json_t *o, bool *any)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (*any)
		put(w, ",", 1);
	puts_(w, text);
	free(text);
	*any = true;
}

/* A workbook that streams its rows to xlsx_path (constant memory), with the header's bold format;
 * false (w failed) when it cannot be made. */
static bool xlsx_open(struct report_writer *w, const char *xlsx_path)
{
	lxw_workbook_options opt = {.constant_memory = LXW_TRUE, .tmpdir = NULL};
	w->wb = workbook_new_opt(xlsx_path, &opt);
	if (!w->wb) {
		w->failed = true;
		return false;
	}
	w->bold = workbook_add_format(w->wb);
	format_set_bold(w->bold);
	return true;
}

static void xlsx_header(struct report_writer *w, lxw_worksheet *ws, const char *const *cols, int n, bool meta)
{
	for (int c = 0; c < n; c++)
		worksheet_write_string(ws, 0, (lxw_col_t)c, cols[c], w->bold);
	if (meta) {
		for (int k = 0; k < w->nkeys; k++) {
			char *name = xasprintf("meta.%s", w->keys[k]);
			worksheet_write_string(ws, 0, (lxw_col_t)(n + k), name, w->bold);
			free(name);
		}
	}
	worksheet_freeze_panes(ws, 1, 0);
}

static void xlsx_text(lxw_worksheet *ws, uint32_t row, int col, const char *s)
{
	if (s && *s)
		worksheet_write_string(ws, row, (lxw_col_t)col, s, NULL);
}

static void xlsx_num(lxw_worksheet *ws, uint32_t row, int col, int64_t v)
{
	/* VND amounts stay far below 2^53: exact as a double */
	worksheet_write_number(ws, row, (lxw_col_t)col, (double)v, NULL);
}

/* ---- the writer ---- */

struct report_writer *report_writer_new(enum report_format f, const char *from, const char *to,
					const char *const *meta_keys, int nkeys, report_sink sink, void *arg,
					const char *xlsx_path)
{
	struct report_writer *w = xcalloc(1, sizeof *w);
	w->format = f;
	w->sink = sink;
	w->arg = arg;
	w->nkeys = nkeys;
	w->keys = xcalloc((size_t)(nkeys ? nkeys : 1), sizeof *w->keys);
	for (int i = 0; i < nkeys; i++)
		w->keys[i] = xstrdup(meta_keys[i]);
	w->out = xmalloc(OUT_CAP);
	if (f == REPORT_CSV) {
		puts_(w, "\xEF\xBB\xBF"); /* BOM: Excel reads the file as UTF-8 */
		for (int c = 0; c < (int)ARRAY_LEN(csv_columns); c++)
			csv_text(w, csv_columns[c], c == 0);
		for (int k = 0; k < nkeys; k++) {
			char *name = xasprintf("meta.%s", w->keys[k]);
			csv_text(w, name, false);
			free(name);
		}
		puts_(w, "\r\n");
	} else if (f == REPORT_JSON) {
		json_t *head = json_pack("{s:s, s:s, s:s}", "from", from, "to", to, "time_zone", "Asia/Ho_Chi_Minh");
		char *text = json_dumps(head, JSON_COMPACT);
		json_decref(head);
		put(w, text, strlen(text) - 1); /* without its closing brace */
		free(text);
		puts_(w, ",\"totals\":[");
	} else {
		if (!xlsx_open(w, xlsx_path))
			return w;
		w->totals_ws = workbook_add_worksheet(w->wb, "Totals");
		w->lines_ws = workbook_add_worksheet(w->wb, "Lines");
		xlsx_header(w, w->totals_ws, total_columns, (int)ARRAY_LEN(total_columns), false);
		xlsx_header(w, w->lines_ws, line_columns, (int)ARRAY_LEN(line_columns), true);
		w->totals_row = w->lines_row = 1;
	}
	return w;
}

bool report_write_total(struct report_writer *w, const struct report_total *t)
{
	if (w->failed)
		return false;
	if (w->format == REPORT_CSV) {
		csv_text(w, "total", true);
		csv_text(w, t->date, false);
		csv_text(w, t->agency, false);
		csv_text(w, t->bank, false);
		csv_int(w, t->count);
		csv_int(w, t->gross);
		csv_int(w, t->refunds);
		csv_int(w, t->fees);
		csv_int(w, t->net);
		csv_int(w, t->cases_open);
		if (t->has_payout)
			csv_int(w, t->payout);
		else
			csv_empty(w, 1);
		if (t->has_receivable)
			csv_int(w, t->receivable);
		else
			csv_empty(w, 1);
		csv_empty(w, (int)ARRAY_LEN(csv_columns) - 12 + w->nkeys);
		puts_(w, "\r\n");
	} else if (w->format == REPORT_JSON) {
		json_t *o = json_pack("{s:s, s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:I}", "date", t->date, "agency",
				      t->agency, "bank", t->bank, "count", (json_int_t)t->count, "gross",
				      (json_int_t)t->gross, "refunds", (json_int_t)t->refunds, "fees", (json_int_t)t->fees,
				      "net", (json_int_t)t->net, "cases_open", (json_int_t)t->cases_open);
		json_object_set_new(o, "payout", t->has_payout ? json_integer(t->payout) : json_null());
		if (t->has_receivable)
			json_object_set_new(o, "receivable", json_integer(t->receivable));
		json_element(w, o, &w->any_total);
	} else {
		lxw_worksheet *ws = w->totals_ws;
		uint32_t r = w->totals_row++;
		xlsx_text(ws, r, 0, t->date);
		xlsx_text(ws, r, 1, t->agency);
		xlsx_text(ws, r, 2, t->bank);
		xlsx_num(ws, r, 3, t->count);
		xlsx_num(ws, r, 4, t->gross);
		xlsx_num(ws, r, 5, t->refunds);
		xlsx_num(ws, r, 6, t->fees);
		xlsx_num(ws, r, 7, t->net);
		xlsx_num(ws, r, 8, t->cases_open);
		if (t->has_payout)
			xlsx_num(ws, r, 9, t->payout);
		if (t->has_receivable)
			xlsx_num(ws, r, 10, t->receivable);
	}
	return !w->failed;
}

static void json_opt(json_t *o, const char *key, const char *v)
{
	json_object_set_new(o, key, v ? json_string(v) : json_null());
}

bool report_write_line(struct report_writer *w, const struct report_line *l)
{
	if (w->failed)
		return false;
	const char *vals[w->nkeys ? w->nkeys : 1];
	char when[80];
	local_time(l->at, when);
	struct line_view v;
	line_view_read(w, l, &v, vals);
	if (w->format == REPORT_CSV) {
		csv_text(w, l->kind, true);
		csv_text(w, l->business_date, false);
		csv_text(w, l->agency, false);
		csv_text(w, l->bank, false);
		csv_empty(w, 4); /* count, gross, refunds, fees: the totals' own */
		csv_int(w, l->net);
		csv_empty(w, 3); /* cases_open, payout, receivable */
		csv_text(w, when, false);
		csv_text(w, l->order_id, false);
		csv_text(w, l->reference, false);
		csv_text(w, l->procedure, false);
		csv_text(w, v.name, false);
		csv_text(w, v.last4, false);
		csv_text(w, l->bank_txn_id, false);
		csv_int(w, l->amount);
		csv_int(w, l->fee);
		csv_text(w, l->reconciliation, false);
		csv_text(w, l->chapter, false);
		csv_text(w, l->ndkt, false);
		csv_text(w, l->dbhc, false);
		for (int k = 0; k < w->nkeys; k++)
			csv_text(w, vals[k], false);
		puts_(w, "\r\n");
	} else if (w->format == REPORT_JSON) {
		if (!w->in_lines) {
			puts_(w, "],\"lines\":[");
			w->in_lines = true;
		}
		json_t *o = json_object();
		json_opt(o, "kind", l->kind);
		json_opt(o, "business_date", l->business_date);
		json_opt(o, "local_time", when);
		json_opt(o, "agency", l->agency);
		json_opt(o, "bank", l->bank);
		json_opt(o, "order_id", l->order_id);
		json_opt(o, "reference", l->reference);
		json_opt(o, "procedure", l->procedure);
		json_opt(o, "payer_name", v.name);
		json_opt(o, "payer_id_last4", v.last4);
		json_opt(o, "bank_txn_id", l->bank_txn_id);
		json_object_set_new(o, "amount", json_integer(l->amount));
		json_object_set_new(o, "fee", json_integer(l->fee));
		json_object_set_new(o, "net", json_integer(l->net));
		json_opt(o, "reconciliation", l->reconciliation);
		json_t *bc = json_object();
		json_opt(bc, "chapter", l->chapter);
		json_opt(bc, "ndkt", l->ndkt);
		json_opt(bc, "dbhc", l->dbhc);
		json_object_set_new(o, "budget_codes", bc);
		json_t *m = l->metadata ? json_loads(l->metadata, JSON_DECODE_ANY, NULL) : NULL;
		json_object_set_new(o, "metadata", m ? m : json_object());
		json_element(w, o, &w->any_line);
	} else {
		lxw_worksheet *ws = w->lines_ws;
		uint32_t r = w->lines_row++;
		const char *text[] = {l->kind, l->business_date, when, l->agency, l->bank, l->order_id,
				      l->reference, l->procedure, v.name, v.last4, l->bank_txn_id};
		for (int c = 0; c < (int)ARRAY_LEN(text); c++)
			xlsx_text(ws, r, c, text[c]);
		xlsx_num(ws, r, 11, l->amount);
		xlsx_num(ws, r, 12, l->fee);
		xlsx_num(ws, r, 13, l->net);
		xlsx_text(ws, r, 14, l->reconciliation);
		xlsx_text(ws, r, 15, l->chapter);
		xlsx_text(ws, r, 16, l->ndkt);
		xlsx_text(ws, r, 17, l->dbhc);
		for (int k = 0; k < w->nkeys; k++)
			xlsx_text(ws, r, 18 + k, vals[k]);
	}
	line_view_free(&v);
	return !w->failed;
}

/* ---- plain tables ---- */

struct report_writer *report_table_new(enum report_format f, const char *sheet, const char *const *cols, int ncols,
				       report_sink sink, void *arg, const char *xlsx_path)
{
	struct report_writer *w = xcalloc(1, sizeof *w);
	w->format = f;
	w->sink = sink;
	w->arg = arg;
	w->out = xmalloc(OUT_CAP);
	w->keys = xcalloc(1, sizeof *w->keys);
	w->ncols = ncols;
	w->cols = xcalloc((size_t)(ncols ? ncols : 1), sizeof *w->cols);
	for (int i = 0; i < ncols; i++)
		w->cols[i] = xstrdup(cols[i]);
	if (f == REPORT_CSV) {
		puts_(w, "\xEF\xBB\xBF");
		for (int c = 0; c < ncols; c++)
			csv_text(w, cols[c], c == 0);
		puts_(w, "\r\n");
	} else if (f == REPORT_JSON) {
		puts_(w, "[");
	} else {
		if (!xlsx_open(w, xlsx_path))
			return w;
		w->lines_ws = workbook_add_worksheet(w->wb, sheet);
		xlsx_header(w, w->lines_ws, (const char *const *)w->cols, ncols, false);
		w->lines_row = 1;
	}
	return w;
}

bool report_write_row(struct report_writer *w, const struct report_cell *cells)
{
	if (w->failed)
		return false;
	if (w->format == REPORT_CSV) {
		for (int c = 0; c < w->ncols; c++) {
			if (cells[c].text) {
				csv_text(w, cells[c].text, c == 0);
			} else {
				char buf[24];
				int n = snprintf(buf, sizeof buf, "%s%lld", c ? "," : "", (long long)cells[c].num);
				put(w, buf, (size_t)n);
			}
		}
		puts_(w, "\r\n");
	} else if (w->format == REPORT_JSON) {
		json_t *o = json_object();
		for (int c = 0; c < w->ncols; c++)
			json_object_set_new(o, w->cols[c], cells[c].text ? json_string(cells[c].text) : json_integer(cells[c].num));
		json_element(w, o, &w->any_line);
	} else {
		uint32_t r = w->lines_row++;
		for (int c = 0; c < w->ncols; c++) {
			if (cells[c].text)
				xlsx_text(w->lines_ws, r, c, cells[c].text);
			else
				xlsx_num(w->lines_ws, r, c, cells[c].num);
		}
	}
	return !w->failed;
}

bool report_finish(struct report_writer *w)
{
	if (w->failed)
		return false;
	if (w->format == REPORT_JSON && w->cols) {
		puts_(w, "]");
	} else if (w->format == REPORT_JSON) {
		puts_(w, w->in_lines ? "]}" : "],\"lines\":[]}");
	} else if (w->format == REPORT_XLSX) {
		lxw_error e = workbook_close(w->wb);
		w->wb = NULL;
		if (e != LXW_NO_ERROR)
			w->failed = true;
	}
	return flush(w);
}

void report_writer_free(struct report_writer *w)
{
	if (!w)
		return;
	if (w->wb)
		workbook_close(w->wb); /* an unfinished workbook: its file is the caller's to remove */
	for (int i = 0; i < w->nkeys; i++)
		free(w->keys[i]);
	free(w->keys);
	for (int i = 0; i < w->ncols; i++)
		free(w->cols[i]);
	free(w->cols);
	free(w->out);
	free(w);
}
