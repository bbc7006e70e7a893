//! `audit quarantine --from SEQ`: the way out of a chain blocked by rows stored past its
//! head (see `blocked`), without SQL and without losing anything.
//!
//! What may be moved is decided by the chain head, never by the caller: only rows whose
//! sequence number is past `audit_head.last_seq` (no writer ever linked the head to them),
//! and only all of them from the first one on. A SEQ inside the chain would delete genuine
//! events and is refused, as is a SEQ that would leave some of the stray rows behind. The
//! database enforces the same (migration 0011): a row of `audit_events` can only be deleted
//! past the head, and only once a copy with the same hash is in `audit_quarantine`, which
//! refuses updates and deletes.
//!
//! The rows are moved, whole, to `audit_quarantine`, and a `chain repaired` event appended
//! in the same transaction, linking to the last good head, carrying who did it, how many
//! rows, their sequence range and every removed row's hash. Rows that look like chained
//! events (a valid hash, linked to the row before) are counted apart: they may be genuine
//! events whose head was lost in a restore, and the event says so. An export taken later
//! shows the repair (offline verification lists it), so a repair can never hide a deletion.

use super::chain::AUDIT_COLUMNS;
use super::Action;
use super::{AuditEvent, AuditRecord, Outcome};
use crate::{Tx, TxInner};
use chrono::{DateTime, SecondsFormat, Utc};
pub use qbo_core::audit::{QuarantineReport, RemovedRow, RepairNote};
use qbo_core::identity::Actor;

/// Why a quarantine was refused: the caller's SEQ does not name the stray rows. The
/// message says what it would have removed and which SEQ is right, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decides what `--from from` may move, given the head and the rows past it.
fn plan(from: i64, head_seq: i64, first_past: Option<i64>) -> Result<i64, Refused> {
    let Some(first) = first_past else {
        return Err(Refused(format!(
            "nothing is stored past the chain head (sequence {head_seq}): audit quarantine only moves rows \
             written past the head, and there are none; `qbo-console audit verify` names any other damage, \
             which stays on the record"
        )));
    };
    if from <= head_seq {
        return Err(Refused(format!(
            "sequence {from} is part of the chain (its head is at sequence {head_seq}): quarantining from there \
             would remove genuine events {from}..{head_seq}, which is never done; the rows that do not belong \
             start at sequence {first}: run `qbo-console audit quarantine --from {first}`"
        )));
    }
    if from > first {
        return Err(Refused(format!(
            "rows from sequence {first} are stored past the chain head (sequence {head_seq}), not only from \
             {from}: quarantining from {from} would leave {first}..{} behind and the log blocked; run \
             `qbo-console audit quarantine --from {first}`",
            from - 1
        )));
    }
    Ok(first)
}

