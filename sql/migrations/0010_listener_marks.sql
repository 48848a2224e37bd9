-- Pruning no listener can outrun, and revocations every server hears at once (issues 13 and 14).
--
-- Every change listener of every server process (server/live/listener.py) records here the snapshot
-- it has handed changes out up to (its mark) after each pass, and so when it last did (a heartbeat).
-- Pruning (sql/changes.sql, prune) only expires or deletes changes every live mark sees; a mark
-- silent past the grace period (changes_listener_grace_seconds) stops counting, and when pruning then
-- deletes changes it had not seen, its `gaps` goes up: that listener ends its subscriptions with a
-- 410 push rather than missing those changes in silence.
CREATE TABLE listener_marks (
    name          text PRIMARY KEY,                     -- host/pid/random, one per listener started
    mark          pg_snapshot NOT NULL,
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    gaps          bigint NOT NULL DEFAULT 0             -- deletions that passed this mark while it was silent
);

-- A user's credentials changed (a token re-issued or revoked, a login session ended, the account
-- disabled, its role changed, the account deleted: its token and sessions go by cascade): every
-- server's listener connection hears the user's id when the change commits, and closes the
-- affected sockets at once (server/web/connection.py), whoever made the change (the CLI, a logout,
-- psql). The periodic re-check of open sockets stays as the safety net.
CREATE FUNCTION notify_credentials() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dashboard_credentials', to_jsonb(OLD) ->> TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER tokens_revoked AFTER UPDATE OR DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION notify_credentials('user_id');
CREATE TRIGGER login_sessions_ended AFTER DELETE ON login_sessions
    FOR EACH ROW EXECUTE FUNCTION notify_credentials('user_id');
CREATE TRIGGER users_changed AFTER UPDATE OF is_active, role ON users
    FOR EACH ROW WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active OR OLD.role IS DISTINCT FROM NEW.role)
    EXECUTE FUNCTION notify_credentials('id');
