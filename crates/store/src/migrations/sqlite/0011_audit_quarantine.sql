-- `audit quarantine`: rows stored past the chain head (which block every later write)
-- are moved here, whole, by the repair that records `chain repaired`, and kept forever.
CREATE TABLE audit_quarantine (
    repair_seq     INTEGER NOT NULL,
    quarantined_at TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    at             TEXT NOT NULL,
    actor_account  TEXT NOT NULL,
    actor_uid      INTEGER NOT NULL,
    actor_ssh      TEXT,
    interface      TEXT NOT NULL,
    role           TEXT NOT NULL,
    action         TEXT NOT NULL,
    connection_id  INTEGER,
    environment    TEXT,
    realm_id       TEXT,
    tenant         TEXT,
    outcome        TEXT NOT NULL,
    error_class    TEXT,
    reason         TEXT,
    intuit_tid     TEXT,
    request_id     TEXT,
    fingerprints   TEXT NOT NULL DEFAULT '',
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    actor_kind     TEXT,
    PRIMARY KEY (repair_seq, seq)
);
CREATE TRIGGER audit_quarantine_no_update BEFORE UPDATE ON audit_quarantine
BEGIN SELECT RAISE(ABORT, 'audit_quarantine is kept forever'); END;
CREATE TRIGGER audit_quarantine_no_delete BEFORE DELETE ON audit_quarantine
BEGIN SELECT RAISE(ABORT, 'audit_quarantine is kept forever'); END;

-- Events may be deleted once an archive holds them (0005), or, past the chain head only,
-- once a copy with the same hash is in audit_quarantine. Any other delete is refused.
DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.seq > COALESCE((SELECT MAX(through_seq) FROM audit_archive), 0)
  AND NOT (
    OLD.seq > (SELECT last_seq FROM audit_head WHERE id = 1)
    AND EXISTS (SELECT 1 FROM audit_quarantine q WHERE q.seq = OLD.seq AND q.hash = OLD.hash)
  )
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