impl Tx {
    /// Moves every row from `from` on to `audit_quarantine` and appends the `chain
    /// repaired` event, as `actor` at `at`. `Ok(Err(_))` when `from` is refused (nothing
    /// done: the caller rolls back). Takes the chain head's lock first, so no writer moves
    /// the head while the rows are read and moved.
    pub async fn quarantine_past_head(
        &mut self,
        from: i64,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Result<(QuarantineReport, AuditRecord), Refused>> {
        let (head_seq, head_hash, _) = self.audit_head_for_update().await?;
        let first: Option<i64> = crate::dispatch_tx!(self, c =>
            sqlx::query_scalar("SELECT MIN(seq) FROM audit_events WHERE seq > $1")
                .bind(head_seq).fetch_one(c).await)?;
        let from = match plan(from, head_seq, first) {
            Ok(f) => f,
            Err(r) => return Ok(Err(r)),
        };
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq >= $1 ORDER BY seq");
        let rows: Vec<AuditRecord> = match &mut self.inner {
            TxInner::Sqlite(t) => sqlx::query_as(&sql).bind(from).fetch_all(&mut **t).await?,
            TxInner::Postgres(t) => sqlx::query_as(&sql).bind(from).fetch_all(&mut **t).await?,
        };
        let repair_seq = head_seq + 1;
        let stamp = at.to_rfc3339_opts(SecondsFormat::Micros, true);
        self.insert_quarantine(&rows, repair_seq, &stamp).await?;
        let removed = crate::dispatch_tx!(self, c =>
            sqlx::query("DELETE FROM audit_events WHERE seq >= $1").bind(from)
                .execute(c).await.map(|r| r.rows_affected()))?;
        anyhow::ensure!(
            removed == rows.len() as u64,
            "the audit rows changed while they were being quarantined ({} read, {removed} removed); nothing was changed",
            rows.len()
        );
        let mut prev = head_hash.clone();
        let mut linked = 0;
        for r in &rows {
            if r.prev_hash == prev && r.compute_hash() == r.hash {
                linked += 1;
            }
            prev = r.hash.clone();
        }
        let report = QuarantineReport {
            removed: rows.len() as i64,
            from_seq: from,
            through_seq: rows.last().map_or(from, |r| r.seq),
            removed_hashes: rows
                .iter()
                .map(|r| RemovedRow {
                    seq: r.seq,
                    hash: r.hash.clone(),
                })
                .collect(),
            linked,
            head_seq,
            head_hash,
            repair_seq,
        };
        let mut ev = AuditEvent::new(at, actor, Action::ChainRepaired, Outcome::Ok);
        ev.reason = Some(report.describe());
        let record = self.audit(&ev).await?;
        anyhow::ensure!(
            record.seq == repair_seq,
            "the chain repaired event took sequence {} instead of {repair_seq}",
            record.seq
        );
        // Refreshes that Intuit answered while the chain was blocked kept their tokens and
        // held their events (`audit_held`): they join the chain right after the repair.
        self.flush_held_audit().await?;
        Ok(Ok((report, record)))
    }

    async fn insert_quarantine(
        &mut self,
        rows: &[AuditRecord],
        repair_seq: i64,
        at: &str,
    ) -> anyhow::Result<()> {
        for chunk in crate::fixed_chunks(rows) {
            crate::dispatch_tx!(self, c => {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO audit_quarantine (repair_seq, quarantined_at, {AUDIT_COLUMNS}) "
                ));
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(repair_seq).push_bind(at)
                        .push_bind(r.seq).push_bind(&r.at).push_bind(&r.actor_account).push_bind(r.actor_uid)
                        .push_bind(&r.actor_ssh).push_bind(&r.interface).push_bind(&r.role).push_bind(&r.action)
                        .push_bind(r.connection_id).push_bind(&r.environment).push_bind(&r.realm_id)
                        .push_bind(&r.tenant).push_bind(&r.outcome).push_bind(&r.error_class).push_bind(&r.reason)
                        .push_bind(&r.intuit_tid).push_bind(&r.request_id).push_bind(&r.fingerprints)
                        .push_bind(&r.prev_hash).push_bind(&r.hash).push_bind(&r.actor_kind);
                });
                q.build().execute(c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_row_past_the_head_is_accepted() {
        assert_eq!(plan(42, 41, Some(42)), Ok(42));
        // A gap past the head: the first stray row is what must be named.
        assert_eq!(plan(45, 41, Some(45)), Ok(45));
        let inside = plan(30, 41, Some(42)).unwrap_err().0;
        assert!(
            inside.contains("would remove genuine events 30..41"),
            "{inside}"
        );
        assert!(inside.contains("--from 42"), "{inside}");
        let later = plan(44, 41, Some(42)).unwrap_err().0;
        assert!(later.contains("would leave 42..43 behind"), "{later}");
        let none = plan(42, 41, None).unwrap_err().0;
        assert!(
            none.contains("nothing is stored past the chain head"),
            "{none}"
        );
    }
}
