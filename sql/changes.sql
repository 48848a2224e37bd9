-- The change log (sql/migrations/0004_changes.sql): acting user, listener, replay, pruning, history.
-- Snapshots travel as pg_snapshot text ("xmin:xmax:xip,..."); see server/live/cursors.py.

-- name: acting_user
-- Sent in the same Query as a write (server/store/db.py): one implicit transaction, so the trigger
-- sees the user and the setting ends with the write.
SELECT set_config('dashboard.user_id', %(dashboard_acting_user)s, true);

-- name: listen
-- Changes (an empty wake-up), and credentials that changed (a user id: sql/migrations/0010_listener_marks.sql).
-- The marks this connection records need not wait for a disk flush: one lost in a crash leaves an
-- older mark, which only makes pruning keep more.
LISTEN dashboard_changes;
LISTEN dashboard_credentials;
SET synchronous_commit = off;

-- name: record_mark
-- After each pass: this listener's mark and heartbeat (the first time, with mark NULL, the row is
-- made with the current snapshot: pruning respects it before the listener takes its first mark).
-- Returns how many times pruning deleted changes this mark had not seen while it was silent, and
-- whether the row was missing (forgotten after a long silence: assume the worst).
WITH updated AS (
    UPDATE listener_marks SET mark = coalesce(%(mark)s::pg_snapshot, mark), heartbeat_at = now()
    WHERE name = %(name)s
    RETURNING gaps
), inserted AS (
    INSERT INTO listener_marks (name, mark)
    SELECT %(name)s, coalesce(%(mark)s::pg_snapshot, pg_current_snapshot())
    WHERE NOT EXISTS (SELECT FROM updated)
    RETURNING gaps
)
SELECT gaps, false AS missing FROM updated UNION ALL SELECT gaps, true FROM inserted;

-- name: forget_mark
-- A listener that stops: its mark holds no one back any more.
DELETE FROM listener_marks WHERE name = %(name)s;

-- name: snapshot
SELECT pg_current_snapshot()::text AS snapshot;

-- name: between
-- The changes a reader at snapshot %(low)s had not seen and one at %(high)s has: the writer
-- committed in between. %(resource)s NULL means every resource. The first page of a pass:
-- such a writer is not older than %(low)s's xmin, which the xid index finds (one range
-- condition, so the planner sees how few rows that is).
SELECT id, xid::text AS xid, resource, object_id, op, data, old
FROM changes
WHERE xid >= pg_snapshot_xmin(%(low)s::pg_snapshot)
  AND NOT pg_visible_in_snapshot(xid, %(low)s::pg_snapshot)
  AND pg_visible_in_snapshot(xid, %(high)s::pg_snapshot)
  AND (%(resource)s::text IS NULL OR resource = %(resource)s)
ORDER BY id
LIMIT %(limit)s;

-- name: between_after
-- The same, for the next page after id %(after)s: walks the primary key from there, which stays
-- cheap through a pass of many rows (a bulk UPDATE), where re-sorting them all per page would not.
SELECT id, xid::text AS xid, resource, object_id, op, data, old
FROM changes
WHERE id > %(after)s
  AND NOT pg_visible_in_snapshot(xid, %(low)s::pg_snapshot)
  AND pg_visible_in_snapshot(xid, %(high)s::pg_snapshot)
  AND (%(resource)s::text IS NULL OR resource = %(resource)s)
ORDER BY id
LIMIT %(limit)s;

-- name: pruned
SELECT xid::text AS xid, id FROM changes_pruned;

-- name: restored
-- After `restore` (into this cluster or another, whose transaction ids start anew): every restored
-- change counts as long committed (3, the first normal xid, is below every snapshot), so none is
-- handed out again and all stay for `history`; and every cursor issued before now expires (410),
-- as if pruned up to now: the restored data may lack what such a client already has. (A cursor
-- beyond this cluster's transaction ids, after a restore into another one, is refused with 400 as
-- "from another database": either way the client lists again.)
-- The listeners recorded in the backup are not this cluster's: their marks go.
WITH rewritten AS (UPDATE changes SET xid = '3' RETURNING id),
     forgotten AS (DELETE FROM listener_marks)
