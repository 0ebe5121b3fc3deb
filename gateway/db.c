#include "gateway/db.h"

#include "lib/util.h"

const struct pg_statement db_statements[] = {
	{"ping", "SELECT 1"},
	{"auth",
	 "SELECT 'client', c.id::text, c.name, NULL::text, NULL::bigint, NULL::text, "
	 "coalesce((SELECT string_agg(a.id || ':' || a.code, ',' ORDER BY a.code) FROM client_agencies ca "
	 "JOIN agencies a ON a.id = ca.agency_id WHERE ca.client_id = c.id), '') "
	 "FROM clients c WHERE c.key_hash = $1::text AND c.disabled_at IS NULL "
	 "UNION ALL "
	 "SELECT 'staff', s.id::text, s.name, s.role, s.agency_id, a.code, '' FROM staff s "
	 "LEFT JOIN agencies a ON a.id = s.agency_id WHERE s.token_hash = $1::text AND s.disabled_at IS NULL"},
	{"intake", "SELECT r_idx, r_outcome, r_status, r_body, r_order_id FROM feegate_intake($1::json)"},
	/* the set-based renderer, inlined into the query: no function call per read */
	{"order_get", "SELECT r.doc FROM feegate_orders_json(ARRAY[$1::uuid], $3::text) r WHERE r.client_id = $2::uuid"},
	{"order_by_ref", "SELECT r.doc FROM orders o, feegate_orders_json(ARRAY[o.id], $3::text) r "
			 "WHERE o.client_id = $1::uuid AND o.reference = $2::text"},
	{"order_transition", "SELECT feegate_order_transition($1::uuid, $2::uuid, $3::text)"},
	{"checkout_get",
	 "SELECT o.id, a.code, a.name, o.description, o.amount, o.items, o.status, "
	 "(extract(epoch FROM o.expires_at) * 1000)::bigint, a.banks::text "
	 "FROM orders o JOIN agencies a ON a.id = o.agency_id WHERE o.checkout_token = $1::text"},
	{"checkout_by_id",
	 "SELECT o.id, a.code, a.name, o.description, o.amount, o.items, o.status, "
	 "(extract(epoch FROM o.expires_at) * 1000)::bigint, a.banks::text "
	 "FROM orders o JOIN agencies a ON a.id = o.agency_id WHERE o.id = $1::uuid AND o.checkout_token = $2::text"},
	{"open_attempt", "SELECT * FROM feegate_open_attempt($1::text, $2::text, $3::uuid, $4::text)"},
	{"fail_attempt", "SELECT feegate_fail_attempt($1::uuid, $2::text)"},
	{"return_lookup",
	 "SELECT o.id, o.status, o.return_url FROM attempts t JOIN orders o ON o.id = t.order_id "
	 "WHERE t.bank = $1::text AND t.bank_order_ref = $2::text"},
	{"apply_notifications",
	 "SELECT r_idx, r_outcome, r_order, r_status, r_delivery, r_client, r_url, r_secret, r_payload "
	 "FROM feegate_apply_notifications($1::json, current_setting('feegate.webhook_lease_s')::int)"},
	{"set_public_url",
	 "INSERT INTO settings (name, value) VALUES ('public_url', $1::text) "
	 "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value"},
	{"close_attempt", "SELECT feegate_close_attempt($1::uuid, $2::text, $3::text)"},
	{"expire_due", "SELECT feegate_expire_due($1::int)"},
	{"attempts_to_query", "SELECT * FROM feegate_attempts_to_query($1::int, $2::int)"},
	{"idempotency_cleanup",
	 "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys "
	 "WHERE created_at < now() - interval '48 hours' LIMIT 1000)"},
	/* the webhook outbox's backlog for /metrics: rows due now (counted up to 100,000, so a
	 * huge backlog costs a bounded read of the due index) and how long the oldest has waited */
	{"outbox_backlog",
	 "SELECT count(*), coalesce(extract(epoch FROM now() - min(due)), 0)::float8 FROM ("
	 "SELECT next_attempt_at AS due FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now() "
	 "ORDER BY next_attempt_at LIMIT 100000) d"},
	/* the last `feegate ledger check`: "<invariants violated> <unix time>" */
	{"ledger_check_status", "SELECT value FROM settings WHERE name = 'ledger_check'"},
	{"claim_deliveries", "SELECT * FROM feegate_claim_deliveries($1::int, $2::int, $3::uuid[])"},
	/* The relay's bookkeeping commits without waiting for its WAL flush (synchronous_commit off
	 * for these transactions only): a crash can lose only the record of an answer, and the
	 * webhook is then sent again (portals get each event at least once). The money path, and
	 * everything acknowledged to a bank or a portal, commits durably. */
	{"delivery_results", "SELECT feegate_delivery_results($1::json), set_config('synchronous_commit', 'off', true)"},
	{"delivery_release", "SELECT feegate_delivery_release($1::json), set_config('synchronous_commit', 'off', true)"},
	/* Newest first, keyset on (created_at in microseconds, id); $4 the cursor or '', $5 the limit. */
	{"deliveries_list",
	 "WITH page AS (SELECT d.*, (extract(epoch FROM d.created_at) * 1000000)::bigint AS at_us "
	 "FROM webhook_deliveries d WHERE d.client_id = $1::uuid AND ($2::text = '' OR d.status = $2::text) "
	 "AND ($3::text = '' OR d.order_id::text = $3::text) "
	 "AND ($4::text = '' OR ((extract(epoch FROM d.created_at) * 1000000)::bigint, d.id) < "
	 "(split_part($4::text, '.', 1)::bigint, split_part($4::text, '.', 2)::uuid)) "
	 "ORDER BY d.created_at DESC, d.id DESC LIMIT $5::int + 1), "
	 "shown AS (SELECT * FROM page ORDER BY created_at DESC, id DESC LIMIT $5::int) "
	 "SELECT json_build_object('data', coalesce((SELECT json_agg(feegate_delivery_json(w) ORDER BY s.created_at DESC, "
	 "s.id DESC) FROM shown s JOIN webhook_deliveries w ON w.id = s.id), '[]'), 'next_cursor', "
	 "CASE WHEN (SELECT count(*) FROM page) > $5::int THEN (SELECT at_us || '.' || id FROM shown "
	 "ORDER BY created_at ASC, id ASC LIMIT 1) END)"},
	{"delivery_redeliver",
	 "UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now(), retry_from = now(), last_error = NULL "
	 "WHERE id = $1::uuid AND client_id = $2::uuid RETURNING feegate_delivery_json(d)"},
	{"refund_create",
	 "SELECT * FROM feegate_refund_create($1::uuid, $2::bigint, $3::bigint, $4::text, $5::uuid, $6::uuid, "
	 "$7::text, $8::text, $9::text)"},
	{"refund_complete", "SELECT * FROM feegate_refund_complete($1::uuid, $2::bool, $3::text, $4::text, $5::uuid)"},
	{"refund_lookup", "SELECT r.id, t.bank, r.status FROM refunds r JOIN attempts t ON t.id = r.attempt_id WHERE r.id = $1::uuid"},
	{"refunds_list",
	 "SELECT coalesce((SELECT json_agg(feegate_refund_json(r) ORDER BY r.created_at) FROM refunds r "
	 "WHERE r.order_id = $1::uuid), '[]'), "
	 "(SELECT count(*) FROM orders o WHERE o.id = $1::uuid AND ($2::bigint IS NULL OR o.agency_id = $2::bigint))"},
	{"refunds_to_retry", "SELECT * FROM feegate_refunds_to_retry($1::int, $2::int)"},
	{"accounts_list",
	 "SELECT coalesce(json_agg(feegate_account_json(a) ORDER BY a.id), '[]') FROM ledger_accounts a "
	 "WHERE $1::bigint IS NULL OR a.agency_id = $1::bigint"},
	/* entries with their order reference, bank transaction id and the running balance after
	 * each (in the account's own sign, as feegate_account_json shows it); from/to are business
	 * days (Asia/Ho_Chi_Minh) */
	{"account_get",
	 "SELECT feegate_account_json(a), coalesce((SELECT json_agg(json_build_object('id', e.id, "
	 "'transfer_id', e.transfer_id, 'amount', e.amount, 'code', e.code, 'order_id', e.order_id, "
	 "'reference', e.reference, 'bank_txn_id', e.bank_txn_id, 'balance', e.balance, "
	 "'created_at', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) ORDER BY e.id DESC) "
	 "FROM (SELECT r.*, o.reference, t.bank_txn_id FROM (SELECT le.id, le.transfer_id, le.amount, le.created_at, "
	 "lt.code, lt.order_id, lt.attempt_id, sum(le.amount) OVER (ORDER BY le.id) "
	 "* CASE WHEN a.type = 'bank_clearing' THEN 1 ELSE -1 END AS balance FROM ledger_entries le "
	 "JOIN ledger_transfers lt ON lt.id = le.transfer_id WHERE le.account_id = a.id) r "
	 "LEFT JOIN orders o ON o.id = r.order_id LEFT JOIN attempts t ON t.id = r.attempt_id "
	 "WHERE ($3::bigint IS NULL OR r.id < $3::bigint) "
	 "AND ($5::date IS NULL OR feegate_business_date(r.created_at) >= $5::date) "
	 "AND ($6::date IS NULL OR feegate_business_date(r.created_at) <= $6::date) "
	 "ORDER BY r.id DESC LIMIT $4::int) e), '[]') "
	 "FROM ledger_accounts a WHERE a.id = $1::bigint AND ($2::bigint IS NULL OR a.agency_id = $2::bigint)"},
	/* reconciliation: statements and cases (gateway/reconcile.c) */
	{"cases_list",
	 "SELECT coalesce(json_agg(feegate_case_json(e) ORDER BY e.created_at DESC, e.id DESC), '[]') FROM "
	 "(SELECT * FROM payment_exceptions e WHERE ($1::bigint[] IS NULL OR e.agency_id = ANY ($1::bigint[])) "
	 "AND ($2::text IS NULL OR e.state = $2::text) AND ($3::text IS NULL OR e.kind = $3::text) "
	 "AND ($4::uuid IS NULL OR e.order_id = $4::uuid) "
	 "AND ($5::uuid IS NULL OR (e.created_at, e.id) < (SELECT c.created_at, c.id FROM payment_exceptions c "
	 "WHERE c.id = $5::uuid)) ORDER BY e.created_at DESC, e.id DESC LIMIT $6::int) e"},
	{"case_act",
	 "SELECT r_outcome, coalesce(r_message, ''), r_case FROM feegate_case_act($1::uuid, $2::uuid, $3::bigint[], "
	 "$4::text, $5::text, $6::text)"},
	{"statements_list",
	 "SELECT coalesce(json_agg(feegate_statement_json(s) ORDER BY s.imported_at DESC, s.id DESC), '[]') FROM "
	 "(SELECT * FROM statements s WHERE ($1::bigint[] IS NULL OR s.account IN "
	 "(SELECT a.account_number FROM agencies a WHERE a.id = ANY ($1::bigint[]))) "
	 "AND ($2::uuid IS NULL OR (s.imported_at, s.id) < (SELECT c.imported_at, c.id FROM statements c "
	 "WHERE c.id = $2::uuid)) ORDER BY s.imported_at DESC, s.id DESC LIMIT $3::int) s"},
	{"statement_get",
	 "SELECT feegate_statement_json(s), coalesce((SELECT json_agg(json_build_object('line', l.line, 'kind', l.kind, "
	 "'bank', l.bank, 'bank_order_ref', nullif(l.bank_order_ref, ''), 'bank_txn_id', nullif(l.bank_txn_id, ''), "
	 "'amount', l.amount, 'fee', l.fee, 'at', l.at, 'content', nullif(l.content, ''), 'outcome', l.outcome, "
	 "'attempt_id', l.attempt_id, 'order_id', (SELECT t.order_id FROM attempts t WHERE t.id = l.attempt_id), "
	 "'refund_id', l.refund_id) ORDER BY l.line) FROM (SELECT * FROM statement_lines x WHERE x.statement_id = s.id "
	 "AND x.line > $3::int ORDER BY x.line LIMIT $4::int) l), '[]') "
	 "FROM statements s WHERE s.id = $1::uuid AND ($2::bigint[] IS NULL OR s.account IN "
	 "(SELECT a.account_number FROM agencies a WHERE a.id = ANY ($2::bigint[])))"},
	/* reports (reports.c) */
	{"collections", "SELECT feegate_collections($1::text, $2::bigint[], $3::date, $4::date, $5::text, $6::text, "
			"$7::bigint, $8::uuid, $9::int)"},
};
const int db_statement_count = (int)ARRAY_LEN(db_statements);
