-- whatsapp-rust's storage (wacore's Backend), one row set per linked device: every
-- table is keyed by `device` first, so a logout deletes a device's rows table by table.

-- The device's own record: keys, account and settings, as wacore's Device serialises
-- to JSON. `pn` is set once the device is paired with a phone.
CREATE TABLE wa_devices (
    device TEXT PRIMARY KEY NOT NULL,
    pn     TEXT,
    record TEXT NOT NULL
);

-- Signal protocol: remote identities, sessions, our pre-keys and the sender keys of groups.
CREATE TABLE wa_identities (
    device       TEXT NOT NULL,
    address      TEXT NOT NULL,
    identity_key BYTEA NOT NULL,
    PRIMARY KEY (device, address)
);

CREATE TABLE wa_sessions (
    device  TEXT NOT NULL,
    address TEXT NOT NULL,
    record  BYTEA NOT NULL,
    PRIMARY KEY (device, address)
);

CREATE TABLE wa_prekeys (
    device   TEXT NOT NULL,
    id       BIGINT NOT NULL,
    record   BYTEA NOT NULL,
    uploaded BOOLEAN NOT NULL,
    PRIMARY KEY (device, id)
);

CREATE TABLE wa_signed_prekeys (
    device TEXT NOT NULL,
    id     BIGINT NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (device, id)
);

CREATE TABLE wa_sender_keys (
    device  TEXT NOT NULL,
    address TEXT NOT NULL,
    record  BYTEA NOT NULL,
    PRIMARY KEY (device, address)
);

-- App state sync: keys (`seq` orders them by arrival, for the latest one), each
-- collection's version and hash state (JSON), and the MAC of every live mutation.
CREATE TABLE wa_app_state_keys (
    device      TEXT NOT NULL,
    key_id      BYTEA NOT NULL,
    key_data    BYTEA NOT NULL,
    fingerprint BYTEA NOT NULL,
    timestamp   BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (device, key_id)
);

CREATE TABLE wa_app_state_versions (
    device TEXT NOT NULL,
    name   TEXT NOT NULL,
    state  TEXT NOT NULL,
    PRIMARY KEY (device, name)
);

CREATE TABLE wa_app_state_mutation_macs (
    device    TEXT NOT NULL,
    name      TEXT NOT NULL,
    index_mac BYTEA NOT NULL,
    value_mac BYTEA NOT NULL,
    PRIMARY KEY (device, name, index_mac)
);

-- Which devices of a group hold our sender key.
CREATE TABLE wa_sender_key_devices (
    device     TEXT NOT NULL,
    group_jid  TEXT NOT NULL,
    device_jid TEXT NOT NULL,
    has_key    BOOLEAN NOT NULL,
    PRIMARY KEY (device, group_jid, device_jid)
);
CREATE INDEX wa_sender_key_devices_device_jid ON wa_sender_key_devices (device, device_jid);

-- LID <-> phone number, looked up both ways.
CREATE TABLE wa_lid_pn_mappings (
    device          TEXT NOT NULL,
    lid             TEXT NOT NULL,
    phone_number    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    learning_source TEXT NOT NULL,
    PRIMARY KEY (device, lid)
);
CREATE INDEX wa_lid_pn_mappings_phone ON wa_lid_pn_mappings (device, phone_number, updated_at);

-- Base keys saved during retries, to detect a session that did not change.
CREATE TABLE wa_base_keys (
    device     TEXT NOT NULL,
    address    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    base_key   BYTEA NOT NULL,
    PRIMARY KEY (device, address, message_id)
);

-- Each contact's known devices (`devices` is JSON), from usync.
CREATE TABLE wa_device_lists (
    device    TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    devices   TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    phash     TEXT,
    raw_id    BIGINT,
    PRIMARY KEY (device, user_id)
);

-- Group metadata as whatsapp-rust serialises it, to skip re-querying unchanged groups.
CREATE TABLE wa_group_metadata (
    device    TEXT NOT NULL,
    group_jid TEXT NOT NULL,
    metadata  BYTEA NOT NULL,
    PRIMARY KEY (device, group_jid)
);

-- Trusted-contact privacy tokens; an empty token is a placeholder for the sender side.
CREATE TABLE wa_tc_tokens (
    device           TEXT NOT NULL,
    jid              TEXT NOT NULL,
    token            BYTEA NOT NULL,
    token_timestamp  BIGINT NOT NULL,
    sender_timestamp BIGINT,
    PRIMARY KEY (device, jid)
);

-- Messages we sent, kept for retry receipts until taken or expired.
CREATE TABLE wa_sent_messages (
    device     TEXT NOT NULL,
    chat_jid   TEXT NOT NULL,
    message_id TEXT NOT NULL,
    payload    BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (device, chat_jid, message_id)
);

-- Decrypted inbound messages waiting for the durability hook to commit them.
CREATE TABLE wa_pending_inbound (
    device      TEXT NOT NULL,
    chat        TEXT NOT NULL,
    sender      TEXT NOT NULL,
    id          TEXT NOT NULL,
    message     BYTEA NOT NULL,
    inserted_at BIGINT NOT NULL,
    PRIMARY KEY (device, chat, sender, id)
);

-- Message secrets, to decrypt votes, reactions and edits that refer to a message.
-- expires_at 0 means never; message_ts 0 means unknown.
CREATE TABLE wa_msg_secrets (
    device     TEXT NOT NULL,
    chat       TEXT NOT NULL,
    sender     TEXT NOT NULL,
    msg_id     TEXT NOT NULL,
    secret     BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    message_ts BIGINT NOT NULL,
    PRIMARY KEY (device, chat, sender, msg_id)
);
CREATE INDEX wa_msg_secrets_expiry ON wa_msg_secrets (device, expires_at);
