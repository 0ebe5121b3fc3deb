#ifndef FEEGATE_DB_H
#define FEEGATE_DB_H
/* Every SQL statement the gateway runs, prepared on each pooled connection by name. */
#include "lib/pgpool.h"
#include "lib/pgrow.h"

extern const struct pg_statement db_statements[];
extern const int db_statement_count;

/* Every outcome word the stored functions answer with (their r_outcome, or the text they
 * return), as one enum; db_outcomes is the one table from word to value, for PG_COL_WORD. */
enum db_outcome {
	OUTCOME_UNKNOWN, /* a word this gateway does not know: treat as a failure */
	/* feegate_order_transition, feegate_close_attempt, feegate_refund_complete */
	OUTCOME_CHANGED,
	OUTCOME_UNCHANGED,
	OUTCOME_NOT_FOUND,
	OUTCOME_INVALID_STATE,
	/* feegate_apply_notifications */
	OUTCOME_APPLIED,
	OUTCOME_REPLAYED,
	OUTCOME_UNKNOWN_ORDER,
	OUTCOME_WRONG_AMOUNT,
	OUTCOME_TXN_ID_CONFLICT,
	/* feegate_intake, feegate_refund_create, feegate_refund_approve */
	OUTCOME_CREATED,
	OUTCOME_REPLAY,
	OUTCOME_DUPLICATE,
	OUTCOME_BUSY,
	OUTCOME_KEY_REUSED,
	OUTCOME_TOO_MUCH,
	OUTCOME_APPROVAL_NOT_FOUND,
	OUTCOME_ALREADY_APPROVED,
	OUTCOME_SAME_PERSON,
	/* feegate_payout_approval */
	OUTCOME_ASKED,
	OUTCOME_APPROVED,
	/* feegate_refund_complete */
	OUTCOME_SUCCEEDED,
	OUTCOME_FAILED,
	/* feegate_open_attempt (and its state_<status> answers, which stay text) */
	OUTCOME_OPENED,
	OUTCOME_BANK_NOT_ENABLED,
	/* feegate_staff_login */
	OUTCOME_OK,
	OUTCOME_LOCKED,
};
extern const struct pg_word db_outcomes[];

/* The statuses of orders, attempts and refunds, as the schema spells them (db_statuses). */
enum db_status {
	STATUS_UNKNOWN,
	STATUS_CREATED,
	STATUS_PENDING,
	STATUS_SUCCEEDED,
	STATUS_FAILED,
	STATUS_CANCELLED,
	STATUS_EXPIRED,
	STATUS_PARTIALLY_REFUNDED,
	STATUS_REFUNDED,
};
extern const struct pg_word db_statuses[];

/* The statements whose answer is one outcome word, named `outcome` (order_transition,
 * close_attempt, login_result, payout_approval). */
struct outcome_row {
	int outcome; /* enum db_outcome */
};
extern const struct pg_col outcome_cols[1];

/* The lists read whole as one JSON array named `page` (cases_list, statements_list). */
struct page_row {
	const char *page;
};
extern const struct pg_col page_cols[1];

/* statement_get: the statement and a page of its lines, JSON */
struct statement_row {
	const char *statement, *lines;
};
extern const struct pg_col statement_cols[2];

#endif