UPDATE changes_pruned SET xid = pg_snapshot_xmax(pg_current_snapshot()),
                          id = coalesce((SELECT max(id) FROM rewritten), changes_pruned.id);

-- name: prune
-- Two retentions. Resume: changes older than %(retain_seconds)s, or beyond the newest
-- %(retain_rows)s ids, expire for `since` (a cursor before them gets 410) -- recorded in
-- changes_pruned, the rows stay. Audit: expired changes older than %(audit_seconds)s are deleted
-- (`history` reads them until then). Either way only changes every live listener of every server
-- has handed out (every mark in listener_marks sees them): a listener silent for more than
-- %(grace_seconds)s stops counting, and if changes its mark had not seen are deleted, its `gaps`
-- goes up (it then ends its subscriptions with 410); one silent for longer than both that and the
-- resume retention is forgotten. Returns how many changes newly expired. Both scans start where
-- the last one ended (ids follow time closely), so each is cheap when there is nothing to do; safe
-- to run concurrently.
WITH pruned AS (SELECT id FROM changes_pruned
), marks AS (
    SELECT name, mark, heartbeat_at >= now() - make_interval(secs => %(grace_seconds)s) AS live,
           heartbeat_at < now() - make_interval(secs => greatest(%(grace_seconds)s, %(retain_seconds)s)) AS forgotten
    FROM listener_marks
), resume AS (
    SELECT greatest(
        coalesce((SELECT id FROM changes
                  WHERE id > (SELECT id FROM pruned)
                    AND recorded_at >= now() - make_interval(secs => %(retain_seconds)s)
                  ORDER BY id LIMIT 1),
                 (SELECT max(id) + 1 FROM changes)),
        (SELECT max(id) FROM changes) - %(retain_rows)s + 1) AS below
), audit AS (
    SELECT least((SELECT below FROM resume),
                 coalesce((SELECT id FROM changes
                           WHERE recorded_at >= now() - make_interval(secs => %(audit_seconds)s)
                           ORDER BY id LIMIT 1),
                          (SELECT max(id) + 1 FROM changes))) AS below
), expired AS (
    SELECT xid, id FROM changes c
    WHERE id > (SELECT id FROM pruned) AND id < (SELECT below FROM resume)
      AND NOT EXISTS (SELECT FROM marks WHERE live AND NOT pg_visible_in_snapshot(c.xid, mark))
), deleted AS (
    DELETE FROM changes c
    WHERE id < (SELECT below FROM audit)
      AND NOT EXISTS (SELECT FROM marks WHERE live AND NOT pg_visible_in_snapshot(c.xid, mark))
    RETURNING xid, id
), newest AS (
    SELECT max(xid) AS xid, max(id) AS id FROM (SELECT * FROM expired UNION ALL SELECT * FROM deleted) past
), recorded AS (
    UPDATE changes_pruned
    SET xid = greatest(changes_pruned.xid, newest.xid), id = greatest(changes_pruned.id, newest.id)
    FROM newest WHERE newest.xid IS NOT NULL
), outrun AS (
    -- By name, chosen in this statement's snapshot: a heartbeat committed meanwhile does not undo it.
    UPDATE listener_marks SET gaps = gaps + 1
    WHERE name IN (SELECT name FROM marks m WHERE NOT live AND NOT forgotten
                   AND EXISTS (SELECT FROM deleted d WHERE NOT pg_visible_in_snapshot(d.xid, m.mark)))
), forget AS (
    DELETE FROM listener_marks WHERE name IN (SELECT name FROM marks WHERE forgotten)
)
SELECT count(*) AS count FROM expired;

-- name: history
SELECT c.recorded_at, c.op, c.data, c.old, c.user_id, coalesce(u.username, f.username) AS username
FROM changes c LEFT JOIN users u ON u.id = c.user_id LEFT JOIN former_users f ON f.id = c.user_id
WHERE c.resource = %(resource)s AND c.object_id = %(pk)s
ORDER BY c.id;
