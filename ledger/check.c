#include "ledger/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/mem.h"
#include "lib/pgpool.h"
#include "lib/pgrow.h"
#include "lib/util.h"

/*
 * Each invariant is one set-based query (hash joins and aggregates: no per-row subquery over a
 * large table, so a full check reads each table a few times whatever its size), and, where it
 * can be confined to what changed, a second form for `--incremental`:
 *   $1  the last verified transfer's seq    (transfers above it are new)
 *   $2  the last verified entry's id        (entries above it are new)
 *   $3  the checkpoint's horizon             (objects updated at or after it are re-checked)
 * Entries are written before their transaction takes the chain head (ledger.sql), so an entry of
 * a transfer that was still in flight at the checkpoint can have an id just below $2; the
 * incremental form reads the entries from ENTRY_WINDOW below it.
 */
#define ENTRY_WINDOW "100000"
#define NEW_ENTRIES "e.id > $2 - " ENTRY_WINDOW
/* the attempts, orders and refunds an incremental check re-reads: updated since the checkpoint,
 * or named by a new transfer */
#define SCOPE_ATTEMPTS                                                                             \
	"(SELECT id FROM attempts WHERE updated_at >= $3 UNION SELECT attempt_id FROM ledger_transfers " \
	"WHERE seq > $1 AND attempt_id IS NOT NULL)"
#define SCOPE_ORDERS                                                                               \
	"(SELECT id FROM orders WHERE updated_at >= $3 UNION SELECT order_id FROM ledger_transfers "     \
	"WHERE seq > $1 AND order_id IS NOT NULL)"
#define SCOPE_REFUNDS                                                                              \
	"(SELECT id FROM refunds WHERE updated_at >= $3 UNION SELECT refund_id FROM ledger_transfers "   \
	"WHERE seq > $1 AND refund_id IS NOT NULL)"
#define SCOPE_CASES                                                                                \
	"(SELECT id FROM payment_exceptions WHERE created_at >= $3 OR resolved_at >= $3 UNION "          \
	"SELECT case_id FROM case_actions WHERE at >= $3)"

/* the entries of each transfer, summed up: count, the debit side and the credit side */
#define ENTRY_SIDES(where)                                                                         \
	"(SELECT transfer_id, count(*) AS n, count(*) FILTER (WHERE amount > 0) AS n_debit, "            \
	"max(amount) AS debit, min(amount) AS credit, "                                                  \
	"max(account_id) FILTER (WHERE amount > 0) AS debit_account, "                                   \
	"max(account_id) FILTER (WHERE amount < 0) AS credit_account FROM ledger_entries e " where       \
	" GROUP BY transfer_id) e"
#define SIDES_WRONG                                                                                \
	"(e.n IS DISTINCT FROM 2 OR e.n_debit <> 1 OR e.debit <> t.amount OR e.credit <> -t.amount "     \
	"OR e.debit_account <> t.debit_account OR e.credit_account <> t.credit_account)"

/* per attempt: its payment and suspense transfers */
#define ATTEMPT_POSTINGS(where)                                                                    \
	"(SELECT attempt_id, count(*) FILTER (WHERE code = 'payment') AS pay, "                          \
	"count(*) FILTER (WHERE code = 'suspense') AS susp FROM ledger_transfers "                       \
	"WHERE code IN ('payment', 'suspense') AND attempt_id IS NOT NULL " where " GROUP BY attempt_id) l"
#define ATTEMPT_WRONG                                                                              \
	"t.status = 'succeeded' AND NOT (coalesce(l.pay, 0) = 1 OR (coalesce(l.pay, 0) = 0 AND coalesce(l.susp, 0) > 0))"

#define ORDER_PAYMENTS(where)                                                                      \
	"(SELECT order_id, count(*) AS n FROM ledger_transfers WHERE code = 'payment' " where             \
	" GROUP BY order_id) l"
#define ORDER_WRONG                                                                                \
	"((o.status IN ('succeeded', 'partially_refunded', 'refunded')) <> (coalesce(l.n, 0) = 1) OR "   \
	"coalesce(l.n, 0) > 1)"

