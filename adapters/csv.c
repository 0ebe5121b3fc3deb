#include "adapters/csv.h"

#include <stdio.h>
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

bool csv_settle_fail(adapter_error *err, size_t line, const char *message)
{
	err->line = line;
	snprintf(err->message, sizeof(err->message), "%s", message);
	return false;
}

adapter_rc csv_parse_settlement(const adapter_config *cfg, const char *data, size_t len, const char *header,
				csv_settlement_row_fn row, adapter_settlement_cb cb, void *ctx, adapter_error *err)
{
	adapter_rc rc = ADAPTER_MALFORMED;
	struct strbuf got_header;
	strbuf_init(&got_header);
	csv_reader r;
	csv_reader_init(&r, data, len);
	int got = csv_next(&r);
	if (got <= 0) {
		csv_settle_fail(err, got < 0 ? r.line : 1, got < 0 ? r.error : "empty file");
		goto done;
	}
	for (size_t i = 0; i < r.count; i++)
		csv_write_field(&got_header, csv_field(&r, i), i == 0);
	if (!got_header.data || strcmp(got_header.data, header) != 0) {
		err->line = r.line;
		snprintf(err->message, sizeof(err->message), "header is not %s", header);
		goto done;
	}
	while ((got = csv_next(&r)) == 1) {
		adapter_settlement_line line;
		if (!row(cfg, &r, &line, err))
			goto done;
		if (!cb(ctx, &line))
			break;
	}
	if (got < 0) {
		csv_settle_fail(err, r.line, r.error);
		goto done;
	}
	rc = ADAPTER_OK;
done:
	strbuf_free(&got_header);
	csv_reader_free(&r);
	return rc;
}

bool csv_settlement_start(const adapter_config *cfg, const csv_reader *r, size_t fields, const char *merchant,
			  adapter_settlement_line *l, adapter_error *err)
{
	memset(l, 0, sizeof(*l));
	l->line_no = r->line;
	if (r->count != fields) {
		err->line = r->line;
		snprintf(err->message, sizeof(err->message), "expected %zu fields", fields);
		return false;
	}
	if (merchant && cfg && cfg->merchant_id && strcmp(csv_field(r, 0), cfg->merchant_id) != 0) {
		err->line = r->line;
		snprintf(err->message, sizeof(err->message), "%s is not ours", merchant);
		return false;
	}
	return true;
}

bool csv_settlement_refs(const csv_reader *r, adapter_settlement_line *l, const char *const names[4],
			 adapter_error *err)
{
	err->line = r->line;
	if (!adapter_copy(l->bank_order_ref, sizeof(l->bank_order_ref), csv_field(r, 2)) || !l->bank_order_ref[0]) {
		snprintf(err->message, sizeof(err->message), "bad %s", names[0]);
		return false;
	}
	if (!adapter_copy(l->bank_txn_id, sizeof(l->bank_txn_id), csv_field(r, 3)) || !l->bank_txn_id[0]) {
		snprintf(err->message, sizeof(err->message), "bad %s", names[1]);
		return false;
	}
	if (!adapter_copy(l->refund_ref, sizeof(l->refund_ref), csv_field(r, 4)) ||
	    !adapter_copy(l->refund_txn_id, sizeof(l->refund_txn_id), csv_field(r, 5)))
		return csv_settle_fail(err, r->line, "bad refund reference");
	if (l->kind == ADAPTER_SETTLE_REFUND && (!l->refund_ref[0] || !l->refund_txn_id[0])) {
		snprintf(err->message, sizeof(err->message), "refund without %s or %s", names[2], names[3]);
		return false;
	}
	return true;
}
