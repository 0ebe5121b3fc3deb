#include "lib/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"

/* Decodes one form-encoded component; NULL when an escape is malformed or the result holds a
 * NUL or a control character (they never mean anything in a query value). */
static char *decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi = i + 2 < n ? util_hex_digit(s[i + 1]) : -1;
			int lo = i + 2 < n ? util_hex_digit(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				free(out);
				return NULL;
			}
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f) {
			free(out);
			return NULL;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

static bool valid_date(const char *s)
{
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1)
		return false;
	int dim = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
	return d <= dim;
}

static bool in_choices(const char *v, const char *choices)
{
	size_t n = strlen(v);
	for (const char *p = choices; p && *p;) {
		size_t len = strcspn(p, "|");
		if (len == n && strncmp(p, v, n) == 0)
			return true;
		p += len;
		if (*p == '|')
			p++;
	}
	return false;
}

/* NULL when v is acceptable for f, else the message; sets *num for numeric types. */
static const char *check_value(const struct query_field *f, const char *v, int64_t *num)
{
	static char msg[160];
	switch (f->type) {
	case Q_TEXT: {
		long chars = util_utf8_length(v, strlen(v));
		int64_t max = f->max > 0 ? f->max : 255;
		if (chars < 0)
			return "must be valid UTF-8";
		if (chars < 1 || chars > max) {
			snprintf(msg, sizeof msg, "must be 1 to %lld characters", (long long)max);
			return msg;
		}
		return NULL;
	}
	case Q_INT:
		if (!util_parse_int64(v, num) || *num < f->min || *num > f->max) {
			snprintf(msg, sizeof msg, "must be an integer from %lld to %lld", (long long)f->min,
				 (long long)f->max);
			return msg;
		}
		return NULL;
	case Q_LIMIT:
		if (!util_parse_int64(v, num) || *num < 1 || *num > QUERY_MAX_LIMIT)
			return "limit must be an integer from 1 to 500";
		return NULL;
	case Q_DATE:
		return valid_date(v) ? NULL : "must be a date YYYY-MM-DD";
	case Q_CHOICE:
		if (!in_choices(v, f->choices)) {
			snprintf(msg, sizeof msg, "must be one of %s", f->choices);
			for (char *p = msg; *p; p++)
				if (*p == '|')
					*p = ',';
			return msg;
		}
		return NULL;
	case Q_UUID:
		return util_uuid_valid(v) ? NULL : "must be an id";
	case Q_CURSOR: {
		size_t n = strlen(v);
		bool ok = n >= 1 && n <= 200;
		for (const char *p = v; ok && *p; p++)
			ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     strchr("._:=-", *p) != NULL;
		return ok ? NULL : QUERY_BAD_CURSOR;
	}
	}
	return "is not accepted";
}

static void reset(struct query *q)
{
	for (int i = 0; i < QUERY_MAX_FIELDS; i++) {
		free(q->value[i]);
		q->value[i] = NULL;
		q->num[i] = 0;
	}
}

