-- Bookkeeping for `dashboard-server migrate` (server/store/migrate.py).

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

-- name: table_exists
-- False for a database never migrated.
SELECT to_regclass('schema_migrations') IS NOT NULL AS exists;

-- name: record
INSERT INTO schema_migrations (version, name) VALUES (%(version)s, %(name)s);

-- name: public_tables
-- `restore` goes only into a database with no tables of its own yet.
SELECT count(*) AS count FROM pg_tables WHERE schemaname = 'public';
