-- Health checks, the forecast and alerts (issue 16).

-- When a sync last succeeded, from any source (a health check, verify, the host app):
-- the forecast's "no successful sync for N days" needs it after a failure has replaced
-- last_sync_status.
ALTER TABLE connections ADD COLUMN last_sync_ok_at TEXT;

-- The daemon's health checks: when each connection was last checked, and since when the
-- API has refused its freshly refreshed tokens (401, fault 3200/3201: the customer
-- disconnected the app). No foreign key: purge deletes connections, and a row left
-- behind is never read (every reader joins from connections).
CREATE TABLE connection_health (
    connection_id   INTEGER PRIMARY KEY,
    checked_at      TEXT NOT NULL,
    disconnected_at TEXT
);

-- Conditions alerted and still open, one row each: a restart reads them and does not
-- alert again. The key is `connection:ID:RISK` or `environment:ENV:credentials_rejected`.
CREATE TABLE alert_conditions (
    key           TEXT PRIMARY KEY,
    risk          TEXT NOT NULL,
    connection_id INTEGER,
    environment   TEXT,
    opened_at     TEXT NOT NULL,
    summary       TEXT NOT NULL
);

-- Messages to deliver, one row per message and webhook, kept as the history the console
-- shows. The webhook is named, never its URL (a Slack URL is a credential).
CREATE TABLE alert_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at      TEXT NOT NULL,
    condition_key   TEXT NOT NULL,
    event           TEXT NOT NULL,
    webhook         TEXT NOT NULL,
    text            TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    finished_at     TEXT
);
CREATE INDEX alert_outbox_due ON alert_outbox (state, next_attempt_at);

-- Small named times: when the last digest went out.
CREATE TABLE alert_marks (
    name TEXT PRIMARY KEY,
    at   TEXT NOT NULL
);