const char *query_check(const char *raw, const struct query_field *fields, int n, struct query *out,
			const char **field)
{
	memset(out, 0, sizeof *out);
	out->n = n;
	out->fields = fields;
	*field = NULL;
	if (n > QUERY_MAX_FIELDS) {
		*field = "query";
		return "too many parameters declared";
	}
	for (int i = 0; i < n; i++)
		if (fields[i].type == Q_LIMIT)
			out->num[i] = QUERY_DEFAULT_LIMIT;
	static char msg[200];
	for (const char *p = raw; p && *p;) {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		size_t klen = eq ? (size_t)(eq - p) : len;
		if (len == 0) {
			p++;
			continue;
		}
		char *key = decode(p, klen);
		char *val = eq ? decode(eq + 1, len - klen - 1) : xstrdup("");
		int idx = -1;
		for (int i = 0; key && i < n; i++)
			if (strcmp(fields[i].name, key) == 0)
				idx = i;
		const char *err = NULL;
		if (idx < 0) {
			/* field names the unknown parameter itself (a static copy: it outlives key) */
			static char unknown[80];
			snprintf(unknown, sizeof unknown, "%.64s", key ? key : "query");
			*field = unknown;
			snprintf(msg, sizeof msg, "unknown query parameter %s", unknown);
			err = msg;
		} else if (!val) {
			*field = fields[idx].name;
			err = "has a malformed escape or a control character";
		} else if (out->value[idx]) {
			*field = fields[idx].name;
			err = "is given more than once";
		} else if (!*val) {
			*field = fields[idx].name;
			err = "must not be empty";
		} else {
			int64_t num = 0;
			const char *why = check_value(&fields[idx], val, &num);
			if (why) {
				*field = fields[idx].name;
				snprintf(msg, sizeof msg, "%s %s", fields[idx].name, why);
				if (strncmp(why, fields[idx].name, strlen(fields[idx].name)) == 0)
					snprintf(msg, sizeof msg, "%s", why);
				err = msg;
			} else {
				out->value[idx] = val;
				out->num[idx] = num;
				val = NULL;
			}
		}
		free(key);
		free(val);
		if (err) {
			reset(out);
			return err;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return NULL;
}

bool query_parse(struct http_req *req, const struct query_field *fields, int n, struct query *out)
{
	const char *field;
	const char *err = query_check(req->query, fields, n, out, &field);
	if (err) {
		http_reply_error(req, ERR_VALIDATION, field, err);
		return false;
	}
	return true;
}

static int index_of(const struct query *q, const char *name)
{
	for (int i = 0; i < q->n; i++)
		if (strcmp(q->fields[i].name, name) == 0)
			return i;
	return -1;
}

const char *query_get(const struct query *q, const char *name)
{
	int i = index_of(q, name);
	return i < 0 ? NULL : q->value[i];
}

int64_t query_num(const struct query *q, const char *name)
{
	int i = index_of(q, name);
	return i < 0 ? 0 : q->num[i];
}

void query_free(struct query *q)
{
	reset(q);
}

json_t *query_next_cursor(const json_t *rows, int limit, const char *key)
{
	size_t n = json_array_size(rows);
	json_t *last = json_object_get(json_array_get(rows, n - 1), key);
	if (!n || (int)n != limit || !last)
		return json_null();
	if (json_is_integer(last)) {
		char text[24];
		snprintf(text, sizeof text, "%lld", (long long)json_integer_value(last));
		return json_string(text);
	}
	return json_incref(last);
}

json_t *query_page_array(json_t *all, const struct query *q)
{
	size_t from = 0;
	const char *cursor = query_get(q, "cursor");
	if (cursor) {
		char *end;
		if (strncmp(cursor, "o:", 2) != 0 || !cursor[2] || cursor[2] == '-') {
			json_decref(all);
			return NULL;
		}
		unsigned long long v = strtoull(cursor + 2, &end, 10);
		if (*end) {
			json_decref(all);
			return NULL;
		}
		from = (size_t)v;
	}
	size_t limit = (size_t)query_num(q, "limit");
	size_t n = json_array_size(all);
	json_t *data = json_array();
	for (size_t i = from; i < n && i < from + limit; i++)
		json_array_append(data, json_array_get(all, i));
	json_t *page = json_object();
	json_object_set_new(page, "data", data);
	if (from + limit < n) {
		char next[32];
		snprintf(next, sizeof next, "o:%zu", from + limit);
		json_object_set_new(page, "next_cursor", json_string(next));
	} else {
		json_object_set_new(page, "next_cursor", json_null());
	}
	json_decref(all);
	return page;
}

static const struct query_field list_fields[] = {QUERY_LIST};

static void list_state_free(void *p)
{
	query_free(p);
	free(p);
}

bool query_parse_list(struct http_req *req)
{
	struct query *q = xcalloc(1, sizeof *q);
	if (!query_parse(req, list_fields, (int)ARRAY_LEN(list_fields), q)) {
		list_state_free(q);
		return false;
	}
	req->state = q;
	req->state_free = list_state_free;
	return true;
}

void query_reply_page(struct http_req *req, const char *array_text)
{
	json_t *page = query_page_array(json_loads(array_text, 0, NULL), req->state);
	if (!page) {
		query_reply_bad_cursor(req);
		return;
	}
	http_reply_json(req, 200, page);
}

void query_reply_bad_cursor(struct http_req *req)
{
	http_reply_error(req, ERR_VALIDATION, "cursor", QUERY_BAD_CURSOR);
}
