/* RFC 4180 records for the banks' settlement files: reading them field by field
 * and writing them with the quoting a spreadsheet expects. */
#ifndef FEEGATE_ADAPTERS_CSV_H
#define FEEGATE_ADAPTERS_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "adapters/adapter.h"
#include "lib/strbuf.h"

#define CSV_MAX_FIELDS 32

typedef struct csv_reader {
	const char *data;
	size_t len;
	size_t pos;
	size_t line;                    /* line number where the last record began (1-based) */
	size_t next_line;
	struct strbuf fields;                    /* the last record's fields, each NUL-terminated */
	size_t offsets[CSV_MAX_FIELDS];
	size_t count;                   /* fields in the last record */
	const char *error;              /* static text once csv_next failed */
} csv_reader;

/* A UTF-8 byte order mark at the start is skipped. */
void csv_reader_init(csv_reader *r, const char *data, size_t len);
void csv_reader_free(csv_reader *r);
/* 1: a record is ready; 0: end of data; -1: malformed (r->error, r->line). Blank
 * lines are skipped. */
int csv_next(csv_reader *r) __attribute__((warn_unused_result));
const char *csv_field(const csv_reader *r, size_t i);

/* Appends one field, quoted when it holds a comma, quote, CR or LF. */
void csv_write_field(struct strbuf *out, const char *s, bool first);

/* A bank's settlement file in CSV: the shape every adapter's parser shares. */
/* Sets err to message at line; returns false (what a row checker returns). */
bool csv_settle_fail(adapter_error *err, size_t line, const char *message);
/* A record's start: l emptied and numbered, the record's field count checked, and when merchant
 * names column 0 (the bank's name for it), that column checked against cfg's merchant id. */
bool csv_settlement_start(const adapter_config *cfg, const csv_reader *r, size_t fields, const char *merchant,
			  adapter_settlement_line *l, adapter_error *err);
/* Columns 2 to 5 of a card or wallet bank's record: the payment's reference and transaction id,
 * and a refund's reference and the bank's id of it (names: the bank's names of the four, for the
 * messages); l->kind is set. */
bool csv_settlement_refs(const csv_reader *r, adapter_settlement_line *l, const char *const names[4],
			 adapter_error *err);
/* Reads one record of the file into l; false with err set when the record is not a line. */
typedef bool (*csv_settlement_row_fn)(const adapter_config *cfg, const csv_reader *r, adapter_settlement_line *l,
				      adapter_error *err);
/* Checks that the first record is header (its fields joined as csv_write_field writes them),
 * then hands each later record, read by row, to cb (which may stop early). ADAPTER_MALFORMED
 * with err set at the first bad record. */
adapter_rc csv_parse_settlement(const adapter_config *cfg, const char *data, size_t len, const char *header,
				csv_settlement_row_fn row, adapter_settlement_cb cb, void *ctx, adapter_error *err);

#endif
