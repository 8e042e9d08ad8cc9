-- Polls a device sent or received, for the votes on them: a vote names its options by
-- hash, encrypted with the poll's secret and keyed to the poll's creator.
CREATE TABLE wa_polls (
    device  TEXT NOT NULL,
    msg_id  TEXT NOT NULL,
    creator TEXT NOT NULL,
    secret  BLOB NOT NULL,
    options TEXT NOT NULL,
    PRIMARY KEY (device, msg_id)
);
