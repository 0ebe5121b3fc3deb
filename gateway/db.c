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
	 "(extract(epoch FROM o.expires_at) * 1000)::bigint, a.banks::text, o.reference, o.procedure, "
	 "o.payer->>'name', o.return_url, feegate_receipt_code(o.checkout_token) "
	 "FROM orders o JOIN agencies a ON a.id = o.agency_id WHERE o.checkout_token = $1::text"},
	{"checkout_by_id",
	 "SELECT o.id, a.code, a.name, o.description, o.amount, o.items, o.status, "
	 "(extract(epoch FROM o.expires_at) * 1000)::bigint, a.banks::text, o.reference, o.procedure, "
	 "o.payer->>'name', o.return_url, feegate_receipt_code(o.checkout_token) "
	 "FROM orders o JOIN agencies a ON a.id = o.agency_id WHERE o.id = $1::uuid AND o.checkout_token = $2::text"},
	{"checkout_vietqr", "SELECT * FROM feegate_checkout_vietqr($1::text)"},
	{"checkout_status", "SELECT CASE WHEN o.status IN ('created', 'pending') AND o.expires_at <= now() THEN 'expired' "
			    "ELSE o.status END FROM orders o WHERE o.checkout_token = $1::text"},
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
	{"claim_deliveries", "SELECT * FROM feegate_claim_deliveries($1::int, $2::int, $3::uuid[])"},
	/* The relay's bookkeeping commits without waiting for its WAL flush (synchronous_commit off
	 * for these transactions only): a crash can lose only the record of an answer, and the
	 * webhook is then sent again (portals get each event at least once). The money path, and
	 * everything acknowledged to a bank or a portal, commits durably. */
	{"delivery_results", "SELECT feegate_delivery_results($1::json), set_config('synchronous_commit', 'off', true)"},
	{"delivery_release", "SELECT feegate_delivery_release($1::json), set_config('synchronous_commit', 'off', true)"},
	{"deliveries_list",
	 "SELECT coalesce(json_agg(feegate_delivery_json(d) ORDER BY d.created_at DESC), '[]') FROM "
	 "(SELECT * FROM webhook_deliveries WHERE client_id = $1::uuid AND ($2::text = '' OR status = $2::text) "
	 "AND ($3::text = '' OR order_id::text = $3::text) ORDER BY created_at DESC LIMIT 200) d"},
	{"delivery_redeliver",
	 "UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now(), retry_from = now(), last_error = NULL "
	 "WHERE id = $1::uuid AND client_id = $2::uuid RETURNING feegate_delivery_json(d)"},
	{"exceptions_list",
	 "SELECT coalesce(json_agg(feegate_exception_json(e) ORDER BY e.created_at DESC), '[]') FROM "
	 "(SELECT * FROM payment_exceptions WHERE ($1::bigint IS NULL OR agency_id = $1::bigint) "
	 "ORDER BY created_at DESC LIMIT 500) e"},
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
	{"account_get",
	 "SELECT feegate_account_json(a), coalesce((SELECT json_agg(json_build_object('id', e.id, "
	 "'transfer_id', e.transfer_id, 'amount', e.amount, 'code', e.code, 'order_id', e.order_id, "
	 "'created_at', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) ORDER BY e.id DESC) "
	 "FROM (SELECT le.id, le.transfer_id, le.amount, le.created_at, lt.code, lt.order_id FROM ledger_entries le "
	 "JOIN ledger_transfers lt ON lt.id = le.transfer_id WHERE le.account_id = a.id "
	 "AND ($3::bigint IS NULL OR le.id < $3::bigint) ORDER BY le.id DESC LIMIT $4::int) e), '[]') "
	 "FROM ledger_accounts a WHERE a.id = $1::bigint AND ($2::bigint IS NULL OR a.agency_id = $2::bigint)"},
	/* receipts (gateway/receipts.c) */
	{"receipts_issue", "SELECT r_code, r_body FROM feegate_receipts_issue($1::int)"},
	{"receipts_sign", "SELECT feegate_receipts_sign($1::json)"},
	{"receipt_key_register", "INSERT INTO receipt_keys (key_id, public_key) VALUES ($1::text, $2::text) "
				 "ON CONFLICT (key_id) DO NOTHING"},
	{"receipt_keys", "SELECT key_id, alg, public_key, to_char(created_at AT TIME ZONE 'UTC', "
			 "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM receipt_keys ORDER BY created_at, key_id"},
	{"receipt_by_code", "SELECT * FROM feegate_receipt_get($1::text, NULL, NULL)"},
	{"receipt_by_order", "SELECT * FROM feegate_receipt_get(NULL, $1::uuid, $2::uuid)"},
};
const int db_statement_count = (int)ARRAY_LEN(db_statements);
