-- The API's catch-up (src/appservice/catch_up.rs) reads what the bridge brought in by
-- time, and asks whether the event log has each one, whoever's it was.
CREATE INDEX bridge_messages_created_at ON bridge_messages (created_at);
CREATE INDEX events_event_id ON events (event_id);
