-- Device ownership when several mxgate processes share one database (bridge/src/lease.rs):
-- each live process renews its row, and each linked device runs in the one process whose
-- lease on it has not expired. Times are unix milliseconds.
CREATE TABLE bridge_processes (
    -- The process's bridge URL, where the others' APIs reach it for a device it runs. No two
    -- live processes share one, and a process restarted in place is the same process again.
    id TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE TABLE bridge_leases (
    account_id TEXT PRIMARY KEY,
    process_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- The device's connection as its process last saw it, for the processes that do not run it.
    state TEXT NOT NULL,
    error TEXT
);
CREATE INDEX bridge_leases_process ON bridge_leases (process_id);
