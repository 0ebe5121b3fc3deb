-- pgbench: the naive intake on feegate's own schema, one durable transaction per order: its
-- orders row, then its Idempotency-Key record with the 201 answer to replay, written into the
-- tables feegate_intake writes (the same indexes, constraints and triggers) but one order per
-- transaction, as a web application without group commit would. Order ids are time-ordered
-- (feegate_uuid7), as the gateway's are. Run with -D client=<uuid> -D agency=<id> (run.sh) in
-- pgbench's default simple protocol, which puts a variable's text in place, inside quotes too.
\set n random(1, 9000000000000000000)
BEGIN;
INSERT INTO orders (id, client_id, agency_id, reference, description, amount, currency, return_url,
                    checkout_token, created_at, updated_at, expires_at)
VALUES (feegate_uuid7(), ':client', :agency, 'NAIVE-:n', 'Lệ phí cấp hộ chiếu (pgbench)', 200000, 'VND',
        'https://portal.example/return', md5('naive-:n'), now(), now(), now() + interval '1 day')
RETURNING id AS order_id, checkout_token AS token \gset
INSERT INTO idempotency_keys (client_id, idem_key, request_hash, http_status, response_body)
VALUES (':client', 'naive-:n', encode(sha256(convert_to('naive-:n', 'UTF8')), 'hex'), 201,
        '{"id":":order_id","reference":"NAIVE-:n","agency":"XNC","description":"Lệ phí cấp hộ chiếu (pgbench)",'
        '"amount":200000,"currency":"VND","status":"created","checkout_url":"http://127.0.0.1:8080/checkout/:token",'
        '"return_url":"https://portal.example/return","created_at":"' || now() || '","expires_at":"'
        || (now() + interval '1 day') || '","attempts":[],"refunds":[]}');
COMMIT;
