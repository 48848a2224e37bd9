-- Idempotency keys of creates (issue 14): a create retried with the same key answers with the object
-- the first one created and creates nothing. A key is recorded by the insert's own statement
-- (writes.record_key), so it exists exactly when that insert committed. Keys expire after
-- idempotency_retain_seconds (pruned when a key is looked up).
CREATE TABLE idempotency_keys (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    resource    text NOT NULL,
    key         text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint text NOT NULL,          -- sha256 of the request's data: the same key with other data is refused
    object_id   bigint NOT NULL,        -- the created row's id (patients.id, vitals.id, ...)
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, resource, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
