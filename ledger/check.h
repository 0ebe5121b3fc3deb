#ifndef FEEGATE_LEDGER_CHECK_H
#define FEEGATE_LEDGER_CHECK_H
/*
 * `feegate ledger check`: the ledger's invariants, as queries that return the offending rows
 * (none when the invariant holds), and the hash-chain rule, recomputed outside the database so
 * a tampered row or a tampered SQL function cannot vouch for itself. A passing check records a
 * checkpoint (ledger_checkpoints); an incremental check verifies only what came after the last
 * one, and that the checkpoint's transfer still carries the hash it recorded.
 */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ledger_invariant {
	const char *name;
	const char *full;        /* one text column naming each offending row */
	const char *incremental; /* the same over what changed since a checkpoint ($1 transfer seq,
				  * $2 entry id, $3 horizon); NULL: only a full check proves it */
};

extern const struct ledger_invariant ledger_invariants[];
extern const size_t ledger_invariant_count;

/* Runs every check in one snapshot, printing one line per invariant to out; records the outcome
 * (and, when it passed, a checkpoint). Returns the number of failed checks, -1 when it could
 * not run. */
int ledger_check_run(PGconn *c, bool incremental, FILE *out);

/* hex SHA-256 of prev|id|seq|debit|credit|amount|code|order|attempt|refund (absent ids empty). */
void ledger_transfer_hash(const char *prev, const char *id, int64_t seq, int64_t debit, int64_t credit,
			  int64_t amount, const char *code, const char *order_id, const char *attempt_id,
			  const char *refund_id, char out[65]);

#define LEDGER_GENESIS_HASH "0000000000000000000000000000000000000000000000000000000000000000"

#endif
