-- Retention of the audit log: each archive (an export with its signed manifest, written
-- before anything is removed) leaves a row here naming the last event it holds and that
-- event's hash, the head the chain in the database continues from. The table is
-- append-only and only moves forward within the chain.
CREATE TABLE audit_archive (
    through_seq   INTEGER PRIMARY KEY,
    through_hash  TEXT NOT NULL,
    archived_at   TEXT NOT NULL,
    file          TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    manifest      TEXT NOT NULL
);
CREATE TRIGGER audit_archive_forward BEFORE INSERT ON audit_archive
WHEN NEW.through_seq <= COALESCE((SELECT MAX(through_seq) FROM audit_archive), 0)
  OR NEW.through_seq > (SELECT last_seq FROM audit_head WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'audit_archive only moves forward, within the chain'); END;
CREATE TRIGGER audit_archive_no_update BEFORE UPDATE ON audit_archive
BEGIN SELECT RAISE(ABORT, 'audit_archive is append-only'); END;
CREATE TRIGGER audit_archive_no_delete BEFORE DELETE ON audit_archive
BEGIN SELECT RAISE(ABORT, 'audit_archive is append-only'); END;

-- Events may be deleted only once an archive holds them: up to the archived head. Any
-- other delete is refused as before.
DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.seq > COALESCE((SELECT MAX(through_seq) FROM audit_archive), 0)
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
