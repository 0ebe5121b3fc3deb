#ifndef FEEGATE_LEDGER_CHECK_H
#define FEEGATE_LEDGER_CHECK_H
/*
 * The ledger's invariants, as queries that return the offending rows (none when the invariant
 * holds), and the hash-chain rule, recomputed outside the database so a tampered row or a
 * tampered SQL function cannot vouch for itself.
 */
#include <stddef.h>
#include <stdint.h>

struct ledger_invariant {
	const char *name;
	const char *sql; /* one text column naming each offending row */
};

extern const struct ledger_invariant ledger_invariants[];
extern const size_t ledger_invariant_count;

/* The rows the chain check reads, in this order of columns, ordered by seq. */
extern const char ledger_chain_sql[];

/* hex SHA-256 of prev|id|seq|debit|credit|amount|code|order|attempt|refund (absent ids empty). */
void ledger_transfer_hash(const char *prev, const char *id, int64_t seq, int64_t debit, int64_t credit,
			  int64_t amount, const char *code, const char *order_id, const char *attempt_id,
			  const char *refund_id, char out[65]);

#define LEDGER_GENESIS_HASH "0000000000000000000000000000000000000000000000000000000000000000"

#endif
