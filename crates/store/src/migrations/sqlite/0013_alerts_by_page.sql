-- Alerts are evaluated a page of connections at a time (a million connections do not fit
-- in memory twice over): each page reads the conditions open for its own connections.
CREATE INDEX alert_conditions_connection ON alert_conditions (connection_id);

-- Conditions opened in a pass beyond its first few messages: counted here, per risk, in
-- the same transaction that opened them, and sent as one message at the end of the pass
-- (or of the next pass, after a crash), instead of one message per connection.
CREATE TABLE alert_overflow (
    risk  TEXT PRIMARY KEY,
    count BIGINT NOT NULL
);
