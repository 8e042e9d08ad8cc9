-- Flags are INTEGER 0/1 here: sqlx's Any driver reads SQLite booleans only as integers (see db::Flag).
-- Credentials issued by the super admin. The super admin itself lives in .env only.
CREATE TABLE credentials (
    client_id   TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    active      INTEGER NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Matrix users registered on the homeserver through the API's appservice.
CREATE TABLE matrix_identities (
    user_id    TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL
);

-- The identity created by the first token ever; the single row makes "first" race-free.
CREATE TABLE host_identity (
    id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    user_id TEXT NOT NULL REFERENCES matrix_identities (user_id)
);

CREATE TABLE tokens (
    id             TEXT PRIMARY KEY NOT NULL,
    token_hash     TEXT NOT NULL UNIQUE,
    client_id      TEXT REFERENCES credentials (client_id) ON DELETE CASCADE,
    is_admin       INTEGER NOT NULL,
    use_host       INTEGER NOT NULL,
    matrix_user_id TEXT NOT NULL REFERENCES matrix_identities (user_id),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT
);
CREATE INDEX tokens_client_id ON tokens (client_id);

CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY NOT NULL,
    token_id   TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    active     INTEGER NOT NULL,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhooks_token_id ON webhooks (token_id);
