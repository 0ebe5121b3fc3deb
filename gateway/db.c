#include "gateway/db.h"

#include "lib/util.h"

#define TS_JSON(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define ORDER_COLUMNS                                                                               \
	"o.id, o.reference, a.code, o.description, o.amount, o.currency, o.status, o.items, "      \
	"o.procedure, o.payer, o.metadata, o.checkout_token, o.return_url, "                        \
	"(extract(epoch FROM o.created_at) * 1000)::bigint, "                                       \
	"(extract(epoch FROM o.expires_at) * 1000)::bigint, "                                       \
	"coalesce((SELECT json_agg(json_build_object('id', t.id, 'bank', t.bank, "                  \
	"'bank_order_ref', t.bank_order_ref, 'status', t.status, 'bank_txn_id', t.bank_txn_id, "    \
	"'failure_code', t.failure_code, 'created_at', " TS_JSON("t.created_at") ", "               \
	"'updated_at', " TS_JSON("t.updated_at") ") ORDER BY t.created_at, t.id) "                  \
	"FROM attempts t WHERE t.order_id = o.id), '[]') "

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
	{"order_get", "SELECT " ORDER_COLUMNS "FROM orders o JOIN agencies a ON a.id = o.agency_id "
		      "WHERE o.id = $1::uuid AND o.client_id = $2::uuid"},
	{"order_by_ref", "SELECT " ORDER_COLUMNS "FROM orders o JOIN agencies a ON a.id = o.agency_id "
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
};
const int db_statement_count = (int)ARRAY_LEN(db_statements);
