-- After `POST /webhooks/{id}/rotate-secret` the previous secret keeps signing beside the
-- new one until previous_secret_expires_at (unix seconds), so a receiver can switch over
-- without refusing a delivery.
ALTER TABLE webhooks ADD COLUMN previous_secret TEXT;
ALTER TABLE webhooks ADD COLUMN previous_secret_expires_at BIGINT;
