#ifndef FEEGATE_REPORTS_H
#define FEEGATE_REPORTS_H
/*
 * The agency collections view and the settlement report (HTTP and command line). The report
 * is produced by one function for every caller: a read-only snapshot, its totals, then its
 * lines from a server-side cursor in pages, formatted by ledger/report and handed to a sink.
 * The gateway runs it on a bounded worker thread (blocking libpq, never on the event loop)
 * that hands the bytes to the loop, which streams them as a chunked reply.
 */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "ledger/report.h"
#include "lib/errors.h"
#include "lib/http.h"

void reports_collections(struct http_req *req);
void reports_settlement(struct http_req *req);
/* Exports running now in this worker (a metric and the shutdown's wait). */
int reports_running(void);

struct report_request {
	char from[11], to[11];   /* business days, inclusive, YYYY-MM-DD */
	char agency[33];         /* a code, or "" for every agency in scope */
	const char *scope;       /* bigint[] literal of the agencies allowed, NULL for all */
	char bank[16];           /* or "" */
	enum report_format format;
};

enum report_outcome { REPORT_OK, REPORT_NOT_FOUND, REPORT_DB_FAILED, REPORT_WRITE_FAILED, REPORT_STOPPED };

/* How an export answers an error found before its first byte (the signature of
 * http_reply_error, which the API passes; the console passes its own page). */
typedef void (*export_refuse_fn)(struct http_req *req, enum err code, const char *field, const char *message);

/* The settlement report r (checked) for the request's staff member: recorded as
 * export.download (committed before the first byte; an export that cannot be audited is not
 * sent), then produced on an export thread and streamed as a chunked attachment. What r points
 * to is copied first; then the export takes req->state over, freeing the caller's state. */
void reports_settlement_send(struct http_req *req, const struct report_request *r, export_refuse_fn refuse);

/* The staff's order search (feegate_orders_find with these filters, every page) exported the
 * same way, as CSV, XLSX or JSON: one row per order with its local times, status, amount, banks
 * and the bank's transaction id of its payment. Values are copied (NULL: not given), and
 * req->state is taken over as by reports_settlement_send. */
struct orders_filter {
	const char *scope; /* auth_agency_scope of the staff member */
	const char *from, *to, *status, *bank, *reference, *payer;
};
void reports_orders_send(struct http_req *req, const struct orders_filter *f, enum report_format format,
			 export_refuse_fn refuse);

/* Writes the whole report to sink over an open connection (blocking). err gets a message for
 * REPORT_DB_FAILED and REPORT_WRITE_FAILED. Nothing reaches sink before the outcome is known
 * to be REPORT_OK, so a caller may still answer an error until the first byte arrives. */
enum report_outcome report_export(PGconn *c, const struct report_request *r, report_sink sink, void *arg,
				  char *err, size_t errcap) WARN_UNUSED;

/* feegate report settlement ... and feegate agency budget-codes ... */
int reports_cli(int argc, char **argv);
int reports_cli_budget_codes(int argc, char **argv);

#endif
