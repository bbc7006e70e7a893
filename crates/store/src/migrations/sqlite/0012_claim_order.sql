-- The scheduler's claim walks the live connections most urgent first (refresh tokens
-- closest to their lapse, unknown ones first). With a large backlog (every connection due
-- after a downtime) walking this index finds the next batch at once; without it each claim
-- read every live row and sorted them (a million rows: half a second a claim).
CREATE INDEX connections_urgency ON connections (refresh_expires_at, id)
    WHERE status IN ('active', 'expiring');
