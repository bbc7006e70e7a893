-- Service API keys for the token API: only a SHA-256 of each key is kept. `realms` is a
-- space-separated list of realm ids the key may read (empty: every realm), `environment`
-- the one environment it may read (NULL: both).
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    realms      TEXT NOT NULL DEFAULT '',
    environment TEXT CHECK (environment IN ('sandbox', 'production')),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    revoked_at  TEXT
);

-- Intuit webhook events already processed, by event id (idempotency).
CREATE TABLE webhook_events (
    event_id    TEXT PRIMARY KEY,
    received_at TEXT NOT NULL
);

-- The last data change Intuit reported for a connection's realm (webhooks).
ALTER TABLE connections ADD COLUMN last_data_change_at TEXT;
ALTER TABLE connections ADD COLUMN last_data_change TEXT;
