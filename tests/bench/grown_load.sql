-- `make bench GROWN=N` (tests/bench/run.sh): what two years of a national portal leave behind,
-- written straight into feegate's tables before the scenarios run again. psql variables: n
-- (orders). Rows are generated in SQL (generate_series, INSERT ... SELECT: no round trip per
-- row), in time order, with time-ordered (version 7) ids made from each order's number and time,
-- so that every table and index is appended to as the gateway appends to it.
--
-- Over 730 days ending two days ago, 1,000 agencies (GA0001..GA1000), 10 portals with 100
-- agencies each, three banks: 80 % of the orders paid (a succeeded attempt, the bank's
-- notification, the payment transfer and its two entries written by feegate_ledger_write, so the
-- hash chain is the ledger's own, a signed receipt numbered per agency and year, webhooks
-- order.pending and order.succeeded, delivered), 10 % expired at the bank (an expired attempt,
-- order.pending and order.expired delivered), 10 % expired without a checkout. No refunds,
-- settlement files or cases. The webhook rows are those of an outbox without retention: run.sh
-- then deletes what retention would have (and times it).
\set ON_ERROR_STOP on
SET synchronous_commit = off;
SELECT set_config('grown.n', :'n', false),
       set_config('grown.t0', (now() - interval '732 days')::text, false),
       set_config('grown.span_s', (730 * 86400)::text, false);

-- id of row i of a kind (the variant nibble: 8 orders, 9 attempts, a/b webhooks) at time t
CREATE FUNCTION pg_temp.grown_id(t timestamptz, i bigint, kind text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' || lpad(to_hex(i % 4096), 3, '0')
            || kind || lpad(to_hex(i), 15, '0'))::uuid
$$;

CREATE TEMP TABLE grown AS
SELECT i, current_setting('grown.t0')::timestamptz + (current_setting('grown.span_s')::float8 * i / n)
           * interval '1 second' AS at,
       i % 10 AS kind, (ARRAY['vnpay', 'momo', 'vietqr'])[1 + i % 3] AS bank, 1 + i % 1000 AS ag,
       50000 + (i % 40) * 5000 AS amount
  FROM (SELECT current_setting('grown.n')::bigint AS n) p, generate_series(1, p.n) i;

INSERT INTO agencies (code, name, account_bin, account_number, account_holder)
SELECT 'GA' || lpad(a::text, 4, '0'), 'Cơ quan ' || a, '970436', '0011' || lpad(a::text, 9, '0'), 'CO QUAN ' || a
  FROM generate_series(1, 1000) a;
INSERT INTO clients (id, name, key_hash, webhook_url, webhook_secret)
SELECT feegate_uuid7(), 'Cổng dịch vụ công ' || c, encode(sha256(convert_to('grown-key-' || c || random(), 'UTF8')), 'hex'),
       'https://portal' || c || '.example/feegate/webhook', md5('grown-secret-' || c)
  FROM generate_series(1, 10) c;
CREATE TEMP TABLE grown_ag AS
SELECT row_number() OVER (ORDER BY a.code) AS ag, a.id, a.code, a.name,
       (SELECT id FROM ledger_accounts l WHERE l.agency_id = a.id AND l.type = 'agency_payable') AS payable,
       (SELECT id FROM receipt_series s WHERE s.agency_id = a.id AND s.active) AS series
  FROM agencies a WHERE a.code ~ '^GA[0-9]{4}$';
CREATE TEMP TABLE grown_cl AS SELECT row_number() OVER (ORDER BY name) AS c, id FROM clients WHERE name LIKE 'Cổng dịch vụ công %';
INSERT INTO client_agencies (client_id, agency_id)
SELECT c.id, a.id FROM grown_ag a JOIN grown_cl c ON c.c = 1 + (a.ag - 1) / 100;

INSERT INTO orders (id, client_id, agency_id, reference, description, amount, currency, status, procedure, payer,
                    return_url, checkout_token, created_at, updated_at, expires_at)
SELECT pg_temp.grown_id(g.at, g.i, '8'), c.id, a.id, 'HS-GR-' || g.i, 'Lệ phí thủ tục hành chính', g.amount, 'VND',
       CASE WHEN g.kind < 8 THEN 'succeeded' ELSE 'expired' END, 'TTHC-' || (g.i % 50),
       json_build_object('name', 'Nguyễn Văn ' || g.i, 'id_number', '0792' || lpad((g.i % 100000000)::text, 8, '0')),
       'https://portal.example/return', md5('grown-token-' || g.i), g.at,
       g.at + CASE WHEN g.kind < 8 THEN interval '90 seconds' ELSE interval '1 day' END, g.at + interval '1 day'
  FROM grown g JOIN grown_ag a ON a.ag = g.ag JOIN grown_cl c ON c.c = 1 + (g.ag - 1) / 100
 ORDER BY g.i;

