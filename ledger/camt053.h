#ifndef FEEGATE_LEDGER_CAMT053_H
#define FEEGATE_LEDGER_CAMT053_H
/*
 * ISO 20022 camt.053 (bank-to-customer statement) of an agency's treasury account, read with
 * libxml2's streaming reader: the tree is never built, so memory does not grow with the file.
 * Namespace-agnostic (local names only; a camt.053.001.NN namespace must have NN 02-13), no
 * network access, and a document type declaration is refused outright, so neither external
 * entities (XXE) nor entity expansion ("billion laughs") can happen.
 *
 * One statement per file. The whole file is checked first (opening balance plus credits minus
 * debits must be the closing balance, every amount in VND), then its lines are handed on: one
 * per entry, or, for a batch entry, one per transaction detail with its own amount.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAMT_TEXT_CAP 256

struct camt_line {
	int line;                        /* 1-based: the entry's (or transaction detail's) number */
	bool credit;                     /* CRDT; else DBIT */
	int64_t amount;                  /* VND */
	char ref[64];                    /* the bank's reference (AcctSvcrRef, else EndToEndId/TxId) */
	char remittance[CAMT_TEXT_CAP];  /* RmtInf/Ustrd, joined with spaces */
	char booked[11];                 /* YYYY-MM-DD, or empty */
};

struct camt_summary {
	char account[64];
	char business_date[11]; /* YYYY-MM-DD: the closing balance's date */
	int64_t lines;
	int64_t opening, closing; /* signed VND */
	int64_t total;            /* sum of the lines' amounts, unsigned */
};

struct camt_error {
	char path[256];    /* e.g. Document/BkToCstmrStmt/Stmt[1]/Bal[2] */
	char message[200];
};

/* Return false to stop. */
typedef bool (*camt_line_cb)(void *ctx, const struct camt_line *line);

/* true when the file is well-formed and balanced (summary filled, every line handed to cb);
 * false with err filled, and no line handed on. */
bool camt053_parse(const char *data, size_t len, camt_line_cb cb, void *ctx, struct camt_summary *summary,
		   struct camt_error *err) __attribute__((warn_unused_result));

#endif
