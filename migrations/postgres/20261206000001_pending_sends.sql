-- Sends that answered `pending`: their outcome, once the send queue records it, goes to
-- the identity's webhooks as a `message.status` event (src/messages/late.rs). Read from
-- the queue's record, so it reaches them whichever process sent it and whether or not a
-- status event was posted into the room.
CREATE TABLE pending_sends (
    event_id TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX pending_sends_created_at ON pending_sends (created_at);
