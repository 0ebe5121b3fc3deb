#include "gateway/db.h"

#include "lib/util.h"

const struct pg_statement db_statements[] = {
	{"ping", "SELECT 1"},
	{"auth",
	 "SELECT 'client' AS kind, c.id::text AS id, c.name AS name, NULL::text AS role, NULL::text AS email, "
	 "coalesce((SELECT string_agg(a.id || ':' || a.code, ',' ORDER BY a.code) "
	 "FROM client_agencies ca JOIN agencies a ON a.id = ca.agency_id WHERE ca.client_id = c.id), '') AS agencies "
	 "FROM clients c WHERE c.key_hash = $1::text AND c.disabled_at IS NULL "
	 "UNION ALL "
	 "SELECT 'staff', s.id::text, s.name, s.role, s.email, "
	 "coalesce((SELECT string_agg(a.id || ':' || a.code, ',' ORDER BY a.code) FROM staff_agencies sa "
	 "JOIN agencies a ON a.id = sa.agency_id WHERE sa.staff_id = s.id), '') "
	 "FROM staff_tokens t JOIN staff s ON s.id = t.staff_id "
	 "WHERE t.token_hash = $1::text AND t.revoked_at IS NULL AND s.disabled_at IS NULL"},
	{"intake", "SELECT r_idx, r_outcome, r_status, r_body, r_order_id FROM feegate_intake($1::json)"},
	/* the set-based renderer, inlined into the query: no function call per read */
	{"order_get", "SELECT r.doc FROM feegate_orders_json(ARRAY[$1::uuid], $3::text) r WHERE r.client_id = $2::uuid"},
	{"order_by_ref", "SELECT r.doc FROM orders o, feegate_orders_json(ARRAY[o.id], $3::text) r "
			 "WHERE o.client_id = $1::uuid AND o.reference = $2::text"},
	{"order_transition", "SELECT feegate_order_transition($1::uuid, $2::uuid, $3::text) AS outcome"},
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
	{"checkout_transfer", "SELECT * FROM feegate_checkout_vietqr($1::text)"},
	{"checkout_status", "SELECT CASE WHEN o.status IN ('created', 'pending') AND o.expires_at <= now() THEN 'expired' "
			    "ELSE o.status END AS status FROM orders o WHERE o.checkout_token = $1::text"},
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
	{"close_attempt", "SELECT feegate_close_attempt($1::uuid, $2::text, $3::text) AS outcome"},
	{"expire_due", "SELECT feegate_expire_due($1::int) AS expired"},
	{"attempts_to_query", "SELECT * FROM feegate_attempts_to_query($1::int, $2::int)"},
	/* retention, a batch of at most $1 rows a call (sweeper.c): the number deleted */
	{"idempotency_cleanup",
	 "WITH gone AS (DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(SELECT ctid FROM idempotency_keys "
	 "WHERE created_at < now() - interval '48 hours' ORDER BY created_at LIMIT $1::int)) RETURNING 1) "
	 "SELECT count(*) AS deleted FROM gone"},
	{"webhook_retention", "SELECT feegate_webhook_retention($2::int, $1::int) AS deleted"},
	/* the webhook outbox's backlog for /metrics: rows due now (counted up to 100,000, so a
	 * huge backlog costs a bounded read of the due index) and how long the oldest has waited */
	{"outbox_backlog",
	 "SELECT count(*) AS due, coalesce(extract(epoch FROM now() - min(due)), 0)::float8 AS oldest_s FROM ("
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
	 "ORDER BY created_at ASC, id ASC LIMIT 1) END) AS doc"},
	{"delivery_redeliver",
	 "UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now(), retry_from = now(), last_error = NULL "
	 "WHERE id = $1::uuid AND client_id = $2::uuid RETURNING feegate_delivery_json(d) AS doc"},
	/* the audit row is written in the refund's own transaction; $10..$15 as audit_params() */
	{"refund_create",
	 "SELECT f.*, CASE WHEN f.r_outcome = 'created' THEN feegate_audit($10::uuid, $11::text, $12::text, "
	 "'refund.create', $6::text, 'ok', $13::text, $14::text, $15::text, $3::text || ' VND, order ' || $1::text) END "
	 "FROM feegate_refund_create($1::uuid, $2::bigint, $3::bigint, $4::text, $5::uuid, $6::uuid, "
	 "$7::text, $8::text, $9::text) f"},
	{"refund_confirm",
	 "SELECT f.*, CASE WHEN f.r_outcome = 'succeeded' THEN feegate_audit($6::uuid, $7::text, $8::text, "
	 "'refund.confirm', $1::text, 'ok', $9::text, $10::text, $11::text) END "
	 "FROM feegate_refund_complete($1::uuid, $2::bool, $3::text, $4::text, $5::uuid) f"},
	{"refund_complete", "SELECT * FROM feegate_refund_complete($1::uuid, $2::bool, $3::text, $4::text, $5::uuid)"},
	{"refund_lookup", "SELECT r.id, t.bank, r.status FROM refunds r JOIN attempts t ON t.id = r.attempt_id WHERE r.id = $1::uuid"},
	{"refunds_list",
	 "SELECT coalesce((SELECT json_agg(feegate_refund_json(r) ORDER BY r.created_at) FROM refunds r "
	 "WHERE r.order_id = $1::uuid), '[]') AS refunds, "
	 "(SELECT count(*) FROM orders o WHERE o.id = $1::uuid AND ($2::bigint[] IS NULL OR o.agency_id = ANY($2::bigint[]))) "
	 "AS orders"},
	{"refunds_to_retry", "SELECT * FROM feegate_refunds_to_retry($1::int, $2::int)"},
	{"accounts_list",
	 "SELECT coalesce(json_agg(feegate_account_json(a) ORDER BY a.id), '[]') AS accounts FROM ledger_accounts a "
	 "WHERE $1::bigint[] IS NULL OR a.agency_id = ANY($1::bigint[])"},
	/* entries with their order reference, bank transaction id and the running balance after
	 * each (in the account's own sign, as feegate_account_json shows it); from/to are business
	 * days (Asia/Ho_Chi_Minh) */
	{"account_get",
	 "SELECT feegate_account_json(a) AS account, coalesce((SELECT json_agg(json_build_object('id', e.id, "
	 "'transfer_id', e.transfer_id, 'amount', e.amount, 'code', e.code, 'order_id', e.order_id, "
	 "'reference', e.reference, 'bank_txn_id', e.bank_txn_id, 'balance', e.balance, "
	 "'created_at', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) ORDER BY e.id DESC) "
	 "FROM (SELECT r.*, o.reference, t.bank_txn_id FROM (SELECT le.id, le.transfer_id, le.amount, le.created_at, "
	 "lt.code, lt.order_id, lt.attempt_id, sum(le.amount) OVER (ORDER BY le.id) "
	 "* feegate_account_sign(a.type) AS balance FROM ledger_entries le "
	 "JOIN ledger_transfers lt ON lt.id = le.transfer_id WHERE le.account_id = a.id) r "
	 "LEFT JOIN orders o ON o.id = r.order_id LEFT JOIN attempts t ON t.id = r.attempt_id "
	 "WHERE ($3::bigint IS NULL OR r.id < $3::bigint) "
	 "AND ($5::date IS NULL OR feegate_business_date(r.created_at) >= $5::date) "
	 "AND ($6::date IS NULL OR feegate_business_date(r.created_at) <= $6::date) "
	 "ORDER BY r.id DESC LIMIT $4::int) e), '[]') AS entries "
	 "FROM ledger_accounts a WHERE a.id = $1::bigint AND ($2::bigint[] IS NULL OR a.agency_id = ANY($2::bigint[]))"},
	/* reconciliation: statements and cases (gateway/reconcile.c) */
	{"cases_list",
	 "SELECT coalesce(json_agg(feegate_case_json(e) ORDER BY e.created_at DESC, e.id DESC), '[]') AS page FROM "
	 "(SELECT * FROM payment_exceptions e WHERE ($1::bigint[] IS NULL OR e.agency_id = ANY ($1::bigint[])) "
	 "AND ($2::text IS NULL OR e.state = $2::text) AND ($3::text IS NULL OR e.kind = $3::text) "
	 "AND ($4::uuid IS NULL OR e.order_id = $4::uuid) "
	 "AND ($5::uuid IS NULL OR (e.created_at, e.id) < (SELECT c.created_at, c.id FROM payment_exceptions c "
	 "WHERE c.id = $5::uuid)) ORDER BY e.created_at DESC, e.id DESC LIMIT $6::int) e"},
	/* the case's audit row in the same statement; $7..$12 as audit_params() */
	{"case_act",
	 "SELECT f.r_outcome, coalesce(f.r_message, '') AS r_message, f.r_case, feegate_audit($7::uuid, $8::text, $9::text, "
	 "'case.' || $4::text, $1::text, CASE f.r_outcome WHEN 'ok' THEN 'ok' WHEN 'forbidden' THEN 'denied' "
	 "ELSE 'failed' END, $10::text, $11::text, $12::text) "
	 "FROM feegate_case_act($1::uuid, $2::uuid, $3::bigint[], $4::text, $5::text, $6::text) f"},
	{"statements_list",
	 "SELECT coalesce(json_agg(feegate_statement_json(s) ORDER BY s.imported_at DESC, s.id DESC), '[]') AS page FROM "
	 "(SELECT * FROM statements s WHERE ($1::bigint[] IS NULL OR s.account IN "
	 "(SELECT a.account_number FROM agencies a WHERE a.id = ANY ($1::bigint[]))) "
	 "AND ($2::uuid IS NULL OR (s.imported_at, s.id) < (SELECT c.imported_at, c.id FROM statements c "
	 "WHERE c.id = $2::uuid)) ORDER BY s.imported_at DESC, s.id DESC LIMIT $3::int) s"},
	{"statement_get",
	 "SELECT feegate_statement_json(s) AS statement, coalesce((SELECT json_agg(json_build_object('line', l.line, 'kind', l.kind, "
	 "'bank', l.bank, 'bank_order_ref', nullif(l.bank_order_ref, ''), 'bank_txn_id', nullif(l.bank_txn_id, ''), "
	 "'amount', l.amount, 'fee', l.fee, 'at', l.at, 'content', nullif(l.content, ''), 'outcome', l.outcome, "
	 "'attempt_id', l.attempt_id, 'order_id', (SELECT t.order_id FROM attempts t WHERE t.id = l.attempt_id), "
	 "'refund_id', l.refund_id) ORDER BY l.line) FROM (SELECT * FROM statement_lines x WHERE x.statement_id = s.id "
	 "AND x.line > $3::int ORDER BY x.line LIMIT $4::int) l), '[]') AS lines "
	 "FROM statements s WHERE s.id = $1::uuid AND ($2::bigint[] IS NULL OR s.account IN "
	 "(SELECT a.account_number FROM agencies a WHERE a.id = ANY ($2::bigint[])))"},
	/* reports (reports.c) */
	{"collections", "SELECT feegate_collections($1::text, $2::bigint[], $3::date, $4::date, $5::text, $6::text, "
			"$7::bigint, $8::uuid, $9::int) AS collections"},
	/* staff, sessions, audit, console (gateway/staff.c, audit.c, console.c) */
	{"audit_record",
	 "SELECT feegate_audit($1::uuid, $2::text, $3::text, $7::text, $8::text, $9::text, $4::text, $5::text, "
	 "$6::text, $10::text)"},
	{"audit_chain", "SELECT feegate_audit_chain($1::int) AS chained"},
	{"audit_list",
	 "SELECT a.id, feegate_audit_json(a)::text, to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
	 "coalesce(a.actor::text, ''), a.actor_label, a.role, a.action, a.object, a.outcome, a.request_id, a.ip "
	 "FROM audit_log a WHERE ($1::date IS NULL OR a.at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')) "
	 "AND ($2::date IS NULL OR a.at < (($2::date + 1)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')) "
	 "AND ($3::text IS NULL OR a.actor::text = $3::text OR a.actor_label = lower($3::text)) "
	 "AND ($4::text IS NULL OR a.action = $4::text OR a.action LIKE $4::text || '.%') "
	 "AND ($5::bigint IS NULL OR a.id < $5::bigint) ORDER BY a.id DESC LIMIT $6::int"},
	{"login_lookup",
	 "SELECT s.id, s.role, s.email, coalesce(s.password_hash, ''), coalesce(s.totp_secret, ''), "
	 "coalesce(s.totp_last_step, -1), coalesce(s.locked_until > now(), false), feegate_staff_agencies(s.id), s.name, "
	 "array_length(s.recovery_hashes, 1) IS NOT NULL "
	 "FROM staff s WHERE s.email = lower($1::text) AND s.disabled_at IS NULL"},
	{"login_result",
	 "SELECT feegate_staff_login($1::text, $2::uuid, $3::text, $4::bigint, $5::text, $6::text, $7::text) AS outcome"},
	{"login_recovery",
	 "UPDATE staff SET recovery_hashes = array_remove(recovery_hashes, $2::text) "
	 "WHERE id = $1::uuid AND $2::text = ANY (recovery_hashes) RETURNING id"},
	{"staff_set_password",
	 "WITH u AS (UPDATE staff SET password_hash = $2::text, setup_hash = NULL, setup_expires_at = NULL "
	 "WHERE id = $1::uuid RETURNING id) SELECT feegate_audit(u.id, $3::text, $4::text, 'password.change', u.id::text, "
	 "'ok', $5::text, $6::text, $7::text) FROM u"},
	{"staff_set_totp",
	 "WITH u AS (UPDATE staff SET totp_secret = $2::text, totp_last_step = $8::bigint, recovery_hashes = $9::text[] "
	 "WHERE id = $1::uuid AND totp_secret IS NULL RETURNING id) SELECT feegate_audit(u.id, $3::text, $4::text, "
	 "'totp.enrol', u.id::text, 'ok', $5::text, $6::text, $7::text) FROM u"},
	{"staff_password_hash", "SELECT coalesce(password_hash, '') AS password_hash FROM staff WHERE id = $1::uuid"},
	{"staff_setup_lookup",
	 "SELECT id, email, role FROM staff WHERE setup_hash = $1::text AND setup_expires_at > now() AND disabled_at IS NULL"},
	{"staff_list",
	 "SELECT coalesce(json_agg(json_build_object('id', s.id, 'name', s.name, 'email', s.email, 'role', s.role, "
	 "'state', CASE WHEN s.disabled_at IS NULL THEN 'active' ELSE 'disabled' END, "
	 "'agencies', (SELECT coalesce(json_agg(a.code ORDER BY a.code), '[]') FROM staff_agencies sa "
	 "JOIN agencies a ON a.id = sa.agency_id WHERE sa.staff_id = s.id), "
	 "'totp', s.totp_secret IS NOT NULL, 'locked', coalesce(s.locked_until > now(), false), "
	 "'tokens', (SELECT coalesce(json_agg(json_build_object('id', t.id, 'label', t.label, "
	 "'created_at', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) ORDER BY t.created_at), '[]') "
	 "FROM staff_tokens t WHERE t.staff_id = s.id AND t.revoked_at IS NULL)) ORDER BY s.role, s.email), '[]') AS staff "
	 "FROM staff s"},
	{"staff_disable",
	 "WITH u AS (UPDATE staff SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1::uuid RETURNING id) "
	 "SELECT feegate_audit($2::uuid, $3::text, $4::text, 'staff.disable', u.id::text, 'ok', $5::text, $6::text, $7::text) "
	 "FROM u"},
	{"token_create",
	 "WITH t AS (INSERT INTO staff_tokens (id, staff_id, token_hash, label, created_by) "
	 "SELECT $8::uuid, s.id, $9::text, $10::text, $2::uuid FROM staff s WHERE s.id = $1::uuid AND s.disabled_at IS NULL "
	 "RETURNING id, staff_id) SELECT feegate_audit($2::uuid, $3::text, $4::text, 'token.create', t.id::text, 'ok', "
	 "$5::text, $6::text, $7::text, 'for staff ' || t.staff_id) FROM t"},
	{"token_revoke",
	 "WITH t AS (UPDATE staff_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1::uuid RETURNING id) "
	 "SELECT feegate_audit($2::uuid, $3::text, $4::text, 'token.revoke', t.id::text, 'ok', $5::text, $6::text, $7::text) "
	 "FROM t"},
	{"orders_find_client",
	 "SELECT r.doc, f.id FROM feegate_orders_find($1::uuid, NULL, $2::date, $3::date, $4::text, $5::text, $6::text, "
	 "$7::text, $8::uuid, $9::int) f, feegate_orders_json(ARRAY[f.id], $10::text) r ORDER BY f.id DESC"},
	{"orders_find_staff",
	 "SELECT f.id, f.reference, a.code, f.amount, f.status, "
	 "to_char(f.created_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY HH24:MI'), coalesce(f.payer->>'name', ''), "
	 "coalesce((SELECT string_agg(DISTINCT t.bank, ', ') FROM attempts t WHERE t.order_id = f.id), '') "
	 "FROM feegate_orders_find(NULL, $1::bigint[], $2::date, $3::date, $4::text, $5::text, $6::text, $7::text, "
	 "$8::uuid, $9::int) f JOIN agencies a ON a.id = f.agency_id ORDER BY f.id DESC"},
	{"console_order",
	 "SELECT r.doc, feegate_order_detail_json(o.id)::text AS detail, a.name AS agency_name "
	 "FROM orders o JOIN agencies a ON a.id = o.agency_id, "
	 "feegate_orders_json(ARRAY[o.id], $3::text) r "
	 "WHERE o.id = $1::uuid AND ($2::bigint[] IS NULL OR o.agency_id = ANY ($2::bigint[]))"},
	{"console_dashboard",
	 "SELECT a.code, a.name, t.bank, count(*), sum(o.amount) FROM attempts t JOIN orders o ON o.id = t.order_id "
	 "JOIN agencies a ON a.id = o.agency_id WHERE t.status = 'succeeded' "
	 "AND t.paid_at >= (feegate_business_date(now())::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh') "
	 "AND ($1::bigint[] IS NULL OR o.agency_id = ANY ($1::bigint[])) GROUP BY 1, 2, 3 ORDER BY 1, 3"},
	{"console_open_cases",
	 "SELECT count(*) AS open_cases FROM payment_exceptions WHERE resolved_at IS NULL "
	 "AND ($1::bigint[] IS NULL OR agency_id = ANY ($1::bigint[]))"},
	/* the refunds finance acts on: asked above the approval amount, and pending ones (payout
	 * instructions with their first confirmation, if any) */
	{"console_refunds",
	 "SELECT coalesce((SELECT json_agg(x ORDER BY x.at DESC) FROM (SELECT ra.id, ra.order_id, o.reference, "
	 "a.code AS agency, ra.amount, ra.reason, ra.requested_by, s.email AS requested_by_email, "
	 "to_char(ra.requested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS at "
	 "FROM refund_approvals ra JOIN orders o ON o.id = ra.order_id JOIN agencies a ON a.id = o.agency_id "
	 "JOIN staff s ON s.id = ra.requested_by WHERE ra.kind = 'refund' AND ra.approved_by IS NULL "
	 "ORDER BY ra.requested_at DESC LIMIT 200) x), '[]')::text AS approvals, "
	 "coalesce((SELECT json_agg(y ORDER BY y.at DESC) FROM (SELECT r.id, r.order_id, o.reference, a.code AS agency, "
	 "r.amount, r.reason, t.bank, to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS at, "
	 "pa.requested_by AS confirmed_by, ps.email AS confirmed_by_email, "
	 "to_char(pa.requested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS confirmed_at "
	 "FROM refunds r JOIN orders o ON o.id = r.order_id JOIN agencies a ON a.id = o.agency_id "
	 "JOIN attempts t ON t.id = r.attempt_id "
	 "LEFT JOIN refund_approvals pa ON pa.refund_id = r.id AND pa.kind = 'payout' "
	 "LEFT JOIN staff ps ON ps.id = pa.requested_by "
	 "WHERE r.status = 'pending' ORDER BY r.created_at DESC LIMIT 200) y), '[]')::text AS pending"},
	/* a case with its evidence: the statement line it came from (and whether the staff member
	 * may open that statement), the order's reference, the e-mail of every staff actor */
	{"console_case",
	 "SELECT feegate_case_json(e)::text, "
	 "(SELECT json_build_object('source', s.source, 'business_date', s.business_date, 'status', s.status, "
	 "'visible', ($2::bigint[] IS NULL OR s.account IN (SELECT g.account_number FROM agencies g "
	 "WHERE g.id = ANY ($2::bigint[]))), 'line', l.line, 'kind', l.kind, 'bank', l.bank, "
	 "'bank_order_ref', nullif(l.bank_order_ref, ''), 'bank_txn_id', nullif(l.bank_txn_id, ''), "
	 "'amount', l.amount, 'fee', l.fee, 'content', nullif(l.content, ''), 'outcome', l.outcome, "
	 "'at', to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) "
	 "FROM statements s LEFT JOIN statement_lines l ON l.statement_id = s.id AND l.line = e.line "
	 "WHERE s.id = e.statement_id)::text, "
	 "(SELECT o.reference FROM orders o WHERE o.id = e.order_id), "
	 "coalesce((SELECT json_object_agg(s.id, s.email) FROM staff s WHERE s.id = e.proposed_by "
	 "OR s.id::text IN (SELECT a.actor FROM case_actions a WHERE a.case_id = e.id)), '{}')::text "
	 "FROM payment_exceptions e WHERE e.id = $1::uuid AND ($2::bigint[] IS NULL OR e.agency_id = ANY ($2::bigint[]))"},
	{"console_agencies",
	 "SELECT id, code, name FROM agencies WHERE $1::bigint[] IS NULL OR id = ANY ($1::bigint[]) ORDER BY code"},
	/* the settlement report's totals of one business day, as the export writes them */
	{"console_settlement_totals",
	 "SELECT t.agency, a.name, t.bank, t.count, t.gross, t.refunds, t.fees, t.net, t.cases_open, t.payout, t.receivable "
	 "FROM feegate_report_totals($1::date, $1::date, $2::bigint[], NULL) t JOIN agencies a ON a.code = t.agency "
	 "ORDER BY t.agency, t.bank"},
	/* two-person rule (refunds.c); who/where as audit_params() */
	{"refund_ask",
	 "SELECT feegate_refund_ask($1::uuid, $2::uuid, $3::bigint[], $4::bigint, $5::text, $6::uuid, $7::text, $8::text, "
	 "$9::text, $10::text, $11::text) AS approval"},
	{"refund_approve",
	 "SELECT * FROM feegate_refund_approve($1::uuid, $2::uuid, $3::uuid, $4::text, $5::text, $6::text, $7::text, "
	 "$8::text, $9::text)"},
	{"payout_approval",
	 "SELECT feegate_payout_approval($1::uuid, $2::uuid, $3::uuid, $4::text, $5::text, $6::text, $7::text, $8::text) "
	 "AS outcome"},
	/* receipts (gateway/receipts.c) */
	{"receipts_issue", "SELECT r_code, r_body FROM feegate_receipts_issue($1::int)"},
	{"receipts_sign", "SELECT feegate_receipts_sign($1::json)"},
	{"receipt_key_register", "INSERT INTO receipt_keys (key_id, public_key) VALUES ($1::text, $2::text) "
				 "ON CONFLICT (key_id) DO NOTHING"},
	{"receipt_keys", "SELECT key_id, alg, public_key, to_char(created_at AT TIME ZONE 'UTC', "
			 "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at FROM receipt_keys ORDER BY created_at, key_id"},
	{"receipt_by_code", "SELECT * FROM feegate_receipt_get($1::text, NULL, NULL)"},
	{"receipt_by_order", "SELECT * FROM feegate_receipt_get(NULL, $1::uuid, $2::uuid)"},
};
const int db_statement_count = (int)ARRAY_LEN(db_statements);

