-- Exceptions carry the agency whose money they concern, so agency staff see their own: from the
-- order when there is one, else (an unmatched transfer) from the collection account credited.
CREATE FUNCTION feegate_exception_agency() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER payment_exceptions_agency BEFORE INSERT ON payment_exceptions
    FOR EACH ROW EXECUTE FUNCTION feegate_exception_agency();
UPDATE payment_exceptions e SET agency_id = o.agency_id FROM orders o WHERE e.agency_id IS NULL AND o.id = e.order_id;

-- A redelivery starts a new retry period: its age counts from the redelivery, not the event.
ALTER TABLE webhook_deliveries ADD COLUMN retry_from timestamptz;

CREATE OR REPLACE FUNCTION feegate_claim_deliveries(p_limit int, p_lease_s int)
RETURNS TABLE (r_id uuid, r_url text, r_secret text, r_payload text, r_attempts int, r_age_s bigint)
LANGUAGE sql AS $$
    UPDATE webhook_deliveries d
       SET next_attempt_at = now() + make_interval(secs => p_lease_s), attempts = d.attempts + 1
      FROM clients c
     WHERE c.id = d.client_id AND d.id IN (
           SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
            ORDER BY next_attempt_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING d.id, c.webhook_url, c.webhook_secret, d.payload, d.attempts,
              extract(epoch FROM now() - coalesce(d.retry_from, d.created_at))::bigint
$$;
