-- Which whatsapp-rust store (its rows keyed by `store_key`) holds a linked account's
-- session. A login gets its key before WhatsApp tells it its number.
CREATE TABLE whatsapp_accounts (
    account_id TEXT PRIMARY KEY,
    store_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
