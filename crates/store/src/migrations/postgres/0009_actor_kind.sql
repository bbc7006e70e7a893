-- Honest actors (issue 22): what kind of actor each event names (identity::Kind: operator,
-- scheduler, health check, alerts, retention, revoke retry, link expiry, service,
-- customer, intuit). NULL on events sealed before this column existed: their hashes were
-- computed without it and stay as they are. For every kind but operator, role is ''.
ALTER TABLE audit_events ADD COLUMN actor_kind TEXT;
