#ifndef FEEGATE_REPORT_H
#define FEEGATE_REPORT_H
/*
 * The settlement report's formats: CSV, JSON and XLSX, written row by row to a sink so that no
 * format ever holds more than one row. This module only formats; where the rows come from (a
 * database cursor) and where the bytes go (a chunked reply, a file) is the caller's.
 *
 * A report is its totals (per business day, agency and bank) then its lines (every payment and
 * refund). CSV is one table: a `record` column says total, payment or refund, and a row leaves
 * empty the columns that are not its own. XLSX has a Totals sheet and a Lines sheet. Times are
 * Asia/Ho_Chi_Minh local time with their offset, and the column says so.
 *
 * The writer is where a line's shown fields are made from what the database holds: the local
 * time from the epoch seconds, and from the payer's JSON its name and, of its identity number,
 * only the last four characters (nothing when the number is too short for that to hide the
 * rest), so no format can ever write a whole identity number.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

enum report_format { REPORT_JSON, REPORT_CSV, REPORT_XLSX };

/* Takes the next bytes of the report; false stops the writer (the reader has gone). */
typedef bool (*report_sink)(void *arg, const void *data, size_t len);

/* A row per business day, agency and bank; and, for an agency that owes money at the end of a
 * day (a refund made after its payment was paid out, not yet netted by a payout), a row of that
 * agency alone (bank NULL, the sums zero) carrying what it owes in receivable. */
struct report_total {
	const char *date, *agency, *bank; /* bank NULL: the agency's own row */
	int64_t count, gross, refunds, fees, net, cases_open;
	bool has_payout; /* false: no payout seen on the treasury statement */
	int64_t payout;
	bool has_receivable;
	int64_t receivable;
};

struct report_line {
	const char *kind; /* payment | refund */
	const char *business_date, *agency, *bank, *order_id, *reference, *procedure;
	const char *bank_txn_id, *reconciliation;
	const char *chapter, *ndkt, *dbhc; /* budget codes: mã chương, mã NDKT, mã ĐBHC */
	int64_t amount, fee, net;          /* refunds negative */
	int64_t at;                        /* the payment's (refund's) time, seconds since the epoch */
	const char *payer;                 /* the order's payer as JSON text, or NULL */
	const char *metadata;              /* the order's metadata as JSON text, or NULL */
};

struct report_writer;

/* meta_keys: the metadata keys of the lines, one column each (copied). XLSX writes to
 * xlsx_path (a temporary file the caller streams afterwards); the others to sink. */
struct report_writer *report_writer_new(enum report_format f, const char *from, const char *to,
					const char *const *meta_keys, int nkeys, report_sink sink, void *arg,
					const char *xlsx_path);
bool report_write_total(struct report_writer *w, const struct report_total *t) WARN_UNUSED;
bool report_write_line(struct report_writer *w, const struct report_line *l) WARN_UNUSED;
/* Writes what closes the report (JSON's brackets, the XLSX file). */
bool report_finish(struct report_writer *w) WARN_UNUSED;
void report_writer_free(struct report_writer *w);

/* A plain table, for a list exported as it is shown (the console's order search): a header row
 * of cols, then rows, in CSV (as the report's), XLSX (one sheet, amounts as numbers, the header
 * frozen) or JSON (an array of objects). The writer is then finished and freed as a report's. */
struct report_cell {
	const char *text; /* the cell's text, or NULL for a number */
	int64_t num;
};
struct report_writer *report_table_new(enum report_format f, const char *sheet, const char *const *cols, int ncols,
				       report_sink sink, void *arg, const char *xlsx_path);
/* One row of ncols cells. */
bool report_write_row(struct report_writer *w, const struct report_cell *cells) WARN_UNUSED;

bool report_format_parse(const char *name, enum report_format *out) WARN_UNUSED;
const char *report_content_type(enum report_format f);
const char *report_extension(enum report_format f);

/* One CSV cell as RFC 4180 and the report's rule want it: text beginning with = + - @ TAB or
 * CR gets a leading ' (so a spreadsheet never runs it as a formula), and a cell holding a
 * quote, comma, CR or LF is quoted with its quotes doubled. Appends to out (cap bytes, NUL
 * terminated); returns the length it needs, as snprintf does. */
size_t report_csv_cell(const char *s, char *out, size_t cap);

#endif
