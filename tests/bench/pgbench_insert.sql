-- pgbench: one durable insert per transaction (autocommit; fsync and synchronous_commit on).
\set amount random(1, 100000000)
INSERT INTO bench.orders (reference, amount, description)
VALUES ('PGB-' || :client_id || '-' || :amount, :amount, 'Lệ phí cấp hộ chiếu');
