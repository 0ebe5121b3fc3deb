-- The webhook relay's claim: due outbox rows, leased for p_lease_s, oldest first, skipping the
-- clients in p_skip (portals that already have as many calls in flight as the relay allows one
-- portal, so that a slow portal cannot take every slot from the others).
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).
-- The two-argument version of 0006 stays for gateways of the previous release.

CREATE OR REPLACE FUNCTION feegate_claim_deliveries(p_limit int, p_lease_s int, p_skip uuid[])
RETURNS TABLE (r_id uuid, r_url text, r_secret text, r_payload text, r_attempts int, r_age_s bigint,
               r_client uuid)
LANGUAGE sql AS $$
    UPDATE webhook_deliveries d
       SET next_attempt_at = now() + make_interval(secs => p_lease_s), attempts = d.attempts + 1
      FROM clients c
     WHERE c.id = d.client_id AND d.id IN (
           SELECT w.id FROM webhook_deliveries w
            WHERE w.status = 'pending' AND w.next_attempt_at <= now() AND w.client_id <> ALL (p_skip)
            ORDER BY w.next_attempt_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING d.id, c.webhook_url, c.webhook_secret, d.payload, d.attempts,
              extract(epoch FROM now() - coalesce(d.retry_from, d.created_at))::bigint, d.client_id
$$;
