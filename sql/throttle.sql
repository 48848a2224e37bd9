-- Failed-login throttle (server/accounts/throttle.py). Subjects are SHA-256 digests of
-- "user:<name>" and "addr:<client address>".

-- name: record
-- Every attempt is recorded before the password is checked, then counted: concurrent
-- attempts each see the others, so a burst cannot slip past the limit.
INSERT INTO login_failures (subject) SELECT unnest(%(subjects)s::bytea[]) RETURNING id;

-- name: window
-- Per subject: the attempts still inside the window, and the seconds until the oldest leaves it.
SELECT subject, count(*) AS attempts,
       extract(epoch FROM min(failed_at) + make_interval(secs => %(seconds)s) - now())::float AS wait
FROM login_failures
WHERE subject = ANY(%(subjects)s::bytea[]) AND failed_at > now() - make_interval(secs => %(seconds)s)
GROUP BY subject;

-- name: forget
-- A successful (or refused) attempt is not a failure.
DELETE FROM login_failures WHERE id = ANY(%(ids)s::bigint[]);

-- name: prune
DELETE FROM login_failures WHERE failed_at <= now() - make_interval(secs => %(seconds)s);
