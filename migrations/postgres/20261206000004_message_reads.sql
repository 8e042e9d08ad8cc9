-- Marking messages read: a received message's sender (a group's read receipt names it),
-- when it was bridged to the millisecond (a Matrix client's receipt reads what came up to
-- the message it names) and when the device marked it read, so "read the whole chat"
-- reads only what is unread.
ALTER TABLE bridge_messages ADD COLUMN sender TEXT;
ALTER TABLE bridge_messages ADD COLUMN bridged_ms BIGINT;
ALTER TABLE bridge_messages ADD COLUMN read_at BIGINT;
CREATE INDEX bridge_messages_unread ON bridge_messages (account_id, chat_id, bridged_ms)
    WHERE direction = 'in' AND read_at IS NULL;
