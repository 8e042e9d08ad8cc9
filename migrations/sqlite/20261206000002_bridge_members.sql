-- Puppets the bridge has brought into portals (bridge/src/portal.rs), so a puppet is
-- invited and joined once, not before each of its messages. A row may outlive the
-- membership (a kick): a call the homeserver then refuses joins again and retries.
CREATE TABLE bridge_members (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
