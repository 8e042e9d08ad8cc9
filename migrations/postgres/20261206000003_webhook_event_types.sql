-- The event types a webhook takes (src/webhooks/catalogue.rs): a JSON array of names, or
-- NULL for the default set, what every webhook got before types could be chosen.
ALTER TABLE webhooks ADD COLUMN events TEXT;
