-- pgbench: the ledger posting alone, as the ledger design was sized it ("100 postings per transaction"):
-- each transaction writes 100 payment transfers, bank clearing to one agency's payable account,
-- with their entries and one hash-chain extension, through feegate_ledger_write (what a
-- notification batch calls). No order, attempt or webhook: the transfers carry made-up ones, in
-- the bench's throwaway database only.
SELECT feegate_ledger_write(
    ARRAY(SELECT 'benchpay:' || gen_random_uuid() FROM generate_series(1, 100)),
    array_fill((SELECT id FROM ledger_accounts WHERE name = 'bank:vnpay:clearing'), ARRAY[100]),
    array_fill((SELECT min(id) FROM ledger_accounts WHERE type = 'agency_payable'), ARRAY[100]),
    array_fill(200000::bigint, ARRAY[100]),
    array_fill('payment'::text, ARRAY[100]),
    ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 100)),
    ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 100)),
    array_fill(NULL::uuid, ARRAY[100]));
