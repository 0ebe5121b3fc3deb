-- Settlement files of a million lines: each line is written once, with its match, by one
-- INSERT … SELECT (migrations/functions/reconciliation.sql, feegate_match_bank_file).
--
-- * statement_lines loses its foreign key to statements: the check ran once per line (17 µs of
--   a 1,000,000-line import's 28 µs per line, measured), and lines are written only by
--   feegate_statement_import, in the transaction that creates their statement row; statements
--   are never deleted.
-- * statement_lines_txn goes: repeated lines are found within the file by their transaction id
--   before the lines are written, and across files by their attempt (statement_lines_attempt).
-- * The bank's fees are posted as one transfer per statement and agency ('fee:{statement}:
--   {agency code}', reversed when a correction supersedes the statement), no longer one per
--   attempt; transfers posted per attempt before this migration keep their meaning.
ALTER TABLE statement_lines DROP CONSTRAINT IF EXISTS statement_lines_statement_id_fkey;
DROP INDEX IF EXISTS statement_lines_txn;
DROP INDEX IF EXISTS ledger_one_fee_per_attempt;
