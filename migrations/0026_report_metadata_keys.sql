-- The metadata keys each agency's orders have used, so a settlement report knows its columns
-- (one per key) without reading every order's metadata first: a day of a million payments
-- spent a third of its export time on that. The report's columns are its agencies' keys, and
-- stay the same from day to day (an accountant's import template does not change shape when a
-- day happens not to use a key). Kept by a statement trigger on orders (functions/triggers.sql).
CREATE TABLE report_metadata_keys (
    agency_id bigint NOT NULL REFERENCES agencies (id),
    key       text NOT NULL,
    PRIMARY KEY (agency_id, key)
);

INSERT INTO report_metadata_keys (agency_id, key)
SELECT DISTINCT o.agency_id, k
  FROM orders o, json_object_keys(CASE WHEN json_typeof(o.metadata) = 'object' THEN o.metadata END) k;

-- The lines now carry the payer's JSON and the payment time, which the report's writer
-- formats (ledger/report.c): a new return type, and the last-four rule moves there with it.
DROP FUNCTION IF EXISTS feegate_report_lines(date, date, bigint[], text);
DROP FUNCTION IF EXISTS feegate_id_last4(text);
-- The totals gain what an agency owes (its receivable) as a column.
DROP FUNCTION IF EXISTS feegate_report_totals(date, date, bigint[], text);
