-- WebSocket tickets redeemed, so a ticket opens one socket whichever process of several
-- it reaches (src/devices/ticket.rs). Rows go once their ticket has expired.
CREATE TABLE ticket_redemptions (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ticket_redemptions_expires_at ON ticket_redemptions (expires_at);
