-- Change capture: every insert, update and delete of a resource table becomes a row of `changes`
-- in the writing transaction, whoever writes (this server, another instance, psql, bulk SQL), and
-- a tiny NOTIFY wakes each server's listener (server/live.py), which reads the rows themselves.
--
-- To capture a new resource table, its own migration adds one line:
--   CREATE TRIGGER <table>_changes AFTER INSERT OR UPDATE OR DELETE ON <table>
--       FOR EACH ROW EXECUTE FUNCTION record_change('<resource name>');
-- The table needs a bigint `id` primary key. TRUNCATE is not captured (no row triggers fire).

CREATE TABLE changes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writer's top-level transaction: with snapshots, it tells which changes a reader has
    -- seen (server/cursors.py), since ids are taken in statement order, not commit order.
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at  timestamptz NOT NULL DEFAULT now(),   -- the writing transaction's time, like updated_at
    resource     text NOT NULL,
    object_id    bigint NOT NULL,
    op           text NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    user_id      bigint,            -- the server's acting user (dashboard.user_id); NULL for psql
    -- The row as this change left it (for a delete: as it was), so that each change is pushed
    -- and replayed with its own state, never a later one, and without re-reading the table.
    data         jsonb NOT NULL,
    old          jsonb              -- update only: the previous value of each column that changed
);

CREATE INDEX changes_xid_idx ON changes (xid);
CREATE INDEX changes_object_idx ON changes (resource, object_id, id);

-- How far pruning has gone (never decreases): the newest writer transaction and the highest id
-- it deleted. A cursor that may not have seen all of that has lost history: 410 (server/cursors.py).
CREATE TABLE changes_pruned (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    xid        xid8 NOT NULL DEFAULT '0',
    id         bigint NOT NULL DEFAULT 0
);
INSERT INTO changes_pruned DEFAULT VALUES;

CREATE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    resource     text := TG_ARGV[0];
    acting_user  bigint := nullif(current_setting('dashboard.user_id', true), '')::bigint;
    new_row      jsonb;
    old_row      jsonb;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        new_row := to_jsonb(NEW);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        old_row := to_jsonb(OLD);
    END IF;
    IF TG_OP = 'UPDATE' AND new_row -> 'id' = old_row -> 'id' THEN
        INSERT INTO changes (resource, object_id, op, user_id, data, old)
        VALUES (resource, (new_row ->> 'id')::bigint, 'update', acting_user, new_row,
                (SELECT coalesce(jsonb_object_agg(was.key, was.value), '{}')
                 FROM jsonb_each(old_row) AS was WHERE was.value IS DISTINCT FROM new_row -> was.key));
    ELSE
        -- An update that changes the id ends one object and starts another.
        IF old_row IS NOT NULL THEN
            INSERT INTO changes (resource, object_id, op, user_id, data)
            VALUES (resource, (old_row ->> 'id')::bigint, 'delete', acting_user, old_row);
        END IF;
        IF new_row IS NOT NULL THEN
            INSERT INTO changes (resource, object_id, op, user_id, data)
            VALUES (resource, (new_row ->> 'id')::bigint, 'create', acting_user, new_row);
        END IF;
    END IF;
    -- Always the same empty payload: PostgreSQL folds repeats within a transaction into one
    -- wake-up, and the listener reads what changed from the table.
    PERFORM pg_notify('dashboard_changes', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER patients_changes AFTER INSERT OR UPDATE OR DELETE ON patients
    FOR EACH ROW EXECUTE FUNCTION record_change('patients');
