-- The citizen's checkout: reading the order for its pages, and the VietQR transfer already
-- shown. A function file: applied again whenever it changes.

-- The order's open VietQR attempt (the newest pending one), with what its page shows, so that
-- choosing VietQR again, or the page's refresh, shows the same transfer content instead of
-- opening another attempt. No row when the order is not open or has no such attempt.
CREATE OR REPLACE FUNCTION feegate_checkout_vietqr(p_token text)
RETURNS TABLE (r_attempt uuid, r_ref text, r_amount bigint, r_description text, r_created_ms bigint,
               r_expires_ms bigint, r_bin text, r_account text, r_holder text)
LANGUAGE sql STABLE AS $$
    SELECT t.id, t.bank_order_ref, o.amount, o.description, (extract(epoch FROM t.created_at) * 1000)::bigint,
           (extract(epoch FROM o.expires_at) * 1000)::bigint, a.account_bin, a.account_number, a.account_holder
      FROM orders o
      JOIN agencies a ON a.id = o.agency_id
      JOIN LATERAL (SELECT * FROM attempts x WHERE x.order_id = o.id AND x.bank = 'vietqr' AND x.status = 'pending'
                     ORDER BY x.created_at DESC LIMIT 1) t ON true
     WHERE o.checkout_token = p_token AND o.status IN ('created', 'pending') AND o.expires_at > now()
$$;
