-- The bridge's two durable queues. Each row is committed before the side that handed it
-- over is answered (WhatsApp's ack, the homeserver's transaction), and each is
-- idempotent by its natural key, so any hop may be replayed without a second message.

-- Network → Matrix: messages a device received, committed before WhatsApp is acked and
-- deleted once the homeserver has their event. `seq` keeps each chat in arrival order.
-- A message the homeserver refuses for good stays, with `failed_at`, for the operator.
CREATE TABLE bridge_inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      TEXT NOT NULL,
    chat_id         TEXT NOT NULL,
    sender          TEXT NOT NULL,
    network_id      TEXT NOT NULL,
    message         TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    failed_at       BIGINT,
    UNIQUE (account_id, chat_id, sender, network_id)
);

-- Matrix → network: events to send, each with the network message id fixed before the
-- first attempt, so a retry or a replayed transaction re-sends the same message at most.
CREATE TABLE bridge_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL UNIQUE,
    room_id         TEXT NOT NULL,
    account_id      TEXT NOT NULL,
    chat_id         TEXT NOT NULL,
    sender          TEXT NOT NULL,
    event           TEXT NOT NULL,
    network_id      TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    reported_at     BIGINT
);
CREATE INDEX bridge_outbox_due ON bridge_outbox (state, next_attempt_at);
CREATE INDEX bridge_outbox_unreported ON bridge_outbox (reported_at);
