-- Connections to QuickBooks companies, one per (environment, realm).
CREATE TABLE connections (
    id                      BIGSERIAL PRIMARY KEY,
    tenant                  TEXT NOT NULL,
    realm_id                TEXT NOT NULL,
    environment             TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    company_name            TEXT,
    scopes                  TEXT NOT NULL DEFAULT '',
    status                  TEXT NOT NULL CHECK (status IN ('pending', 'active', 'expiring', 'needs_reconnect', 'revoking', 'revoked')),
    status_reason           TEXT,
    access_expires_at       TIMESTAMPTZ,
    refresh_issued_at       TIMESTAMPTZ,
    refresh_expires_at      TIMESTAMPTZ,
    hard_expires_at         TIMESTAMPTZ,
    last_refresh_at         TIMESTAMPTZ,
    last_refresh_outcome    TEXT,
    last_error_class        TEXT,
    last_error_detail       TEXT,
    last_intuit_tid         TEXT,
    last_sync_at            TIMESTAMPTZ,
    last_sync_status        TEXT,
    last_sync_detail        TEXT,
    consecutive_failures    BIGINT NOT NULL DEFAULT 0,
    next_attempt_at         TIMESTAMPTZ,
    lease_owner             TEXT,
    lease_until             TIMESTAMPTZ,
    version                 BIGINT NOT NULL DEFAULT 0,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    access_token            BYTEA,
    refresh_token           BYTEA,
    previous_refresh_token  BYTEA,
    previous_refresh_replaced_at TIMESTAMPTZ,
    UNIQUE (environment, realm_id)
);
CREATE INDEX connections_tenant ON connections (tenant);
CREATE INDEX connections_due ON connections (status, access_expires_at);

-- The audit log: append-only, hash-chained. audit_head holds the chain's tip so that
-- concurrent writers serialize on one row (SELECT … FOR UPDATE) and a deleted last event
-- is still detected. Times are stored as the exact text that was hashed.
CREATE TABLE audit_events (
    seq            BIGINT PRIMARY KEY,
    at             TEXT NOT NULL,
    actor_account  TEXT NOT NULL,
    actor_uid      BIGINT NOT NULL,
    actor_ssh      TEXT,
    interface      TEXT NOT NULL,
    role           TEXT NOT NULL,
    action         TEXT NOT NULL,
    connection_id  BIGINT,
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
    last_seq  BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
