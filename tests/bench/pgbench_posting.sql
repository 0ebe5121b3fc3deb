-- pgbench: the naive posting, one transaction per payment: append the entry and update the one
-- hot balance row, which every concurrent payment waits for.
\set amount random(1, 100000000)
BEGIN;
INSERT INTO bench.entries (account_id, amount) VALUES (1, :amount);
UPDATE bench.balances SET balance = balance + :amount WHERE account_id = 1;
COMMIT;