#define REFUND_SUMS(where)                                                                         \
	"(SELECT order_id, coalesce(sum(amount) FILTER (WHERE code = 'refund'), 0) AS refunded, "        \
	"coalesce(sum(amount) FILTER (WHERE code = 'payment'), 0) AS paid FROM ledger_transfers "        \
	"WHERE order_id IS NOT NULL " where " GROUP BY order_id) s"

#define REFUND_TRANSFERS(where)                                                                    \
	"(SELECT DISTINCT refund_id, amount FROM ledger_transfers WHERE code = 'refund' " where ") l"

#define FEE_WRONG                                                                                  \
	"t.code = 'fee' AND CASE "                                                                       \
	"WHEN t.attempt_id IS NOT NULL THEN NOT EXISTS (SELECT 1 FROM statement_lines l WHERE l.attempt_id = t.attempt_id " \
	"AND l.outcome = 'matched' AND l.kind = 'payment' AND l.fee = t.amount) "                        \
	"WHEN t.id LIKE 'fee:%' THEN t.amount IS DISTINCT FROM (SELECT sum(l.fee) FROM statement_lines l " \
	"JOIN agencies a ON a.id = l.agency_id WHERE l.statement_id = split_part(t.id, ':', 2)::uuid "    \
	"AND a.code = split_part(t.id, ':', 3) AND l.outcome = 'matched' AND l.kind = 'payment') "        \
	"ELSE NOT EXISTS (SELECT 1 FROM ledger_transfers f JOIN statements s ON s.id = split_part(t.id, ':', 2)::uuid " \
	"WHERE t.id LIKE 'fee-reversal:%' AND f.id = 'fee:' || substr(t.id, 14) AND s.status = 'superseded' " \
	"AND f.amount = t.amount AND f.debit_account = t.credit_account AND f.credit_account = t.debit_account) END"

#define PAYOUT_WRONG                                                                               \
	"t.code = 'payout' AND NOT EXISTS (SELECT 1 FROM statement_lines l "                             \
	"JOIN agencies a ON a.id = l.agency_id WHERE l.outcome = 'payout' AND l.amount = t.amount "      \
	"AND t.id = 'payout:' || a.code || ':' || l.bank || ':' || to_char(l.payout_date, 'YYYYMMDD'))"

#define NETTING_WRONG(scope)                                                                       \
	"SELECT 'transfer ' || t.id FROM ledger_transfers t LEFT JOIN ledger_accounts d ON d.id = t.debit_account " \
	"LEFT JOIN ledger_accounts c ON c.id = t.credit_account WHERE t.code = 'netting' " scope " AND NOT "    \
	"(d.type = 'agency_payable' AND c.type = 'agency_receivable' AND d.agency_id = c.agency_id "           \
	"AND t.id LIKE 'net:%' AND EXISTS (SELECT 1 FROM ledger_transfers p "                   \
	"WHERE p.id = 'payout:' || substr(t.id, 5))) UNION ALL SELECT 'account ' || a.name || ' (balance ' "    \
	"|| sum(e.amount) || ')' FROM ledger_accounts a JOIN ledger_entries e ON e.account_id = a.id "         \
	"WHERE a.type = 'agency_receivable' GROUP BY a.name HAVING sum(e.amount) < 0 ORDER BY 1"

#define LINE_WRONG                                                                                 \
	"l.outcome = 'matched' AND l.kind IN ('payment', 'credit') AND (t.amount <> l.amount OR t.status <> 'succeeded')"

#define CASE_WRONG                                                                                 \
	"e.state = 'resolved' AND (e.resolution IS NULL "                                                \
	"OR NOT EXISTS (SELECT 1 FROM case_actions a WHERE a.case_id = e.id) "                           \
	"OR (e.resolution = 'posted' AND NOT EXISTS (SELECT 1 FROM ledger_transfers t WHERE t.id = e.transfer_id)) " \
	"OR (e.resolution = 'refund' AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.id = e.refund_id)))"
