#ifndef FEEGATE_GATEWAY_RECONCILE_H
#define FEEGATE_GATEWAY_RECONCILE_H
/*
 * Reconciliation (staff): statements and cases. The API's routes are below; the rules they
 * apply, working a case and importing a statement, are functions the console calls too, so
 * each rule has one home whichever page or route asks for it.
 */
#include <libpq-fe.h>

#include "ledger/statement.h"
#include "lib/http.h"
#include "lib/pgpool.h"

void statements_import(struct http_req *req); /* POST /v1/statements?source=S (finance) */
void statements_list(struct http_req *req);   /* GET /v1/statements */
void statements_get(struct http_req *req);    /* GET /v1/statements/{id}: its lines' outcomes */
void exceptions_list(struct http_req *req);   /* GET /v1/exceptions */
void cases_acknowledge(struct http_req *req); /* POST /v1/exceptions/{id}/acknowledge */
void cases_resolve(struct http_req *req);     /* POST /v1/exceptions/{id}/resolve */
void cases_approve(struct http_req *req);     /* POST /v1/exceptions/{id}/approve */

/* ---- working a case (feegate_case_act, migrations/functions/cases.sql) ---- */

enum case_outcome { CASE_OK, CASE_NOT_FOUND, CASE_INVALID_STATE, CASE_FORBIDDEN, CASE_FAILED };

struct case_result {
	enum case_outcome outcome;
	const char *message;   /* CASE_INVALID_STATE, CASE_FORBIDDEN: why, in the SQL's words */
	const char *case_json; /* CASE_OK: the case after the action */
	PGresult *res;         /* CASE_FAILED: the pool's answer, for the caller's failure reply */
	enum pg_status st;
};
typedef void (*case_done_fn)(struct http_req *req, const struct case_result *r);

/* NULL when note and resolution are what verb (acknowledge | resolve | approve) takes: a note
 * of 1 to 1000 characters, required to resolve; a resolution posted | refund | accepted | void
 * to resolve. Else the message, *field naming the field. */
const char *case_input_check(const char *verb, const char *resolution, const char *note, const char **field);
/* Acts on case id as the request's staff member, within its agency scope (another agency's
 * case is CASE_NOT_FOUND), its audit row (case.<verb>, outcome ok | denied | failed) written in
 * the same statement. The proposer of an `accepted` resolution who approves it gets
 * CASE_FORBIDDEN. done runs once, with r valid during the call. */
void case_act(struct http_req *req, const char *id, const char *verb, const char *resolution, const char *note,
	      case_done_fn done);

/* ---- importing a statement (ledger/statement.h), fed from a request body as it arrives ---- */

/* r is valid during the call; the statement.import audit row has been asked for already. */
typedef void (*import_done_fn)(struct http_req *req, const struct stmt_result *r);
struct import_job;

/* An import of source for the request's staff member; NULL when this worker already runs as
 * many imports as it may (the caller answers "busy"). */
struct import_job *import_open(struct http_req *req, stmt_source source, import_done_fn done);
/* The file's next bytes. When the importer takes no more (over FEEGATE_MAX_STATEMENT_BYTES,
 * the temporary file failed) the body is paused and the import ends at once through done. */
void import_feed(struct import_job *job, const char *data, size_t len);
/* The body has ended: with HTTP_BODY_DONE the file is checked, stored and matched on a thread
 * and done answers (true). false: nothing is stored, the job is gone, and the caller answers
 * (http_reply_body_error for end). */
bool import_close(struct import_job *job, enum http_body_end end) WARN_UNUSED;
/* Gives up an import whose request the caller answers instead (a refused upload form). */
void import_drop(struct import_job *job);

#endif
