-- The refresh lease made safe under kills and slow commits (issue 22).

-- Bumped by every taking of the lease: each write a holder makes names the fence it was
-- given, so a holder whose lease was taken over (even by another task of its own process)
-- can no longer write the row.
ALTER TABLE connections ADD COLUMN lease_fence BIGINT NOT NULL DEFAULT 0;

-- Until when, by the DATABASE's clock, a holder may still be sending this row's refresh
-- token to Intuit or committing the answer. Nobody else may take a held lease before
-- then, however far a daemon's own clock has moved: the database's clock is the one all
-- daemons share. Meaningless once lease_owner is NULL (the holder let go).
ALTER TABLE connections ADD COLUMN inflight_until TIMESTAMPTZ;

-- The stored refresh token may have been sent to Intuit without its answer being recorded
-- (a daemon killed, a response lost in a timeout): by whom and from when. Cleared by every
-- recorded answer; read when Intuit then refuses the token, to say the answer was lost
-- rather than blame the customer.
ALTER TABLE connections ADD COLUMN unanswered_since TIMESTAMPTZ;
ALTER TABLE connections ADD COLUMN unanswered_by TEXT;
-- The fence of the lease that made the mark: a holder that gives its lease back unused
-- clears its own mark, never an earlier holder's.
ALTER TABLE connections ADD COLUMN unanswered_fence BIGINT;

-- Audit events whose change had to be kept when the chain could not take them (a
-- refresh's rotated tokens, when the audit insert failed): appended to the chain, oldest
-- first, by the next write that can (see src/audit/held.rs).
CREATE TABLE audit_held (
    id    BIGSERIAL PRIMARY KEY,
    event TEXT NOT NULL
);
