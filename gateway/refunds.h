#ifndef FEEGATE_REFUNDS_H
#define FEEGATE_REFUNDS_H
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "lib/http.h"
#include "lib/pgpool.h"

struct refund_to_send {
	const char *refund_id, *refund_ref, *bank, *bank_order_ref, *bank_txn_id, *reason, *created_by;
	int64_t amount, paid;
	time_t attempt_created;
};

/* refund_json: the refund after the bank's verdict was recorded, or NULL when it stays pending
 * (no answer, or a bank without a refund API). Valid only during the call. */
typedef void (*refund_sent_fn)(void *arg, const char *refund_json);

void refund_send(const struct refund_to_send *r, refund_sent_fn done, void *arg);
/* Fills r's bank, bank_order_ref, bank_txn_id, paid and attempt_created from the paid attempt's
 * columns (r_bank .. r_attempt_created) that start at column `first` of row `row` (refund_create,
 * refund_approve, refunds_to_retry); texts point into res. */
bool refund_attempt_from(const PGresult *res, int row, int first, struct refund_to_send *r) WARN_UNUSED;

/*
 * The two-person rule, for the API's routes and the console's buttons alike. A refund above
 * FEEGATE_REFUND_APPROVAL_VND is asked for (202) and created when a second finance member
 * approves it (refund_approve); a payout instruction (a bank without a refund API) is
 * completed when a second finance member confirms it after the first (refund_confirm). The
 * caller has checked PERM_REFUND; the acting staff member is the request's principal, and every
 * step writes its audit row in its own transaction (refund.approve, refund.confirm).
 */
enum refund_outcome {
	REFUND_CREATED,          /* json: the refund, sent to its bank when the bank has a refund API */
	REFUND_REPLAY,           /* json: the first answer to this Idempotency-Key */
	REFUND_CONFIRMED,        /* json: the refund, succeeded (the payout confirmed by a second member) */
	REFUND_ASKED,            /* the first member's payout confirmation: a second one must confirm */
	REFUND_NO_ORDER,
	REFUND_NO_APPROVAL,
	REFUND_NO_REFUND,
	REFUND_SAME_PERSON,      /* the member who asked approves or confirms their own */
	REFUND_ALREADY_APPROVED,
	REFUND_KEY_REUSED,
	REFUND_KEY_IN_USE,
	REFUND_NOT_PAID,         /* only a paid order can be refunded */
	REFUND_TOO_MUCH,         /* refundable: what may still be refunded */
	REFUND_BANK_CONFIRMS,    /* a bank with a refund API confirms its refunds itself */
	REFUND_NOT_PENDING,      /* only a pending refund can be confirmed */
	REFUND_FAILED,           /* res, st: the database's answer */
};

struct refund_result {
	enum refund_outcome outcome;
	const char *json;
	int64_t refundable;
	PGresult *res;
	enum pg_status st;
};
/* r is valid during the call only. */
typedef void (*refund_done_fn)(struct http_req *req, const struct refund_result *r);

void refund_approve(struct http_req *req, const char *approval_id, refund_done_fn done);
void refund_confirm(struct http_req *req, const char *refund_id, refund_done_fn done);
/* Whether refunds at bank wait for finance to confirm their payout (no refund API). */
bool refund_confirmed_by_finance(const char *bank) WARN_UNUSED;

#endif