#define ACCEPT_WRONG                                                                               \
	"e.resolution = 'accepted' AND NOT EXISTS (SELECT 1 FROM case_actions a WHERE a.case_id = e.id " \
	"AND a.action = 'approve' AND a.actor <> e.proposed_by::text)"

const struct ledger_invariant ledger_invariants[] = {
	{"every transfer has exactly its two entries, debit +amount and credit -amount",
	 "SELECT t.id FROM ledger_transfers t LEFT JOIN " ENTRY_SIDES("") " ON e.transfer_id = t.id WHERE "
	 SIDES_WRONG " ORDER BY t.seq",
	 "SELECT t.id FROM ledger_transfers t LEFT JOIN " ENTRY_SIDES("WHERE " NEW_ENTRIES) " ON e.transfer_id = t.id "
	 "WHERE t.seq > $1 AND " SIDES_WRONG " UNION ALL SELECT 'entry ' || e.id || ' added to the verified transfer ' "
	 "|| t.id FROM ledger_entries e JOIN ledger_transfers t ON t.id = e.transfer_id WHERE e.id > $2 AND t.seq <= $1"},
	{"every transfer balances",
	 "SELECT transfer_id || ' (sum ' || sum(amount) || ')' FROM ledger_entries GROUP BY transfer_id "
	 "HAVING sum(amount) <> 0 ORDER BY 1",
	 "SELECT e.transfer_id || ' (sum ' || sum(e.amount) || ')' FROM ledger_entries e LEFT JOIN ledger_transfers t "
	 "ON t.id = e.transfer_id WHERE " NEW_ENTRIES " AND (t.seq IS NULL OR t.seq > $1) GROUP BY e.transfer_id "
	 "HAVING sum(e.amount) <> 0 ORDER BY 1"},
	{"every transfer and entry refers to accounts, orders, attempts and transfers that exist",
	 "SELECT 'transfer ' || t.id FROM ledger_transfers t LEFT JOIN ledger_accounts d ON d.id = t.debit_account "
	 "LEFT JOIN ledger_accounts c ON c.id = t.credit_account LEFT JOIN orders o ON o.id = t.order_id "
	 "LEFT JOIN attempts a ON a.id = t.attempt_id WHERE d.id IS NULL OR c.id IS NULL "
	 "OR (t.order_id IS NOT NULL AND o.id IS NULL) OR (t.attempt_id IS NOT NULL AND a.id IS NULL) "
	 "UNION ALL SELECT 'entry ' || e.id FROM ledger_entries e LEFT JOIN ledger_transfers t ON t.id = e.transfer_id "
	 "LEFT JOIN ledger_accounts a ON a.id = e.account_id WHERE t.id IS NULL OR a.id IS NULL ORDER BY 1",
	 "SELECT 'transfer ' || t.id FROM ledger_transfers t LEFT JOIN ledger_accounts d ON d.id = t.debit_account "
	 "LEFT JOIN ledger_accounts c ON c.id = t.credit_account LEFT JOIN orders o ON o.id = t.order_id "
	 "LEFT JOIN attempts a ON a.id = t.attempt_id WHERE t.seq > $1 AND (d.id IS NULL OR c.id IS NULL "
	 "OR (t.order_id IS NOT NULL AND o.id IS NULL) OR (t.attempt_id IS NOT NULL AND a.id IS NULL)) "
	 "UNION ALL SELECT 'entry ' || e.id FROM ledger_entries e LEFT JOIN ledger_transfers t ON t.id = e.transfer_id "
	 "LEFT JOIN ledger_accounts a ON a.id = e.account_id WHERE " NEW_ENTRIES " AND (t.id IS NULL OR a.id IS NULL) "
	 "ORDER BY 1"},
	/* the incremental form follows from the others: what was verified summed to zero, each new
	 * transfer balances and no entry was added to a verified one */
	{"debits equal credits overall",
	 "SELECT 'all entries sum to ' || sum(amount) FROM ledger_entries HAVING sum(amount) <> 0", NULL},
	{"every succeeded attempt has exactly one payment transfer (or only suspense transfers when its order "
	 "was no longer payable)",
	 "SELECT t.id::text FROM attempts t LEFT JOIN " ATTEMPT_POSTINGS("") " ON l.attempt_id = t.id WHERE "
	 ATTEMPT_WRONG " ORDER BY 1",
	 /* per attempt, the payment by its unique index; suspense (no index) only when none */
	 "SELECT t.id::text FROM " SCOPE_ATTEMPTS " s JOIN attempts t ON t.id = s.id CROSS JOIN LATERAL (SELECT "
	 "count(*) AS pay FROM ledger_transfers WHERE code = 'payment' AND attempt_id = t.id) p WHERE t.status = "
	 "'succeeded' AND p.pay <> 1 AND NOT (p.pay = 0 AND EXISTS (SELECT 1 FROM ledger_transfers l WHERE "
	 "l.code = 'suspense' AND l.attempt_id = t.id)) ORDER BY 1"},
	{"every payment transfer belongs to a succeeded attempt of the same amount and order",
	 "SELECT l.id FROM ledger_transfers l LEFT JOIN attempts t ON t.id = l.attempt_id WHERE l.code = 'payment' "
	 "AND (t.id IS NULL OR t.status <> 'succeeded' OR t.amount <> l.amount OR t.order_id <> l.order_id) "
	 "ORDER BY l.seq",
	 "SELECT l.id FROM ledger_transfers l LEFT JOIN attempts t ON t.id = l.attempt_id WHERE l.code = 'payment' "
	 "AND (l.seq > $1 OR l.attempt_id IN " SCOPE_ATTEMPTS ") "
	 "AND (t.id IS NULL OR t.status <> 'succeeded' OR t.amount <> l.amount OR t.order_id <> l.order_id) "
	 "ORDER BY l.seq"},
	{"every paid order has exactly one payment transfer, and no unpaid order has one",
	 "SELECT o.id || ' (' || o.status || ')' FROM orders o LEFT JOIN " ORDER_PAYMENTS("") " ON l.order_id = o.id "
	 "WHERE " ORDER_WRONG " ORDER BY 1",
	 "SELECT o.id || ' (' || o.status || ')' FROM " SCOPE_ORDERS " s JOIN orders o ON o.id = s.id LEFT JOIN LATERAL "
	 ORDER_PAYMENTS("AND order_id = o.id") " ON true WHERE " ORDER_WRONG " ORDER BY 1"},
	{"refunds never exceed payments per order",
	 "SELECT order_id || ' (refunded ' || refunded || ' of ' || paid || ')' FROM " REFUND_SUMS("")
	 " WHERE refunded > paid ORDER BY 1",
	 "SELECT order_id || ' (refunded ' || refunded || ' of ' || paid || ')' FROM " REFUND_SUMS(
		 "AND order_id IN " SCOPE_ORDERS) " WHERE refunded > paid ORDER BY 1"},
	{"every succeeded refund has its reversing transfer and every refund transfer a succeeded refund",
	 "SELECT 'refund ' || r.id FROM refunds r LEFT JOIN " REFUND_TRANSFERS("") " ON l.refund_id = r.id "
	 "AND l.amount = r.amount WHERE (r.status = 'succeeded') <> (l.refund_id IS NOT NULL) "
	 "UNION ALL SELECT 'transfer ' || l.id FROM ledger_transfers l WHERE l.code = 'refund' AND NOT EXISTS "
	 "(SELECT 1 FROM refunds r WHERE r.id = l.refund_id AND r.status = 'succeeded') ORDER BY 1",
	 "SELECT 'refund ' || r.id FROM " SCOPE_REFUNDS " s JOIN refunds r ON r.id = s.id LEFT JOIN LATERAL "
	 REFUND_TRANSFERS("AND order_id = r.order_id AND refund_id = r.id AND amount = r.amount") " ON true "
	 "WHERE (r.status = 'succeeded') <> (l.refund_id IS NOT NULL) "
	 "UNION ALL SELECT 'transfer ' || l.id FROM ledger_transfers l WHERE l.code = 'refund' "
	 "AND (l.seq > $1 OR l.refund_id IN " SCOPE_REFUNDS ") AND NOT EXISTS "
	 "(SELECT 1 FROM refunds r WHERE r.id = l.refund_id AND r.status = 'succeeded') ORDER BY 1"},
	/* fee:{statement}:{agency code} (fee-reversal: for a superseded statement); a transfer of
	 * one attempt's fee is from before fees were posted per statement. Fee and payout
	 * transfers are a few per statement: the per-row lookups stay small. */
	{"every fee transfer is the fees of its statement's matched payments of its agency, and every reversal "
	 "undoes one of a superseded statement",
	 "SELECT t.id FROM ledger_transfers t WHERE " FEE_WRONG " ORDER BY t.seq",
	 "SELECT t.id FROM ledger_transfers t WHERE t.seq > $1 AND " FEE_WRONG " ORDER BY t.seq"},
	{"every payout transfer is a payout credit seen on a treasury statement, of its amount",
	 "SELECT t.id FROM ledger_transfers t WHERE " PAYOUT_WRONG " ORDER BY t.seq",
	 "SELECT t.id FROM ledger_transfers t WHERE t.seq > $1 AND " PAYOUT_WRONG " ORDER BY t.seq"},
	/* net:{agency}:{bank}:{day}, after the payout of the same name; few rows */
	{"every netting transfer moves an agency's payable to its own receivable, and no receivable is overpaid",
	 NETTING_WRONG(""), NETTING_WRONG("AND t.seq > $1")},
	{"every matched settlement line is of its attempt's amount, and its attempt succeeded",
	 "SELECT l.statement_id || ' line ' || l.line FROM statement_lines l JOIN attempts t ON t.id = l.attempt_id "
	 "WHERE " LINE_WRONG " ORDER BY 1",
	 "SELECT l.statement_id || ' line ' || l.line FROM statement_lines l JOIN attempts t ON t.id = l.attempt_id "
	 "WHERE (l.statement_id IN (SELECT id FROM statements WHERE imported_at >= $3) OR l.attempt_id IN "
	 SCOPE_ATTEMPTS ") AND " LINE_WRONG " ORDER BY 1"},
	{"every resolved case has its resolution and its actions; a posted one its transfer, a refund its refund",
	 "SELECT e.id::text FROM payment_exceptions e WHERE " CASE_WRONG " ORDER BY 1",
	 "SELECT e.id::text FROM payment_exceptions e WHERE e.id IN " SCOPE_CASES " AND " CASE_WRONG " ORDER BY 1"},
	{"an accepted case was approved by someone other than its proposer",
	 "SELECT e.id::text FROM payment_exceptions e WHERE " ACCEPT_WRONG " ORDER BY 1",
	 "SELECT e.id::text FROM payment_exceptions e WHERE e.id IN " SCOPE_CASES " AND " ACCEPT_WRONG " ORDER BY 1"},
	{"the chain head matches the last transfer",
	 "SELECT 'head seq ' || c.seq || ' hash ' || left(c.hash, 12) FROM ledger_chain c WHERE "
	 "c.seq <> (SELECT coalesce(max(seq), 0) FROM ledger_transfers) OR c.hash <> coalesce((SELECT hash FROM "
	 "ledger_transfers ORDER BY seq DESC LIMIT 1), repeat('0', 64))",
	 "SELECT 'head seq ' || c.seq || ' hash ' || left(c.hash, 12) FROM ledger_chain c WHERE "
	 "c.seq <> (SELECT coalesce(max(seq), 0) FROM ledger_transfers) OR c.hash <> coalesce((SELECT hash FROM "
	 "ledger_transfers ORDER BY seq DESC LIMIT 1), repeat('0', 64))"},
};
const size_t ledger_invariant_count = ARRAY_LEN(ledger_invariants);