INSERT INTO attempts (id, order_id, bank, bank_order_ref, amount, status, bank_txn_id, failure_code, created_at,
                      updated_at, bank_created_at, last_query_at, paid_at)
SELECT pg_temp.grown_id(g.at + interval '30 seconds', g.i, '9'), pg_temp.grown_id(g.at, g.i, '8'), g.bank,
       'GR' || lpad(g.i::text, 12, '0'), g.amount, CASE WHEN g.kind < 8 THEN 'succeeded' ELSE 'expired' END,
       CASE WHEN g.kind < 8 THEN 'GTX' || g.i END, CASE WHEN g.kind = 8 THEN 'no_answer' END,
       g.at + interval '30 seconds', g.at + CASE WHEN g.kind < 8 THEN interval '90 seconds' ELSE interval '1 day' END,
       g.at + interval '30 seconds', CASE WHEN g.kind = 8 THEN g.at + interval '1 day' END,
       CASE WHEN g.kind < 8 THEN g.at + interval '80 seconds' END
  FROM grown g WHERE g.kind < 9 ORDER BY g.i;

INSERT INTO bank_notifications (bank, dedupe_key, bank_order_ref, attempt_id, amount, success, outcome, source, raw,
                                received_at)
SELECT g.bank, 'GTX' || g.i, 'GR' || lpad(g.i::text, 12, '0'), pg_temp.grown_id(g.at + interval '30 seconds', g.i, '9'),
       g.amount, true, 'applied', 'notification',
       'vnp_Amount=' || g.amount * 100 || '&vnp_BankCode=NCB&vnp_BankTranNo=VNP' || g.i || '&vnp_CardType=ATM'
       || '&vnp_OrderInfo=Le+phi+thu+tuc+hanh+chinh&vnp_PayDate=' || to_char(g.at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYYMMDDHH24MISS')
       || '&vnp_ResponseCode=00&vnp_TmnCode=FEEGATE1&vnp_TransactionNo=GTX' || g.i || '&vnp_TransactionStatus=00'
       || '&vnp_TxnRef=GR' || lpad(g.i::text, 12, '0') || '&vnp_SecureHash=' || encode(sha512(convert_to(g.i::text, 'UTF8')), 'hex'),
       g.at + interval '80 seconds'
  FROM grown g WHERE g.kind < 8 ORDER BY g.i;

-- The payments, in payment order, through the ledger's own writer (entries, transfers, chain).
DO $$
DECLARE
    lo bigint := 0;
    top bigint := current_setting('grown.n')::bigint;
    clearing bigint[] := ARRAY[feegate_account_id('bank:vnpay:clearing'), feegate_account_id('bank:momo:clearing'),
                               feegate_account_id('bank:vietqr:clearing')];
BEGIN
    WHILE lo < top LOOP
        PERFORM feegate_ledger_write(array_agg('pay:' || x.att ORDER BY x.i), array_agg(clearing[1 + x.i % 3] ORDER BY x.i),
                                     array_agg(x.payable ORDER BY x.i), array_agg(x.amount ORDER BY x.i),
                                     array_agg('payment'::text ORDER BY x.i), array_agg(x.ord ORDER BY x.i),
                                     array_agg(x.att ORDER BY x.i), array_agg(NULL::uuid ORDER BY x.i))
          FROM (SELECT g.i, g.amount, a.payable, pg_temp.grown_id(g.at, g.i, '8') AS ord,
                       pg_temp.grown_id(g.at + interval '30 seconds', g.i, '9') AS att
                  FROM grown g JOIN grown_ag a ON a.ag = g.ag
                 WHERE g.i > lo AND g.i <= lo + 20000 AND g.kind < 8) x;
        lo := lo + 20000;
    END LOOP;
END
$$;

-- Their receipts, numbered per agency and year in payment order, signed.
INSERT INTO receipts (code, order_id, attempt_id, series_id, year, number, ledger_seq, body, key_id, signature,
                      issued_at, signed_at)
SELECT x.code, x.ord, x.att, x.series, x.yr, row_number() OVER (PARTITION BY x.series, x.yr ORDER BY x.i), t.seq,
       jsonb_build_object('code', x.code, 'template', '01BLP0-001', 'series', 'FG-E',
           'number', row_number() OVER (PARTITION BY x.series, x.yr ORDER BY x.i),
           'issued_at', feegate_receipt_time(x.at + interval '81 seconds'),
           'agency', jsonb_build_object('code', x.ag_code, 'name', x.ag_name, 'tax_code', NULL),
           'payer_name', 'Nguyễn Văn ' || x.i,
           'items', jsonb_build_array(jsonb_build_object('name', 'Lệ phí thủ tục hành chính', 'amount', x.amount)),
           'amount', x.amount, 'currency', 'VND', 'bank', x.bank, 'bank_txn_id', 'GTX' || x.i,
           'paid_at', feegate_receipt_time(x.at + interval '80 seconds'), 'order_id', x.ord, 'reference', 'HS-GR-' || x.i,
           'procedure', 'TTHC-' || (x.i % 50), 'description', 'Lệ phí thủ tục hành chính',
           'amount_in_words', 'Năm mươi nghìn đồng'),
       'grown-2026', rpad(replace(encode(sha512(convert_to(x.code, 'UTF8')), 'base64'), E'\n', ''), 86, 'A'),
       x.at + interval '81 seconds', x.at + interval '82 seconds'
  FROM (SELECT g.i, g.at, g.amount, g.bank, a.series, a.code AS ag_code, a.name AS ag_name,
               extract(year FROM (g.at + interval '80 seconds') AT TIME ZONE 'Asia/Ho_Chi_Minh')::int AS yr,
               feegate_receipt_code(md5('grown-token-' || g.i)) AS code,
               pg_temp.grown_id(g.at, g.i, '8') AS ord, pg_temp.grown_id(g.at + interval '30 seconds', g.i, '9') AS att
          FROM grown g JOIN grown_ag a ON a.ag = g.ag WHERE g.kind < 8) x
  JOIN ledger_transfers t ON t.id = 'pay:' || x.att
 ORDER BY t.seq;
UPDATE receipt_series s SET year = m.yr, last_number = m.top
  FROM (SELECT DISTINCT ON (series_id) series_id, year AS yr, number AS top FROM receipts
         WHERE series_id IN (SELECT series FROM grown_ag) ORDER BY series_id, year DESC, number DESC) m
 WHERE s.id = m.series_id;
-- the numberer goes on from the chain's head: every loaded payment has its receipt
UPDATE receipt_cursor SET seq = (SELECT seq FROM ledger_chain), backfill_upto = (SELECT seq FROM ledger_chain);

-- The portal webhooks, as an outbox without retention keeps them: every one delivered.
INSERT INTO webhook_deliveries (id, client_id, order_id, type, payload, status, attempts, next_attempt_at, last_status,
                                created_at, delivered_at)
SELECT w.id, c.id, w.ord, w.type,
       '{"id":"' || w.id || '","type":"' || w.type || '","created_at":"' || to_char(w.t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
       || '","data":{"id":"' || w.ord || '","reference":"HS-GR-' || w.i || '","agency":"' || a.code
       || '","description":"Lệ phí thủ tục hành chính","amount":' || w.amount || ',"currency":"VND","status":"'
       || substr(w.type, 7) || '","procedure":"TTHC-' || (w.i % 50) || '","checkout_url":"https://feegate.example/checkout/'
       || md5('grown-token-' || w.i) || '","created_at":"' || to_char(w.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
       || '","expires_at":"' || to_char((w.at + interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
       || '","attempts":[{"bank":"' || w.bank || '","status":"' || CASE WHEN w.type = 'order.expired' THEN 'expired'
       WHEN w.type = 'order.pending' THEN 'pending' ELSE 'succeeded' END || '"}]}}',
       'delivered', 1, w.t + interval '1 second', 200, w.t, w.t + interval '1 second'
  FROM (SELECT g.i, g.at, g.amount, g.bank, g.ag, pg_temp.grown_id(g.at, g.i, '8') AS ord, e.type, e.t,
               pg_temp.grown_id(e.t, g.i, e.kind) AS id
          FROM grown g CROSS JOIN LATERAL (VALUES ('order.pending', g.at + interval '30 seconds', 'a'),
               (CASE WHEN g.kind < 8 THEN 'order.succeeded' ELSE 'order.expired' END,
                g.at + CASE WHEN g.kind < 8 THEN interval '80 seconds' ELSE interval '1 day' END, 'b')) e(type, t, kind)
         WHERE g.kind < 9) w
  JOIN grown_ag a ON a.ag = w.ag JOIN grown_cl c ON c.c = 1 + (w.ag - 1) / 100
 ORDER BY w.t, w.i;
