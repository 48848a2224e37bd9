-- Roles, login sessions, the failed-login throttle, and what importing from Django needs.

-- A viewer reads (list, retrieve, subscribe); an editor does everything. Users that
-- exist already could write before, so they stay editors.
ALTER TABLE users
    ADD COLUMN role text NOT NULL DEFAULT 'editor' CHECK (role IN ('viewer', 'editor')),
    -- The Django hash this user was last imported with (server/django_import.py): a
    -- re-import changes the password only when Django's changed, so it never undoes the
    -- upgrade to scrypt made at the user's first login here.
    ADD COLUMN imported_password text;

-- The token key encrypted with the server secret, so that /api/auth/token/ can hand the
-- same key out again as DRF's get_or_create does; NULL for keys issued before this column.
ALTER TABLE tokens ADD COLUMN sealed text;

-- Login sessions behind the session cookie: the cookie carries a random key, the table its
-- SHA-256 digest, so logout, passwd and deactivate end a session at once, everywhere.
CREATE TABLE login_sessions (
    digest      bytea PRIMARY KEY CHECK (length(digest) = 32),
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX login_sessions_user_id_idx ON login_sessions (user_id);
CREATE INDEX login_sessions_expires_at_idx ON login_sessions (expires_at);

-- Failed logins, per subject (a digest of "user:<name>" or "addr:<client address>", so a
-- password typed into the username field is never stored). Kept in the database so that
-- every server process behind a load balancer counts the same failures.
CREATE TABLE login_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject     bytea NOT NULL CHECK (length(subject) = 32),
    failed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_subject_idx ON login_failures (subject, failed_at);
CREATE INDEX login_failures_failed_at_idx ON login_failures (failed_at);