const struct pg_word db_outcomes[] = {
	{"changed", OUTCOME_CHANGED},
	{"unchanged", OUTCOME_UNCHANGED},
	{"not_found", OUTCOME_NOT_FOUND},
	{"invalid_state", OUTCOME_INVALID_STATE},
	{"applied", OUTCOME_APPLIED},
	{"replayed", OUTCOME_REPLAYED},
	{"unknown_order", OUTCOME_UNKNOWN_ORDER},
	{"wrong_amount", OUTCOME_WRONG_AMOUNT},
	{"txn_id_conflict", OUTCOME_TXN_ID_CONFLICT},
	{"created", OUTCOME_CREATED},
	{"replay", OUTCOME_REPLAY},
	{"duplicate", OUTCOME_DUPLICATE},
	{"busy", OUTCOME_BUSY},
	{"key_reused", OUTCOME_KEY_REUSED},
	{"too_much", OUTCOME_TOO_MUCH},
	{"approval_not_found", OUTCOME_APPROVAL_NOT_FOUND},
	{"already_approved", OUTCOME_ALREADY_APPROVED},
	{"same_person", OUTCOME_SAME_PERSON},
	{"asked", OUTCOME_ASKED},
	{"approved", OUTCOME_APPROVED},
	{"succeeded", OUTCOME_SUCCEEDED},
	{"failed", OUTCOME_FAILED},
	{"opened", OUTCOME_OPENED},
	{"bank_not_enabled", OUTCOME_BANK_NOT_ENABLED},
	{"ok", OUTCOME_OK},
	{"locked", OUTCOME_LOCKED},
	{NULL, OUTCOME_UNKNOWN},
};

const struct pg_word db_statuses[] = {
	{"created", STATUS_CREATED},
	{"pending", STATUS_PENDING},
	{"succeeded", STATUS_SUCCEEDED},
	{"failed", STATUS_FAILED},
	{"cancelled", STATUS_CANCELLED},
	{"expired", STATUS_EXPIRED},
	{"partially_refunded", STATUS_PARTIALLY_REFUNDED},
	{"refunded", STATUS_REFUNDED},
	{NULL, STATUS_UNKNOWN},
};

const struct pg_col outcome_cols[1] = {PG_COL_WORD(struct outcome_row, outcome, db_outcomes)};
const struct pg_col page_cols[1] = {PG_COL(struct page_row, page, PG_TEXT)};
const struct pg_col statement_cols[2] = {
	PG_COL(struct statement_row, statement, PG_TEXT),
	PG_COL(struct statement_row, lines, PG_TEXT),
};
