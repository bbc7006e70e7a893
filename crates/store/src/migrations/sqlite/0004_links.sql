-- Reconnect links (issue 14). A company invited with `link --new` has no realm until its
-- owner consents, so realm_id becomes nullable: UNIQUE (environment, realm_id) still holds
-- for every known realm, and any number of pending rows may wait without one. SQLite
-- cannot drop NOT NULL in place, so the table is rebuilt; its AUTOINCREMENT high-water
-- mark is carried over, or a purged connection's id could be handed out again and join
-- its audit history.
CREATE TABLE connections_new (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant                  TEXT NOT NULL,
    realm_id                TEXT,
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
    -- A row without a realm is a pending invitation and nothing else.
    CHECK (realm_id IS NOT NULL OR status = 'pending'),
    UNIQUE (environment, realm_id)
);
INSERT INTO connections_new SELECT * FROM connections;
DELETE FROM sqlite_sequence WHERE name = 'connections_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'connections_new', seq FROM sqlite_sequence WHERE name = 'connections';
DROP TABLE connections;
ALTER TABLE connections_new RENAME TO connections;
CREATE INDEX connections_tenant ON connections (tenant);
CREATE INDEX connections_due ON connections (status, access_expires_at);
CREATE INDEX connections_schedule ON connections (status, next_attempt_at);

-- An invitation to (re)connect one connection. The secret in the link is never stored:
-- only its SHA-256. `state` is the OAuth state of the latest opening, also hashed, with
-- the hash of the browser binding cookie set beside it; a consumed state moves to
-- used_state_hash, so a repeated callback is recognised as a duplicate, never exchanged.
CREATE TABLE link_invitations (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash         TEXT NOT NULL UNIQUE,
    connection_id      INTEGER NOT NULL,
    environment        TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    expected_realm     TEXT,
    tenant             TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('open', 'completed', 'cancelled', 'expired')),
    created_at         TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    opened_at          TEXT,
    closed_at          TEXT,
    state_hash         TEXT UNIQUE,
    state_binding_hash TEXT,
    state_expires_at   TEXT,
    used_state_hash    TEXT UNIQUE
);
CREATE INDEX link_invitations_open ON link_invitations (status, expires_at);
