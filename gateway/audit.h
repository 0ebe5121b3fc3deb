#ifndef FEEGATE_AUDIT_H
#define FEEGATE_AUDIT_H
/*
 * The audit log: who did what, to what, with what outcome, from where. Table audit_log,
 * append-only (triggers refuse UPDATE, DELETE and TRUNCATE); the actions are the vocabulary in
 * table audit_actions (a new action is a row added by the migration of the area that needs it).
 *
 * Writing a row, from any area:
 *  - In SQL, inside the action's own transaction (preferred: the action and its record commit
 *    together). Call
 *        feegate_audit(actor uuid, actor_label text, role text, action text, object text,
 *                      outcome text ('ok'|'denied'|'failed'), request_id text, ip text,
 *                      user_agent text [, detail text])  RETURNS bigint
 *    in the same statement or transaction as the change, e.g.
 *        SELECT f.*, feegate_audit($10, $11, $12, 'case.resolve', f.r_id::text, 'ok', $13, $14, $15)
 *        FROM feegate_case_resolve(...) f
 *    audit_params() fills the six who/where parameters from the request in that order.
 *  - From C, for an action that has no write of its own (export.download: written on the
 *    primary before the export streams): audit_record(), then start the answer in done.
 *
 * Rows are hash-chained after commit by a chainer on worker 0 (audit_chain, seq order), so no
 * action waits on the chain's head; `feegate audit verify` checks the chain.
 */
#include <stdbool.h>

#include "lib/http.h"

#define AUDIT_IP_CAP 64

/* Who/where of req in feegate_audit's order: actor, actor_label, role, request_id, ip,
 * user_agent (6 values written to out; ip is stored in ipbuf). actor_label overrides the
 * principal's e-mail when not NULL (a failed sign-in: what was typed). */
void audit_params(struct http_req *req, const char *actor_label, const char *out[6], char ipbuf[AUDIT_IP_CAP]);
/* The peer address of req, as text. */
void audit_client_ip(struct http_req *req, char out[AUDIT_IP_CAP]);

typedef void (*audit_done_fn)(struct http_req *req, bool recorded);
/* Records one action in a transaction of its own; done (may be NULL) runs when it committed
 * (recorded true) or failed (false: log it, and refuse an export that cannot be audited). */
void audit_record(struct http_req *req, const char *action, const char *object, const char *outcome,
		  const char *detail, audit_done_fn done);

void audit_list(struct http_req *req); /* GET /v1/audit */
void audit_chainer_start(void);        /* worker 0 */
void audit_chainer_stop(void);

#endif