void ledger_transfer_hash(const char *prev, const char *id, int64_t seq, int64_t debit, int64_t credit,
			  int64_t amount, const char *code, const char *order_id, const char *attempt_id,
			  const char *refund_id, char out[65])
{
	char *text = xasprintf("%s|%s|%lld|%lld|%lld|%lld|%s|%s|%s|%s", prev, id, (long long)seq, (long long)debit,
			       (long long)credit, (long long)amount, code, order_id, attempt_id, refund_id);
	util_sha256_hex(text, strlen(text), out);
	free(text);
}

/* ---- the run ---- */

/* What the check starts from: the genesis (full), or the last checkpoint (incremental). */
struct checkpoint {
	char seq[24], entry_id[24], since[48], hash[65];
};

/* An invariant's rows, whatever its query calls its one column. */
static const char offenders_sql[] = "SELECT offender FROM (%s) AS invariant(offender)";
PG_TEXT_ROW(offender);

/* Runs one invariant; prints ok, or FAIL with the first 50 offending rows. 1 when it failed. */
static int report_rows(PGconn *c, const struct ledger_invariant *inv, const struct checkpoint *from, FILE *out)
{
	const char *query = from ? inv->incremental : inv->full;
	if (!query) {
		fprintf(out, "skip  %s (a full check proves it)\n", inv->name);
		return 0;
	}
	char *sql = xasprintf(offenders_sql, query);
	const char *params[3] = {from ? from->seq : NULL, from ? from->entry_id : NULL, from ? from->since : NULL};
	/* the types named, so a query that uses only some of the three still takes all three */
	static const Oid types[3] = {20 /* int8 */, 20, 1184 /* timestamptz */};
	PGresult *r = PQexecParams(c, sql, from ? 3 : 0, from ? types : NULL, from ? params : NULL, NULL, NULL, 0);
	free(sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(out, "ERROR %s: %s", inv->name, PQresultErrorMessage(r));
		PQclear(r);
		return 1;
	}
	int n = PQntuples(r);
	if (n) {
		fprintf(out, "FAIL  %s: %d row(s)\n", inv->name, n);
		struct offender_row o;
		for (int i = 0; i < n && i < 50 && PG_ROW(r, i, offender_cols, &o); i++)
			fprintf(out, "      %s\n", o.offender);
		if (n > 50)
			fprintf(out, "      ... and %d more\n", n - 50);
	} else {
		fprintf(out, "ok    %s\n", inv->name);
	}
	PQclear(r);
	return n ? 1 : 0;
}

