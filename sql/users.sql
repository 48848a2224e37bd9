-- Accounts and tokens (server/users.py).

-- name: create
INSERT INTO users (username, password) VALUES (%(username)s, %(password)s)
RETURNING id, username, is_active;

-- name: by_username
SELECT id, username, password, is_active FROM users WHERE username = %(username)s;

-- name: by_token_digest
SELECT u.id, u.username, u.is_active, t.digest
FROM tokens t JOIN users u ON u.id = t.user_id
WHERE t.digest = %(digest)s;

-- name: set_token
-- One token per user: a new one replaces (revokes) the old.
INSERT INTO tokens (user_id, digest) VALUES (%(user_id)s, %(digest)s)
ON CONFLICT (user_id) DO UPDATE SET digest = EXCLUDED.digest, created_at = now();
