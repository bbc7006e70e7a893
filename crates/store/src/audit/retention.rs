//! Retention of the log in the database: events are only ever removed once an archive (an
//! export with its signed manifest) holds them, and the archive's head (its last event and
//! that event's hash) is recorded in `audit_archive` in the same transaction, so the chain
//! left in the database is verified from it. The tables' triggers refuse any other delete
//! (migration 0005).

use crate::{Store, Tx};

/// The archived head the chain continues from, if anything was archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedHead {
    pub through_seq: i64,
    pub through_hash: String,
}

/// One archive, as recorded.
pub struct ArchiveRecord<'a> {
    pub through_seq: i64,
    pub through_hash: &'a str,
    pub archived_at: &'a str,
    pub file: &'a str,
    pub sha256: &'a str,
    pub manifest: &'a str,
}

impl Store {
    pub async fn archived_head(&self) -> anyhow::Result<Option<ArchivedHead>> {
        let row: Option<(i64, String)> = crate::dispatch!(self, p => sqlx::query_as(
            "SELECT through_seq, through_hash FROM audit_archive ORDER BY through_seq DESC LIMIT 1"
        ).fetch_optional(p).await)?;
        Ok(row.map(|(through_seq, through_hash)| ArchivedHead {
            through_seq,
            through_hash,
        }))
    }

    /// The newest event older than `before` (a stored time): events are never stamped
    /// earlier than the one before them, so every event up to it is older too.
    pub async fn last_seq_before(&self, before: &str) -> anyhow::Result<Option<i64>> {
        let row: (Option<i64>,) = crate::dispatch!(self, p => sqlx::query_as(
            "SELECT MAX(seq) FROM audit_events WHERE at < $1"
        ).bind(before).fetch_one(p).await)?;
        Ok(row.0)
    }
}

impl Tx {
    /// Records the archive and removes the events it holds; returns how many were removed.
    pub async fn archive_through(&mut self, a: &ArchiveRecord<'_>) -> anyhow::Result<u64> {
        crate::dispatch_tx!(self, c => sqlx::query(
            "INSERT INTO audit_archive (through_seq, through_hash, archived_at, file, sha256, manifest) VALUES ($1, $2, $3, $4, $5, $6)"
        ).bind(a.through_seq).bind(a.through_hash).bind(a.archived_at).bind(a.file).bind(a.sha256).bind(a.manifest)
            .execute(c).await.map(|r| r.rows_affected()))?;
        let removed = crate::dispatch_tx!(self, c => sqlx::query(
            "DELETE FROM audit_events WHERE seq <= $1"
        ).bind(a.through_seq).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(removed)
    }
}