/* The rows the chain walk reads. */
#define CHAIN_COLUMNS                                                                              \
	"SELECT id, seq, debit_account, credit_account, amount, code, coalesce(order_id::text, '') AS order_id, " \
	"coalesce(attempt_id::text, '') AS attempt_id, coalesce(refund_id::text, '') AS refund_id, prev_hash, hash " \
	"FROM ledger_transfers "
struct chain_row {
	const char *id;
	int64_t seq, debit_account, credit_account, amount;
	const char *code, *order_id, *attempt_id, *refund_id; /* absent ids empty */
	const char *prev_hash, *hash;
};
static const struct pg_col chain_cols[] = {
	PG_COL(struct chain_row, id, PG_TEXT),
	PG_COL(struct chain_row, seq, PG_INT64),
	PG_COL(struct chain_row, debit_account, PG_INT64),
	PG_COL(struct chain_row, credit_account, PG_INT64),
	PG_COL(struct chain_row, amount, PG_INT64),
	PG_COL(struct chain_row, code, PG_TEXT),
	PG_COL(struct chain_row, order_id, PG_TEXT),
	PG_COL(struct chain_row, attempt_id, PG_TEXT),
	PG_COL(struct chain_row, refund_id, PG_TEXT),
	PG_COL(struct chain_row, prev_hash, PG_TEXT),
	PG_COL(struct chain_row, hash, PG_TEXT),
};

