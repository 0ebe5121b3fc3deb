-- The audit log's functions: writing a row (inside the caller's transaction), the row's
-- canonical text, and the chainer that links committed rows after the fact.

-- Records one action. Call it inside the transaction of the action itself, so that the action
-- and its record commit or roll back together. Returns the row's id.
CREATE OR REPLACE FUNCTION feegate_audit(p_actor uuid, p_actor_label text, p_role text, p_action text,
                                         p_object text, p_outcome text, p_request_id text, p_ip text,
                                         p_user_agent text, p_detail text DEFAULT '')
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO audit_log (actor, actor_label, role, action, object, outcome, request_id, ip, user_agent, detail)
    VALUES (p_actor, coalesce(left(p_actor_label, 254), ''), coalesce(p_role, ''), p_action, coalesce(p_object, ''),
            p_outcome, coalesce(p_request_id, ''), coalesce(p_ip, ''), coalesce(left(p_user_agent, 512), ''),
            coalesce(p_detail, ''))
    RETURNING id
$$;

-- The text a row's hash covers: every column, each length-prefixed so no two rows share it.
CREATE OR REPLACE FUNCTION feegate_audit_row_text(a audit_log) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(length(v)::text || ':' || v, '|' ORDER BY n)
    FROM unnest(ARRAY[a.id::text, to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                      coalesce(a.actor::text, ''), a.actor_label, a.role, a.action, a.object, a.outcome,
                      a.request_id, a.ip, a.user_agent, a.detail]) WITH ORDINALITY AS t(v, n)
$$;

CREATE OR REPLACE FUNCTION feegate_audit_hash(p_prev text, a audit_log) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(p_prev || '|' || feegate_audit_row_text(a), 'UTF8')), 'hex')
$$;

-- Links up to p_max committed, unchained rows to the chain, in id order. One chainer at a time
-- (an advisory lock; a second caller returns 0 at once). Returns how many rows it chained.
CREATE OR REPLACE FUNCTION feegate_audit_chain(p_max int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    head audit_chain;
    prev text := repeat('0', 64);
    next_seq bigint := 1;
    r audit_log;
    n int := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('feegate_audit_chain')) THEN
        RETURN 0;
    END IF;
    SELECT * INTO head FROM audit_chain ORDER BY seq DESC LIMIT 1;
    IF FOUND THEN
        prev := head.hash;
        next_seq := head.seq + 1;
    END IF;
    -- Rows commit out of id order, so look back a window behind the head rather than only above
    -- it; a row still unchained a minute after it was written is named by `feegate audit verify`.
    FOR r IN SELECT a.* FROM audit_log a
             WHERE a.id > coalesce((SELECT c.audit_id FROM audit_chain c WHERE c.seq = next_seq - 10000), 0)
               AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.audit_id = a.id)
             ORDER BY a.id LIMIT p_max LOOP
        INSERT INTO audit_chain (seq, audit_id, prev_hash, hash)
        VALUES (next_seq, r.id, prev, feegate_audit_hash(prev, r));
        prev := feegate_audit_hash(prev, r);
        next_seq := next_seq + 1;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- One audit row as the API shows it.
CREATE OR REPLACE FUNCTION feegate_audit_json(a audit_log) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', a.id::text,
        'at', to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'actor', coalesce(a.actor::text, nullif(a.actor_label, '')), 'actor_email', a.actor_label,
        'role', a.role, 'action', a.action, 'object', a.object, 'outcome', a.outcome,
        'request_id', a.request_id, 'ip', a.ip, 'user_agent', a.user_agent)
$$;
