#include "adapters/csv.h"

#include <string.h>

void csv_reader_init(csv_reader *r, const char *data, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->data = data;
	r->len = len;
	r->next_line = 1;
	strbuf_init(&r->fields);
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		r->pos = 3;
}

void csv_reader_free(csv_reader *r)
{
	strbuf_free(&r->fields);
}

static bool csv_end_field(csv_reader *r)
{
	if (r->count >= CSV_MAX_FIELDS) {
		r->error = "too many fields";
		return false;
	}
	strbuf_putc(&r->fields, '\0');
	r->count++;
	if (r->count < CSV_MAX_FIELDS)
		r->offsets[r->count] = r->fields.len;
	return true;
}

int csv_next(csv_reader *r)
{
	for (;;) {
		if (r->pos >= r->len)
			return 0;
		r->line = r->next_line;
		strbuf_reset(&r->fields);
		r->count = 0;
		r->offsets[0] = 0;
		bool quoted = false, was_quoted = false, empty_line = true;
		for (;;) {
			if (r->pos >= r->len) {
				if (quoted) {
					r->error = "unterminated quoted field";
					return -1;
				}
				break;
			}
			char c = r->data[r->pos++];
			if (c == '\0') {
				r->error = "NUL byte";
				return -1;
			}
			if (quoted) {
				if (c == '"') {
					if (r->pos < r->len && r->data[r->pos] == '"') {
						strbuf_putc(&r->fields, '"');
						r->pos++;
					} else {
						quoted = false;
					}
				} else {
					if (c == '\n')
						r->next_line++;
					strbuf_putc(&r->fields, c);
				}
				continue;
			}
			if (c == '\r' && r->pos < r->len && r->data[r->pos] == '\n')
				continue;
			if (c == '\n') {
				r->next_line++;
				break;
			}
			empty_line = false;
			if (c == ',') {
				if (!csv_end_field(r))
					return -1;
				was_quoted = false;
			} else if (c == '"') {
				size_t start = r->count < CSV_MAX_FIELDS ? r->offsets[r->count] : 0;
				if (was_quoted || r->fields.len != start) {
					r->error = "quote inside an unquoted field";
					return -1;
				}
				quoted = was_quoted = true;
			} else {
				if (was_quoted) {
					r->error = "text after a closing quote";
					return -1;
				}
				strbuf_putc(&r->fields, c);
			}
		}
		if (empty_line && r->count == 0)
			continue;
		if (!csv_end_field(r))
			return -1;
		return 1;
	}
}

const char *csv_field(const csv_reader *r, size_t i)
{
	if (i >= r->count)
		return NULL;
	return r->fields.data + r->offsets[i];
}

void csv_write_field(struct strbuf *out, const char *s, bool first)
{
	if (!first)
		strbuf_putc(out, ',');
	if (!strpbrk(s, ",\"\r\n")) {
		strbuf_puts(out, s);
		return;
	}
	strbuf_putc(out, '"');
	for (; *s; s++) {
		if (*s == '"')
			strbuf_putc(out, '"');
		strbuf_putc(out, *s);
	}
	strbuf_putc(out, '"');
}
