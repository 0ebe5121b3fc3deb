-- Every trigger, with the function it runs: rows that never change or are never deleted, and
-- the rows the database fills in on its own.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).
-- Triggers are declared here, beside their functions, and not in schema.sql or a numbered
-- migration (those name no stored function); CREATE OR REPLACE TRIGGER keeps this file
-- idempotent. Applying it again locks each table for a moment: keep it to triggers.

-- ---------------------------------------------------------------- rows that never change
-- Ledger rows are append-only: a mistake is mended by a correcting transfer.
CREATE OR REPLACE FUNCTION feegate_ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are immutable: % on % refused; post a correcting transfer instead',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE OR REPLACE TRIGGER ledger_transfers_immutable BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION feegate_ledger_immutable();
CREATE OR REPLACE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_ledger_immutable();
CREATE OR REPLACE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION feegate_ledger_immutable();
CREATE OR REPLACE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_ledger_immutable();
CREATE OR REPLACE TRIGGER receipt_adjustments_immutable BEFORE UPDATE OR DELETE ON receipt_adjustments
    FOR EACH ROW EXECUTE FUNCTION feegate_ledger_immutable();

-- A signed receipt never changes; receipts are never deleted.
CREATE OR REPLACE FUNCTION feegate_receipt_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.signature IS NULL THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'receipts are immutable once signed: % refused; refunds add adjustments', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE OR REPLACE TRIGGER receipts_immutable BEFORE UPDATE OR DELETE ON receipts
    FOR EACH ROW EXECUTE FUNCTION feegate_receipt_immutable();

-- The audit log and its chain are append-only.
CREATE OR REPLACE FUNCTION feegate_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = '42501';
END $$;
CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION feegate_audit_refuse();
CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_audit_refuse();
CREATE OR REPLACE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION feegate_audit_refuse();
CREATE OR REPLACE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_audit_refuse();

-- Clients, agencies, orders, attempts and ledger accounts are never deleted: rows that refer to
-- them do so without foreign keys (see schema.sql), and these keep the references true.
CREATE OR REPLACE FUNCTION feegate_never_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted (orders refer to them); disable them instead', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE OR REPLACE TRIGGER clients_never_delete BEFORE DELETE ON clients FOR EACH ROW EXECUTE FUNCTION feegate_never_delete();
CREATE OR REPLACE TRIGGER agencies_never_delete BEFORE DELETE ON agencies FOR EACH ROW EXECUTE FUNCTION feegate_never_delete();
CREATE OR REPLACE TRIGGER clients_no_truncate BEFORE TRUNCATE ON clients FOR EACH STATEMENT EXECUTE FUNCTION feegate_never_delete();
CREATE OR REPLACE TRIGGER agencies_no_truncate BEFORE TRUNCATE ON agencies FOR EACH STATEMENT EXECUTE FUNCTION feegate_never_delete();
CREATE OR REPLACE TRIGGER ledger_accounts_never_delete BEFORE DELETE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION feegate_never_delete();
CREATE OR REPLACE TRIGGER orders_never_delete BEFORE DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION feegate_never_delete();
CREATE OR REPLACE TRIGGER attempts_never_delete BEFORE DELETE ON attempts
    FOR EACH ROW EXECUTE FUNCTION feegate_never_delete();
CREATE OR REPLACE TRIGGER ledger_accounts_no_truncate BEFORE TRUNCATE ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_never_delete();
CREATE OR REPLACE TRIGGER orders_no_truncate BEFORE TRUNCATE ON orders
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_never_delete();
CREATE OR REPLACE TRIGGER attempts_no_truncate BEFORE TRUNCATE ON attempts
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_never_delete();

-- ---------------------------------------------------------------- rows filled in on their own
-- A new agency gets its payable and receivable accounts in the ledger.
CREATE OR REPLACE FUNCTION feegate_agency_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_accounts (name, type, agency_id)
    VALUES ('agency:' || NEW.code || ':payable', 'agency_payable', NEW.id),
           ('agency:' || NEW.code || ':receivable', 'agency_receivable', NEW.id) ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER agencies_account AFTER INSERT ON agencies FOR EACH ROW EXECUTE FUNCTION feegate_agency_account();

-- A new agency gets its default receipt series.
CREATE OR REPLACE FUNCTION feegate_receipt_default_series() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO receipt_series (agency_id, template, series) VALUES (NEW.id, '01BLP0-001', 'FG-E');
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER agencies_default_receipt_series AFTER INSERT ON agencies
    FOR EACH ROW EXECUTE FUNCTION feegate_receipt_default_series();

-- Exceptions carry the agency whose money they concern, so agency staff see their own: from the
-- order when there is one, else (an unmatched transfer) from the collection account credited.
CREATE OR REPLACE FUNCTION feegate_exception_agency() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.agency_id IS NULL AND NEW.order_id IS NOT NULL THEN
        NEW.agency_id := (SELECT agency_id FROM orders WHERE id = NEW.order_id);
    END IF;
    IF NEW.agency_id IS NULL AND NEW.details IS NOT NULL AND NEW.details->>'account_no' IS NOT NULL THEN
        NEW.agency_id := (SELECT id FROM agencies WHERE account_number = NEW.details->>'account_no' LIMIT 1);
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER payment_exceptions_agency BEFORE INSERT ON payment_exceptions
    FOR EACH ROW EXECUTE FUNCTION feegate_exception_agency();

-- The metadata keys an agency's orders use, for the settlement report's columns
-- (report_metadata_keys, migration 0026). Only an order with metadata calls it, and a key already
-- known costs one unique-index probe.
CREATE OR REPLACE FUNCTION feegate_note_metadata_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_metadata_keys (agency_id, key)
    SELECT NEW.agency_id, k
      FROM json_object_keys(CASE WHEN json_typeof(NEW.metadata) = 'object' THEN NEW.metadata END) k
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER orders_metadata_keys AFTER INSERT ON orders
    FOR EACH ROW WHEN (NEW.metadata IS NOT NULL) EXECUTE FUNCTION feegate_note_metadata_keys();
