-- Write outcomes (server/store/db.py) and idempotent creates (server/resources/crud.py).

-- name: cancel
-- A write whose answer did not come in time: its connection is closed, and the statement is
-- cancelled if it still runs (a lock wait, say), so it does not commit later.
SELECT pg_cancel_backend(pid) AS cancelled FROM pg_stat_activity
WHERE pid = %(pid)s AND state = 'active';

-- name: record_key
-- Follows `WITH created AS (<the resource's create query>)` in the same statement (Session.write):
-- the key is recorded in the insert's own implicit transaction. A key already recorded breaks
-- idempotency_keys_pkey, which rolls the insert back (a concurrent one waits for the first to end).
, recorded AS (
    INSERT INTO idempotency_keys (user_id, resource, key, fingerprint, object_id)
    SELECT %(idempotency_user)s, %(idempotency_resource)s, %(idempotency_key)s, %(idempotency_fingerprint)s, id
    FROM created
)
SELECT * FROM created;

-- name: find_key
-- The create recorded under a key, if it is still retained; expired keys are pruned on the way.
WITH pruned AS (
    DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => %(retain)s)
)
SELECT fingerprint, object_id FROM idempotency_keys
WHERE user_id = %(idempotency_user)s AND resource = %(idempotency_resource)s AND key = %(idempotency_key)s
  AND created_at >= now() - make_interval(secs => %(retain)s);