/* Recomputes the hash chain row by row from `from` (single-row mode: the ledger may be large);
 * counts the transfers read, and leaves the last one's seq and hash in last_seq, last_hash. */
static int check_chain(PGconn *c, const struct checkpoint *from, long *count, long long *last_seq,
		       char last_hash[65], FILE *out)
{
	const char *params[1] = {from ? from->seq : "0"};
	if (!PQsendQueryParams(c, CHAIN_COLUMNS "WHERE seq > $1 ORDER BY seq", 1, NULL, params, NULL, NULL, 0) ||
	    !PQsetSingleRowMode(c)) {
		fprintf(out, "ERROR hash chain: %s", PQerrorMessage(c));
		return 1;
	}
	char prev[65];
	snprintf(prev, sizeof prev, "%s", from ? from->hash : LEDGER_GENESIS_HASH);
	long long expect_seq = (from ? strtoll(from->seq, NULL, 10) : 0) + 1;
	int bad = 0;
	PGresult *r;
	while ((r = PQgetResult(c)) != NULL) {
		struct chain_row t;
		if (PQresultStatus(r) == PGRES_SINGLE_TUPLE && !PG_ROW(r, 0, chain_cols, &t)) {
			fprintf(out, "ERROR hash chain: unexpected columns\n");
			bad++;
		} else if (PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
			const char *id = t.id;
			long long seq = t.seq;
			char h[65];
			ledger_transfer_hash(prev, id, seq, t.debit_account, t.credit_account, t.amount, t.code, t.order_id,
					     t.attempt_id, t.refund_id, h);
			const char *stored_prev = t.prev_hash, *stored = t.hash;
			if (seq != expect_seq || strcmp(stored_prev, prev) != 0 || strcmp(stored, h) != 0) {
				if (bad < 50)
					fprintf(out, "      transfer %s (seq %lld): %s\n", id, seq,
						seq != expect_seq		? "gap in the sequence"
						: strcmp(stored_prev, prev) != 0 ? "does not link to the previous transfer"
										 : "its fields do not match its hash");
				bad++;
			}
			snprintf(prev, sizeof prev, "%s", stored);
			expect_seq = seq + 1;
			*last_seq = seq;
			(*count)++;
		} else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			fprintf(out, "ERROR hash chain: %s", PQresultErrorMessage(r));
			bad++;
		}
		PQclear(r);
	}
	snprintf(last_hash, 65, "%s", prev);
	fprintf(out, "%s  the transfers' hash chain is intact%s%s\n", bad ? "FAIL" : "ok  ",
		from ? " from the checkpoint" : "", bad ? " (rows above)" : "");
	return bad ? 1 : 0;
}

