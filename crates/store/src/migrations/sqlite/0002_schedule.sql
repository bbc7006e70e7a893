-- The scheduler's question: which live connections are due, most urgent first.
CREATE INDEX connections_schedule ON connections (status, next_attempt_at);
