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

/* Writes the whole report to sink over an open connection (blocking). err gets a message for
 * REPORT_DB_FAILED and REPORT_WRITE_FAILED. Nothing reaches sink before the outcome is known
 * to be REPORT_OK, so a caller may still answer an error until the first byte arrives. */
enum report_outcome report_export(PGconn *c, const struct report_request *r, report_sink sink, void *arg,
				  char *err, size_t errcap) WARN_UNUSED;

/* feegate report settlement ... and feegate agency budget-codes ... */
int reports_cli(int argc, char **argv);
int reports_cli_budget_codes(int argc, char **argv);

#endif