struct checkpoint_row {
	const char *seq, *entry_id, *since, *hash;
	bool holds; /* its transfer still has the hash it recorded */
};
static const struct pg_col checkpoint_cols[] = {
	PG_COL(struct checkpoint_row, seq, PG_TEXT),
	PG_COL(struct checkpoint_row, entry_id, PG_TEXT),
	PG_COL(struct checkpoint_row, since, PG_TEXT),
	PG_COL(struct checkpoint_row, hash, PG_TEXT),
	PG_COL(struct checkpoint_row, holds, PG_BOOL),
};

/* The last checkpoint, and whether it still holds: its transfer has the hash it recorded. */
static bool load_checkpoint(PGconn *c, struct checkpoint *cp, int *failed, FILE *out)
{
	PGresult *r = PQexec(c, "SELECT p.seq, p.entry_id, p.since, p.hash, t.hash IS NOT DISTINCT FROM p.hash OR "
				"(p.seq = 0 AND t.hash IS NULL) AS holds FROM ledger_checkpoints p LEFT JOIN ledger_transfers t "
				"ON t.seq = p.seq ORDER BY p.id DESC LIMIT 1");
	struct checkpoint_row row;
	bool found = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PG_ROW(r, 0, checkpoint_cols, &row);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fprintf(out, "ERROR checkpoint: %s", PQresultErrorMessage(r));
	if (found) {
		snprintf(cp->seq, sizeof cp->seq, "%s", row.seq);
		snprintf(cp->entry_id, sizeof cp->entry_id, "%s", row.entry_id);
		snprintf(cp->since, sizeof cp->since, "%s", row.since);
		snprintf(cp->hash, sizeof cp->hash, "%s", row.hash);
		bool holds = row.holds;
		fprintf(out, "%s  the checkpoint at transfer %s still holds\n", holds ? "ok  " : "FAIL", cp->seq);
		if (!holds)
			(*failed)++;
	}
	PQclear(r);
	return found;
}

