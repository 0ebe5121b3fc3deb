-- Every order referenced its client and agency through foreign keys, so every insert took a
-- KEY SHARE lock on the same two rows: one client row and one agency row written (xmax,
-- multixacts) by every concurrent intake transaction, and ~40 % of an insert's cost measured
-- on a batch of 1,000. The ids come only from authenticated lookups inside feegate, and clients
-- and agencies are never deleted: the triggers below refuse it, which keeps the references true
-- without the per-row lock.
ALTER TABLE orders DROP CONSTRAINT orders_client_id_fkey;
ALTER TABLE orders DROP CONSTRAINT orders_agency_id_fkey;

CREATE FUNCTION feegate_never_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted (orders refer to them); disable them instead', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER clients_never_delete BEFORE DELETE ON clients FOR EACH ROW EXECUTE FUNCTION feegate_never_delete();
CREATE TRIGGER agencies_never_delete BEFORE DELETE ON agencies FOR EACH ROW EXECUTE FUNCTION feegate_never_delete();
CREATE TRIGGER clients_no_truncate BEFORE TRUNCATE ON clients FOR EACH STATEMENT EXECUTE FUNCTION feegate_never_delete();
CREATE TRIGGER agencies_no_truncate BEFORE TRUNCATE ON agencies FOR EACH STATEMENT EXECUTE FUNCTION feegate_never_delete();
