-- Each sender's current reaction to a message, so that taking it back (or changing it)
-- can redact the Matrix reaction it became. WhatsApp allows one reaction per sender.
CREATE TABLE bridge_reactions (
    account_id TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    target_id  TEXT NOT NULL,
    sender     TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, chat_id, target_id, sender)
);
