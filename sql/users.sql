-- Accounts, tokens and login sessions (server/accounts/users.py, server/accounts/sessions.py).

-- name: create
INSERT INTO users (username, password, role) VALUES (%(username)s, %(password)s, %(role)s)
RETURNING id, username, is_active, role;

-- name: by_username
SELECT id, username, password, is_active, role FROM users WHERE username = %(username)s;

-- name: by_token_digest
SELECT u.id, u.username, u.is_active, u.role, t.digest
FROM tokens t JOIN users u ON u.id = t.user_id
WHERE t.digest = %(digest)s;

-- name: set_token
-- One token per user: a new one replaces (revokes) the old.
INSERT INTO tokens (user_id, digest, sealed) VALUES (%(user_id)s, %(digest)s, %(sealed)s)
ON CONFLICT (user_id) DO UPDATE SET digest = EXCLUDED.digest, sealed = EXCLUDED.sealed, created_at = now();

-- name: token_of
SELECT digest, sealed FROM tokens WHERE user_id = %(user_id)s;

-- name: set_password
-- Also ends every login session of the user, as Django does on a password change.
WITH ended AS (DELETE FROM login_sessions WHERE user_id = %(user_id)s)
UPDATE users SET password = %(password)s WHERE id = %(user_id)s;

-- name: upgrade_password
-- Replaces an imported hash after a successful login; a no-op if it changed meanwhile.
UPDATE users SET password = %(password)s WHERE id = %(user_id)s AND password = %(old)s;

-- name: deactivate
-- The token and the sessions go at once; open sockets follow at the next credential check.
WITH revoked AS (DELETE FROM tokens WHERE user_id = (SELECT id FROM users WHERE username = %(username)s)),
     ended AS (DELETE FROM login_sessions WHERE user_id = (SELECT id FROM users WHERE username = %(username)s))
UPDATE users SET is_active = false WHERE username = %(username)s RETURNING id;

-- name: all
SELECT u.username, u.role, u.is_active, t.user_id IS NOT NULL AS has_token,
       left(u.password, 1) <> '!' AS has_password, u.created_at
FROM users u LEFT JOIN tokens t ON t.user_id = u.id
ORDER BY u.username;

-- name: start_session
INSERT INTO login_sessions (digest, user_id, expires_at)
VALUES (%(digest)s, %(user_id)s, now() + make_interval(secs => %(max_age)s));

-- name: renew_session
-- A sliding session: each renewal gives it a full max_age again (server/accounts/sessions.py).
UPDATE login_sessions SET expires_at = now() + make_interval(secs => %(max_age)s)
WHERE digest = %(digest)s AND expires_at > now();

-- name: end_session
DELETE FROM login_sessions WHERE digest = %(digest)s;

-- name: prune_sessions
DELETE FROM login_sessions WHERE expires_at <= now();

-- name: by_session_digest
SELECT u.id, u.username, u.is_active, u.role
FROM login_sessions s JOIN users u ON u.id = s.user_id
WHERE s.digest = %(digest)s AND s.expires_at > now();

-- name: live_credentials
-- Which of these token or session digests still stand for an active user (the
-- periodic check of open sockets, server/web/connection.py).
SELECT t.digest, u.role FROM tokens t JOIN users u ON u.id = t.user_id
WHERE u.is_active AND t.digest = ANY(%(digests)s)
UNION ALL
SELECT s.digest, u.role FROM login_sessions s JOIN users u ON u.id = s.user_id
WHERE u.is_active AND s.expires_at > now() AND s.digest = ANY(%(digests)s);

-- name: set_role
UPDATE users SET role = %(role)s WHERE username = %(username)s RETURNING id;

-- name: reactivate
-- Only the flag: the old token and sessions were deleted when it was deactivated.
UPDATE users SET is_active = true WHERE username = %(username)s RETURNING id;

-- name: delete
-- Its token and sessions go with it (ON DELETE CASCADE); its name stays for `history`.
WITH gone AS (DELETE FROM users WHERE username = %(username)s RETURNING id, username),
     kept AS (INSERT INTO former_users (id, username) SELECT id, username FROM gone
              ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, deleted_at = now())
SELECT id FROM gone;

-- name: record_login
-- One row an attempt; the oldest ones beyond the audit retention go at the same time.
WITH pruned AS (DELETE FROM logins WHERE at < now() - make_interval(secs => %(retain_seconds)s))
INSERT INTO logins (username, address, outcome) VALUES (%(username)s, %(address)s, %(outcome)s);

-- name: recent_logins
SELECT at, username, address, outcome FROM logins
WHERE %(username)s::text IS NULL OR username = %(username)s
ORDER BY id DESC LIMIT %(limit)s;
