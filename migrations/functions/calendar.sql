-- Business days: Asia/Ho_Chi_Minh dates. The one place that turns an instant into the
-- business day it belongs to.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

CREATE OR REPLACE FUNCTION feegate_business_date(p_at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (p_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
$$;
