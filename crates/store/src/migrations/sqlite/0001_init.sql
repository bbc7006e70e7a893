-- Connections to QuickBooks companies, one per (environment, realm).
CREATE TABLE connections (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant                  TEXT NOT NULL,
    realm_id                TEXT NOT NULL,
    environment             TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    company_name            TEXT,
    scopes                  TEXT NOT NULL DEFAULT '',
    status                  TEXT NOT NULL CHECK (status IN ('pending', 'active', 'expiring', 'needs_reconnect', 'revoking', 'revoked')),
    status_reason           TEXT,
    access_expires_at       TEXT,
    refresh_issued_at       TEXT,
    refresh_expires_at      TEXT,
    hard_expires_at         TEXT,
    last_refresh_at         TEXT,
    last_refresh_outcome    TEXT,
    last_error_class        TEXT,
    last_error_detail       TEXT,
    last_intuit_tid         TEXT,
    last_sync_at            TEXT,
    last_sync_status        TEXT,
    last_sync_detail        TEXT,
    consecutive_failures    INTEGER NOT NULL DEFAULT 0,
    next_attempt_at         TEXT,
    lease_owner             TEXT,
    lease_until             TEXT,
    version                 INTEGER NOT NULL DEFAULT 0,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    access_token            BLOB,
    refresh_token           BLOB,
    previous_refresh_token  BLOB,
    previous_refresh_replaced_at TEXT,
    UNIQUE (environment, realm_id)
);
CREATE INDEX connections_tenant ON connections (tenant);
CREATE INDEX connections_due ON connections (status, access_expires_at);

-- The audit log: append-only, hash-chained. audit_head holds the chain's tip so that
-- concurrent writers serialize on one row and a deleted last event is still detected.
CREATE TABLE audit_events (
    seq            INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    actor_account  TEXT NOT NULL,
    actor_uid      INTEGER NOT NULL,
    actor_ssh      TEXT,
    interface      TEXT NOT NULL,
    role           TEXT NOT NULL,
    action         TEXT NOT NULL,
    connection_id  INTEGER,
    environment    TEXT,
    realm_id       TEXT,
    tenant         TEXT,
    outcome        TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'denied')),
    error_class    TEXT,
    reason         TEXT,
    intuit_tid     TEXT,
    request_id     TEXT,
    fingerprints   TEXT NOT NULL DEFAULT '',
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX audit_events_connection ON audit_events (connection_id, seq);

CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq  INTEGER NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
