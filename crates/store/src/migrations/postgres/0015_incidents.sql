-- Incidents (issue 25): many connections of one environment failing at Intuit the same way
-- at once, kept as one row, so every daemon sharing the database sees it, pauses that
-- environment's refreshes but for probes, and alerts once. At most one open incident per
-- environment, endpoint and kind (Intuit's failures, or our own credentials): a second
-- daemon detecting the same outage joins the open row instead of opening another.
CREATE TABLE incidents (
    id              BIGSERIAL PRIMARY KEY,
    environment     TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    endpoint        TEXT NOT NULL CHECK (endpoint IN ('token', 'revoke', 'accounting')),
    class           TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('intuit', 'ours')),
    started_at      TIMESTAMPTZ NOT NULL,
    opened_at       TIMESTAMPTZ NOT NULL,
    ended_at        TIMESTAMPTZ,
    connections     BIGINT NOT NULL DEFAULT 0,
    -- Up to five intuit_tids of failed calls, space separated.
    sample_tids     TEXT NOT NULL DEFAULT '',
    detail          TEXT NOT NULL DEFAULT '',
    -- The last probe's start (one daemon probes at a time) and the successes in a row.
    probe_at        TIMESTAMPTZ,
    probe_successes BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX incidents_one_open ON incidents (environment, endpoint, kind) WHERE ended_at IS NULL;

-- The connections whose failures belong to an incident: what the forecast, the detail pane
-- and the alerts read to tell an incident's failure from a connection's own, and what is
-- rescheduled at once when the incident ends.
CREATE TABLE incident_connections (
    incident_id   BIGINT NOT NULL REFERENCES incidents (id),
    connection_id BIGINT NOT NULL,
    failed_at     TIMESTAMPTZ NOT NULL,
    intuit_tid    TEXT,
    PRIMARY KEY (incident_id, connection_id)
);
CREATE INDEX incident_connections_connection ON incident_connections (connection_id);
