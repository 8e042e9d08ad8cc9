-- The bridge's state.

-- A linked network account and the Matrix user who owns it.
CREATE TABLE bridge_logins (
    account_id TEXT PRIMARY KEY NOT NULL,
    owner      TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX bridge_logins_owner ON bridge_logins (owner);

-- One Matrix room per chat of an account.
CREATE TABLE bridge_portals (
    account_id TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    room_id    TEXT NOT NULL UNIQUE,
    is_direct  BOOLEAN NOT NULL,
    name       TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, chat_id)
);

-- Network users as Matrix users.
CREATE TABLE bridge_puppets (
    phone       TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL,
    displayname TEXT
);

-- Matrix event id <-> network message id, both ways.
CREATE TABLE bridge_messages (
    event_id   TEXT PRIMARY KEY NOT NULL,
    room_id    TEXT NOT NULL,
    account_id TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    network_id TEXT NOT NULL,
    direction  TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX bridge_messages_network ON bridge_messages (account_id, chat_id, network_id);

-- Appservice transactions already handled, per appservice, so a replay does nothing.
CREATE TABLE appservice_transactions (
    appservice TEXT NOT NULL,
    txn_id     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (appservice, txn_id)
);

-- The bot's direct room with each person, where commands are read.
CREATE TABLE bridge_management_rooms (
    user_id TEXT PRIMARY KEY NOT NULL,
    room_id TEXT NOT NULL UNIQUE
);
