-- The time of the chain's last event, so each new event's time is never earlier than the
-- one before it (events are stamped before they wait for the chain, and can overtake).
ALTER TABLE audit_head ADD COLUMN last_at TEXT;
