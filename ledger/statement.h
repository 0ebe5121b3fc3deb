#ifndef FEEGATE_LEDGER_STATEMENT_H
#define FEEGATE_LEDGER_STATEMENT_H
/*
 * Importing a bank's settlement file or a treasury camt.053 statement, all or nothing.
 *
 * An import is an object fed by chunks (new / feed / finish), so the command line feeds it from
 * a file and the HTTP route from a request body: the bytes go to an unlinked temporary file as
 * they come (memory does not grow with the file) while their SHA-256 is computed. finish()
 * then, on the connection it is given and in one transaction: recognises the same bytes
 * imported before, parses the file (the adapters' settlement parsers, or ledger/camt053),
 * which checks it as a whole first, streams its lines into a staging table with COPY, and calls
 * feegate_statement_import (migrations/functions/reconciliation.sql), which stores and matches
 * them set-based. A malformed file stores nothing.
 *
 * finish() blocks (libpq's synchronous calls): run it from the command line or a worker thread
 * with its own connection, never on the event loop.
 */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapters/adapter.h"
#include "lib/util.h"

/* What a file is: one bank's settlement file (its adapter), or NULL: a treasury camt.053
 * statement. */
typedef const adapter *stmt_source;
#define STMT_TREASURY_SOURCE "camt053" /* the treasury statement's source name */

enum stmt_outcome {
	STMT_CREATED,   /* a new file: stored and matched */
	STMT_EXISTING,  /* the same bytes were imported before: nothing changed */
	STMT_MALFORMED, /* refused: field names the line or element, message the reason */
	STMT_TOO_LARGE, /* over the cap given to stmt_import_new */
	STMT_FAILED,    /* the database or the temporary file failed: message says which */
};

struct stmt_result {
	enum stmt_outcome outcome;
	char field[256];    /* "line 17", "Document/BkToCstmrStmt/Stmt[1]/Bal[2]" */
	char message[256];
	char *record;       /* CREATED, EXISTING: the statement's JSON record (malloc'ed) */
	char id[37];
};

struct stmt_import;

/* An adapter's name or STMT_TREASURY_SOURCE; false for any other name. */
bool stmt_source_parse(const char *name, stmt_source *out) WARN_UNUSED;
const char *stmt_source_name(stmt_source s);

/* staff: the importing staff member's id, or NULL (command line). max_bytes: the file's cap. */
struct stmt_import *stmt_import_new(stmt_source source, const char *staff, size_t max_bytes);
/* Who imports, for the audit row finish writes in the import's own transaction (action
 * statement.import, outcome ok): feegate_audit's actor, actor_label, role, request_id, ip and
 * user_agent (migrations/functions/audit.sql), copied; NULL entries are empty. Without it the
 * import is recorded as the command line's. A refused file is not recorded here (nothing of it
 * commits): the caller records the failure. */
void stmt_import_set_actor(struct stmt_import *im, const char *const who[6]);
/* false when the file grew over its cap or the temporary file failed (finish then says which). */
bool stmt_import_feed(struct stmt_import *im, const void *data, size_t len) WARN_UNUSED;
/* Fills out (free out->record with free()). */
void stmt_import_finish(struct stmt_import *im, PGconn *conn, struct stmt_result *out);
void stmt_import_free(struct stmt_import *im);

#endif
