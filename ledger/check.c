#include "ledger/check.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "lib/util.h"

const struct ledger_invariant ledger_invariants[] = {
	{"every transfer has exactly its two entries, debit +amount and credit -amount",
	 "SELECT t.id FROM ledger_transfers t WHERE "
	 "(SELECT count(*) FROM ledger_entries e WHERE e.transfer_id = t.id) <> 2 "
	 "OR NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transfer_id = t.id "
	 "AND e.account_id = t.debit_account AND e.amount = t.amount) "
	 "OR NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transfer_id = t.id "
	 "AND e.account_id = t.credit_account AND e.amount = -t.amount) ORDER BY t.seq"},
	{"every transfer balances",
	 "SELECT transfer_id || ' (sum ' || sum(amount) || ')' FROM ledger_entries GROUP BY transfer_id "
	 "HAVING sum(amount) <> 0 ORDER BY 1"},
	{"every transfer and entry refers to accounts, orders, attempts and transfers that exist",
	 "SELECT 'transfer ' || t.id FROM ledger_transfers t WHERE "
	 "NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = t.debit_account) "
	 "OR NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = t.credit_account) "
	 "OR (t.order_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = t.order_id)) "
	 "OR (t.attempt_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.id = t.attempt_id)) "
	 "UNION ALL SELECT 'entry ' || e.id FROM ledger_entries e WHERE "
	 "NOT EXISTS (SELECT 1 FROM ledger_transfers t WHERE t.id = e.transfer_id) "
	 "OR NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = e.account_id) ORDER BY 1"},
	{"debits equal credits overall",
	 "SELECT 'all entries sum to ' || sum(amount) FROM ledger_entries HAVING sum(amount) <> 0"},
	{"every succeeded attempt has exactly one payment transfer (or only suspense transfers when its order "
	 "was no longer payable)",
	 "SELECT t.id::text FROM attempts t WHERE t.status = 'succeeded' AND NOT ("
	 "(SELECT count(*) FROM ledger_transfers l WHERE l.attempt_id = t.id AND l.code = 'payment') = 1 OR "
	 "((SELECT count(*) FROM ledger_transfers l WHERE l.attempt_id = t.id AND l.code = 'payment') = 0 AND "
	 "EXISTS (SELECT 1 FROM ledger_transfers l WHERE l.attempt_id = t.id AND l.code = 'suspense'))) ORDER BY 1"},
	{"every payment transfer belongs to a succeeded attempt of the same amount and order",
	 "SELECT l.id FROM ledger_transfers l LEFT JOIN attempts t ON t.id = l.attempt_id WHERE l.code = 'payment' "
	 "AND (t.id IS NULL OR t.status <> 'succeeded' OR t.amount <> l.amount OR t.order_id <> l.order_id) "
	 "ORDER BY l.seq"},
	{"every paid order has exactly one payment transfer, and no unpaid order has one",
	 "SELECT o.id || ' (' || o.status || ')' FROM orders o WHERE "
	 "(o.status IN ('succeeded', 'partially_refunded', 'refunded')) <> "
	 "((SELECT count(*) FROM ledger_transfers l WHERE l.order_id = o.id AND l.code = 'payment') = 1) "
	 "OR (SELECT count(*) FROM ledger_transfers l WHERE l.order_id = o.id AND l.code = 'payment') > 1 ORDER BY 1"},
	{"refunds never exceed payments per order",
	 "SELECT order_id || ' (refunded ' || coalesce(sum(amount) FILTER (WHERE code = 'refund'), 0) || ' of ' || "
	 "coalesce(sum(amount) FILTER (WHERE code = 'payment'), 0) || ')' FROM ledger_transfers "
	 "WHERE order_id IS NOT NULL GROUP BY order_id HAVING coalesce(sum(amount) FILTER (WHERE code = 'refund'), 0) > "
	 "coalesce(sum(amount) FILTER (WHERE code = 'payment'), 0) ORDER BY 1"},
	{"every succeeded refund has its reversing transfer and every refund transfer a succeeded refund",
	 "SELECT 'refund ' || r.id FROM refunds r WHERE (r.status = 'succeeded') <> EXISTS (SELECT 1 FROM "
	 "ledger_transfers l WHERE l.refund_id = r.id AND l.code = 'refund' AND l.amount = r.amount) "
	 "UNION ALL SELECT 'transfer ' || l.id FROM ledger_transfers l WHERE l.code = 'refund' AND NOT EXISTS "
	 "(SELECT 1 FROM refunds r WHERE r.id = l.refund_id AND r.status = 'succeeded') ORDER BY 1"},
	/* fee:{statement}:{agency code} (fee-reversal: for a superseded statement); a transfer of
	 * one attempt's fee is from before fees were posted per statement */
	{"every fee transfer is the fees of its statement's matched payments of its agency, and every reversal "
	 "undoes one of a superseded statement",
	 "SELECT t.id FROM ledger_transfers t WHERE t.code = 'fee' AND CASE "
	 "WHEN t.attempt_id IS NOT NULL THEN NOT EXISTS (SELECT 1 FROM statement_lines l WHERE l.attempt_id = t.attempt_id "
	 "AND l.outcome = 'matched' AND l.kind = 'payment' AND l.fee = t.amount) "
	 "WHEN t.id LIKE 'fee:%' THEN t.amount IS DISTINCT FROM (SELECT sum(l.fee) FROM statement_lines l "
	 "JOIN agencies a ON a.id = l.agency_id WHERE l.statement_id = split_part(t.id, ':', 2)::uuid "
	 "AND a.code = split_part(t.id, ':', 3) AND l.outcome = 'matched' AND l.kind = 'payment') "
	 "ELSE NOT EXISTS (SELECT 1 FROM ledger_transfers f JOIN statements s ON s.id = split_part(t.id, ':', 2)::uuid "
	 "WHERE t.id LIKE 'fee-reversal:%' AND f.id = 'fee:' || substr(t.id, 14) AND s.status = 'superseded' "
	 "AND f.amount = t.amount AND f.debit_account = t.credit_account AND f.credit_account = t.debit_account) END "
	 "ORDER BY t.seq"},
	{"every payout transfer is a payout credit seen on a treasury statement, of its amount",
	 "SELECT t.id FROM ledger_transfers t WHERE t.code = 'payout' AND NOT EXISTS (SELECT 1 FROM statement_lines l "
	 "JOIN agencies a ON a.id = l.agency_id WHERE l.outcome = 'payout' AND l.amount = t.amount "
	 "AND t.id = 'payout:' || a.code || ':' || l.bank || ':' || to_char(l.payout_date, 'YYYYMMDD')) ORDER BY t.seq"},
	{"every matched settlement line is of its attempt's amount, and its attempt succeeded",
	 "SELECT l.statement_id || ' line ' || l.line FROM statement_lines l JOIN attempts t ON t.id = l.attempt_id "
	 "WHERE l.outcome = 'matched' AND l.kind IN ('payment', 'credit') AND (t.amount <> l.amount OR t.status <> 'succeeded') "
	 "ORDER BY 1"},
	{"every resolved case has its resolution and its actions; a posted one its transfer, a refund its refund",
	 "SELECT e.id::text FROM payment_exceptions e WHERE e.state = 'resolved' AND (e.resolution IS NULL "
	 "OR NOT EXISTS (SELECT 1 FROM case_actions a WHERE a.case_id = e.id) "
	 "OR (e.resolution = 'posted' AND NOT EXISTS (SELECT 1 FROM ledger_transfers t WHERE t.id = e.transfer_id)) "
	 "OR (e.resolution = 'refund' AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.id = e.refund_id))) ORDER BY 1"},
	{"an accepted case was approved by someone other than its proposer",
	 "SELECT e.id::text FROM payment_exceptions e WHERE e.resolution = 'accepted' AND NOT EXISTS (SELECT 1 FROM "
	 "case_actions a WHERE a.case_id = e.id AND a.action = 'approve' AND a.actor <> e.proposed_by::text) ORDER BY 1"},
	{"the chain head matches the last transfer",
	 "SELECT 'head seq ' || c.seq || ' hash ' || left(c.hash, 12) FROM ledger_chain c WHERE "
	 "c.seq <> (SELECT coalesce(max(seq), 0) FROM ledger_transfers) OR c.hash <> coalesce((SELECT hash FROM "
	 "ledger_transfers ORDER BY seq DESC LIMIT 1), repeat('0', 64))"},
};
const size_t ledger_invariant_count = ARRAY_LEN(ledger_invariants);

const char ledger_chain_sql[] = "SELECT id, seq, debit_account, credit_account, amount, code, "
				"coalesce(order_id::text, ''), coalesce(attempt_id::text, ''), "
				"coalesce(refund_id::text, ''), prev_hash, hash FROM ledger_transfers ORDER BY seq";

void ledger_transfer_hash(const char *prev, const char *id, int64_t seq, int64_t debit, int64_t credit,
			  int64_t amount, const char *code, const char *order_id, const char *attempt_id,
			  const char *refund_id, char out[65])
{
	char *text = xasprintf("%s|%s|%lld|%lld|%lld|%lld|%s|%s|%s|%s", prev, id, (long long)seq, (long long)debit,
			       (long long)credit, (long long)amount, code, order_id, attempt_id, refund_id);
	util_sha256_hex(text, strlen(text), out);
	free(text);
}
