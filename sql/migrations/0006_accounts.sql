-- Administration without SQL: deleted users keep their name in the history, logins are recorded.

-- A deleted user's id and name: `history` still says who made a change (changes.user_id has no
-- foreign key, so the change log outlives the account).
CREATE TABLE former_users (
    id          bigint PRIMARY KEY,
    username    text NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT now()
);

-- Every login attempt through /api/auth/ (`dashboard-server logins`), kept as long as the audit
-- trail. username is NULL when it names no user: a password typed into the username field must
-- not be stored.
CREATE TABLE logins (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    username    text,
    address     text,
    outcome     text NOT NULL CHECK (outcome IN ('success', 'unknown user', 'wrong password', 'inactive',
                                                  'no password', 'throttled'))
);
CREATE INDEX logins_at_idx ON logins (at);
