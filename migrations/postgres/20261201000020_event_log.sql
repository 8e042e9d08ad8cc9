-- The event log: every payload queued for a Matrix identity, stored once, numbered by
-- `seq`, a sequence per identity with no gap in the order it becomes visible: writers of
-- one identity are serialised by its row in `event_sequences`, held until they commit,
-- which also keeps the sequence going up after old events are pruned.
-- `GET /events?after=` pages through it; webhook deliveries reference it instead of each
-- carrying their own copy of the payload.
CREATE TABLE event_sequences (
    identity TEXT PRIMARY KEY NOT NULL,
    last_seq BIGINT NOT NULL
);
CREATE TABLE events (
    identity   TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    event_id   TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (identity, seq),
    UNIQUE (identity, event_id)
);
CREATE INDEX events_created_at ON events (created_at);

-- Payloads already queued become events, numbered in the order they were queued.
INSERT INTO events (identity, seq, event_id, payload, created_at)
SELECT identity, ROW_NUMBER() OVER (PARTITION BY identity ORDER BY created_at, event_id), event_id, payload, created_at
FROM (
    SELECT t.matrix_user_id AS identity, d.event_id, MIN(d.payload) AS payload, MIN(d.created_at) AS created_at
    FROM webhook_deliveries d
    JOIN webhooks w ON w.id = d.webhook_id
    JOIN tokens t ON t.id = w.token_id
    GROUP BY t.matrix_user_id, d.event_id
) queued;

INSERT INTO event_sequences (identity, last_seq) SELECT identity, MAX(seq) FROM events GROUP BY identity;

-- One row per (webhook, event), pointing at the event. Times in milliseconds are the
-- worker's (`*_attempt_at`); `created_at` and `delivered_at` are unix seconds.
CREATE TABLE webhook_deliveries_v2 (
    id               TEXT PRIMARY KEY NOT NULL,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    identity         TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    event_id         TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    first_attempt_at BIGINT,
    last_attempt_at  BIGINT,
    last_error       TEXT,
    response_status  BIGINT,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT,
    FOREIGN KEY (identity, seq) REFERENCES events (identity, seq),
    UNIQUE (webhook_id, event_id),
    UNIQUE (webhook_id, seq)
);
INSERT INTO webhook_deliveries_v2 (id, webhook_id, identity, seq, event_id, status, attempts, next_attempt_at,
                                   first_attempt_at, last_attempt_at, last_error, response_status, created_at, delivered_at)
SELECT d.id, d.webhook_id, e.identity, e.seq, d.event_id, d.status, d.attempts, d.next_attempt_at,
       CASE WHEN d.attempts > 0 THEN d.created_at * 1000 END, CASE WHEN d.attempts > 0 THEN d.next_attempt_at END,
       d.last_error, d.response_status,
       d.created_at, d.delivered_at
FROM webhook_deliveries d
JOIN webhooks w ON w.id = d.webhook_id
JOIN tokens t ON t.id = w.token_id
JOIN events e ON e.identity = t.matrix_user_id AND e.event_id = d.event_id;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_v2 RENAME TO webhook_deliveries;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (identity, seq);
