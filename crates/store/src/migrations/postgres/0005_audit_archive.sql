-- Retention of the audit log: each archive (an export with its signed manifest, written
-- before anything is removed) leaves a row here naming the last event it holds and that
-- event's hash, the head the chain in the database continues from. The table is
-- append-only and only moves forward within the chain.
CREATE TABLE audit_archive (
    through_seq   BIGINT PRIMARY KEY,
    through_hash  TEXT NOT NULL,
    archived_at   TEXT NOT NULL,
    file          TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    manifest      TEXT NOT NULL
);

CREATE FUNCTION audit_archive_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.through_seq <= COALESCE((SELECT MAX(through_seq) FROM audit_archive), 0)
           OR NEW.through_seq > (SELECT last_seq FROM audit_head WHERE id = 1) THEN
            RAISE EXCEPTION 'audit_archive only moves forward, within the chain';
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_archive is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_archive_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_archive
FOR EACH ROW EXECUTE FUNCTION audit_archive_guard();
CREATE TRIGGER audit_archive_no_truncate BEFORE TRUNCATE ON audit_archive
FOR EACH STATEMENT EXECUTE FUNCTION audit_archive_guard();

-- Events may be deleted only once an archive holds them: up to the archived head. Any
-- other delete, every update, and TRUNCATE (which row triggers do not see) are refused.
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND OLD.seq <= COALESCE((SELECT MAX(through_seq) FROM audit_archive), 0) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
