-- Reconnect links (issue 14). A company invited with `link --new` has no realm until its
-- owner consents, so realm_id becomes nullable: UNIQUE (environment, realm_id) still holds
-- for every known realm, and any number of pending rows may wait without one.
ALTER TABLE connections ALTER COLUMN realm_id DROP NOT NULL;
-- A row without a realm is a pending invitation and nothing else.
ALTER TABLE connections ADD CONSTRAINT connections_realm_or_pending
    CHECK (realm_id IS NOT NULL OR status = 'pending');

-- An invitation to (re)connect one connection. The secret in the link is never stored:
-- only its SHA-256. `state` is the OAuth state of the latest opening, also hashed, with
-- the hash of the browser binding cookie set beside it; a consumed state moves to
-- used_state_hash, so a repeated callback is recognised as a duplicate, never exchanged.
CREATE TABLE link_invitations (
    id                 BIGSERIAL PRIMARY KEY,
    token_hash         TEXT NOT NULL UNIQUE,
    connection_id      BIGINT NOT NULL,
    environment        TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    expected_realm     TEXT,
    tenant             TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('open', 'completed', 'cancelled', 'expired')),
    created_at         TIMESTAMPTZ NOT NULL,
    created_by         TEXT NOT NULL,
    expires_at         TIMESTAMPTZ NOT NULL,
    opened_at          TIMESTAMPTZ,
    closed_at          TIMESTAMPTZ,
    state_hash         TEXT UNIQUE,
    state_binding_hash TEXT,
    state_expires_at   TIMESTAMPTZ,
    used_state_hash    TEXT UNIQUE
);
CREATE INDEX link_invitations_open ON link_invitations (status, expires_at);
