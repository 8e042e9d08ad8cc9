-- `Idempotency-Key` of message sends: the first answer per (token, key), kept 24 hours.
-- `response` is NULL while the first request is still running.
CREATE TABLE idempotency_keys (
    token_id    TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response    TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (token_id, key)
);
