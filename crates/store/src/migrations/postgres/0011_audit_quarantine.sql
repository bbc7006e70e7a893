-- `audit quarantine`: rows stored past the chain head (which block every later write)
-- are moved here, whole, by the repair that records `chain repaired`, and kept forever.
CREATE TABLE audit_quarantine (
    repair_seq     BIGINT NOT NULL,
    quarantined_at TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    at             TEXT NOT NULL,
    actor_account  TEXT NOT NULL,
    actor_uid      BIGINT NOT NULL,
    actor_ssh      TEXT,
    interface      TEXT NOT NULL,
    role           TEXT NOT NULL,
    action         TEXT NOT NULL,
    connection_id  BIGINT,
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
CREATE FUNCTION audit_quarantine_kept() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_quarantine is kept forever';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_quarantine_kept BEFORE UPDATE OR DELETE ON audit_quarantine
FOR EACH ROW EXECUTE FUNCTION audit_quarantine_kept();
CREATE TRIGGER audit_quarantine_no_truncate BEFORE TRUNCATE ON audit_quarantine
FOR EACH STATEMENT EXECUTE FUNCTION audit_quarantine_kept();

-- Events may be deleted once an archive holds them (0005), or, past the chain head only,
-- once a copy with the same hash is in audit_quarantine. Every other delete, every
-- update, and TRUNCATE are refused.
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.seq <= COALESCE((SELECT MAX(through_seq) FROM audit_archive), 0) THEN
            RETURN OLD;
        END IF;
        IF OLD.seq > (SELECT last_seq FROM audit_head WHERE id = 1)
           AND EXISTS (SELECT 1 FROM audit_quarantine q WHERE q.seq = OLD.seq AND q.hash = OLD.hash) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;