/* the next checkpoint's horizon, and the last entry this check saw */
PG_TEXT_ROW(horizon);
PG_TEXT_ROW(entry_id);

int ledger_check_run(PGconn *c, bool incremental, FILE *out)
{
	int64_t t0 = util_monotonic_us();
	PQclear(PQexec(c, "SET work_mem = '256MB'"));
	PQclear(PQexec(c, "SET jit = off"));
	/* The horizon of the next checkpoint, read before the snapshot: a change this check cannot
	 * see was made by a transaction open now or begun later, so its updated_at is at least the
	 * oldest open transaction's start, or now. */
	PGresult *h = PQexec(c, "SELECT least(clock_timestamp(), (SELECT min(xact_start) FROM pg_stat_activity "
				"WHERE datname = current_database() AND pid <> pg_backend_pid())) AS horizon");
	struct horizon_row hr;
	if (PQresultStatus(h) != PGRES_TUPLES_OK || !PG_ROW(h, 0, horizon_cols, &hr)) {
		fprintf(out, "ERROR %s", PQresultErrorMessage(h));
		PQclear(h);
		return -1;
	}
	char horizon[48];
	snprintf(horizon, sizeof horizon, "%s", hr.horizon);
	PQclear(h);
	/* One consistent snapshot for every check. */
	if (!pg_exec_blocking(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", out))
		return -1;
	int failed = 0;
	struct checkpoint cp;
	const struct checkpoint *from = NULL;
	if (incremental) {
		if (load_checkpoint(c, &cp, &failed, out))
			from = &cp;
		else
			fprintf(out, "note  no checkpoint yet: a full check\n");
	}
	for (size_t i = 0; i < ledger_invariant_count; i++)
		failed += report_rows(c, &ledger_invariants[i], from, out);
	long transfers = 0;
	long long last_seq = from ? strtoll(from->seq, NULL, 10) : 0;
	char last_hash[65];
	failed += check_chain(c, from, &transfers, &last_seq, last_hash, out);
	PGresult *e = PQexec(c, "SELECT coalesce(max(id), 0) AS entry_id FROM ledger_entries");
	char entry_id[24] = "0";
	struct entry_id_row le;
	if (PQresultStatus(e) == PGRES_TUPLES_OK && PG_ROW(e, 0, entry_id_cols, &le))
		snprintf(entry_id, sizeof entry_id, "%s", le.entry_id);
	else
		failed++;
	PQclear(e);
	pg_exec_blocking(c, "COMMIT", out);
	double seconds = (double)(util_monotonic_us() - t0) / 1e6;

	/* The outcome is kept for /metrics (feegate_ledger_check_*), so an alert sees a failing or
	 * a forgotten check, and a passing check becomes the next one's checkpoint; best effort: a
	 * read-only role still gets its answer. */
	char outcome[64], seq[24], count[24], secs[32];
	snprintf(outcome, sizeof outcome, "%d %ld", failed, (long)time(NULL));
	snprintf(seq, sizeof seq, "%lld", last_seq);
	snprintf(count, sizeof count, "%ld", transfers);
	snprintf(secs, sizeof secs, "%.3f", seconds);
	const char *params[8] = {outcome, seq, last_hash, entry_id, horizon, from ? "f" : "t", count, secs};
	PGresult *saved = PQexecParams(c,
				       "WITH o AS (INSERT INTO settings (name, value) VALUES ('ledger_check', $1) "
				       "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value) "
				       "INSERT INTO ledger_checkpoints (seq, hash, entry_id, since, full_check, transfers, seconds) "
				       "SELECT $2, $3, $4, $5, $6, $7, $8 WHERE $1 LIKE '0 %'",
				       8, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(saved) != PGRES_COMMAND_OK)
		fprintf(stderr, "ledger check: outcome not recorded: %s", PQresultErrorMessage(saved));
	PQclear(saved);
	if (failed)
		fprintf(out, "ledger check: %d invariant(s) violated\n", failed);
	else
		fprintf(out, "ledger check: ok, %ld transfers%s, %.1f s\n", transfers, from ? " since the checkpoint" : "",
			seconds);
	return failed;
}
