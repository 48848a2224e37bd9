-- Bookkeeping for `dashboard-server migrate` (server/migrate.py).

-- name: create_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: lock
-- Serializes concurrent `migrate` runs; released by unlock or when the session ends.
SELECT pg_advisory_lock(727274105);

-- name: unlock
SELECT pg_advisory_unlock(727274105);

-- name: applied
SELECT version FROM schema_migrations ORDER BY version;

-- name: latest
-- NULL when the bookkeeping table does not exist yet (a database never migrated).
SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN NULL
            ELSE (SELECT coalesce(max(version), 0) FROM schema_migrations) END AS version;

-- name: record
INSERT INTO schema_migrations (version, name) VALUES (%(version)s, %(name)s);
