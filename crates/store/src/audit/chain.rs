//! Storing and checking the chain.

use super::{AuditRecord, Damage};
use crate::{Snapshot, Store, Tx, TxInner};
pub use qbo_core::audit::{RepairNote, VerifyReport};

pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
pub(crate) const AUDIT_COLUMNS: &str = "seq, at, actor_account, actor_uid, actor_ssh, interface, role, action, connection_id, \
    environment, realm_id, tenant, outcome, error_class, reason, intuit_tid, request_id, fingerprints, prev_hash, hash, actor_kind";

impl Tx {
    pub(crate) async fn audit_head_for_update(
        &mut self,
    ) -> anyhow::Result<(i64, String, Option<String>)> {
        Ok(match &mut self.inner {
            TxInner::Sqlite(t) => {
                sqlx::query_as("SELECT last_seq, last_hash, last_at FROM audit_head WHERE id = 1")
                    .fetch_one(&mut **t)
                    .await?
            }
            TxInner::Postgres(t) => {
                sqlx::query_as(
                    "SELECT last_seq, last_hash, last_at FROM audit_head WHERE id = 1 FOR UPDATE",
                )
                .fetch_one(&mut **t)
                .await?
            }
        })
    }

    /// Inserts consecutive records and moves the chain head to the last of them.
    pub(crate) async fn insert_audit(&mut self, records: &[AuditRecord]) -> anyhow::Result<()> {
        // 21 parameters a row; 128 rows stay far below both backends' parameter limits.
        for chunk in crate::fixed_chunks(records) {
            crate::dispatch_tx!(self, c => {
                let mut q = sqlx::QueryBuilder::new(format!("INSERT INTO audit_events ({AUDIT_COLUMNS}) "));
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.seq).push_bind(&r.at).push_bind(&r.actor_account).push_bind(r.actor_uid)
                        .push_bind(&r.actor_ssh).push_bind(&r.interface).push_bind(&r.role).push_bind(&r.action)
                        .push_bind(r.connection_id).push_bind(&r.environment).push_bind(&r.realm_id)
                        .push_bind(&r.tenant).push_bind(&r.outcome).push_bind(&r.error_class).push_bind(&r.reason)
                        .push_bind(&r.intuit_tid).push_bind(&r.request_id).push_bind(&r.fingerprints)
                        .push_bind(&r.prev_hash).push_bind(&r.hash).push_bind(&r.actor_kind);
                });
                q.build().execute(c).await.map(|r| r.rows_affected())
            })?;
        }
        if let Some(last) = records.last() {
            crate::dispatch_tx!(self, c => sqlx::query("UPDATE audit_head SET last_seq = $1, last_hash = $2, last_at = $3 WHERE id = 1")
                .bind(last.seq).bind(&last.hash).bind(&last.at).execute(c).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }
}

impl Store {
    pub(crate) async fn audit_page_desc(&self, n: i64) -> anyhow::Result<Vec<AuditRecord>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events ORDER BY seq DESC LIMIT $1");
        Ok(crate::dispatch!(self, p => sqlx::query_as(&sql).bind(n).fetch_all(p).await)?)
    }

    /// Events for one connection, newest last.
    pub async fn audit_for_connection(&self, id: i64, n: i64) -> anyhow::Result<Vec<AuditRecord>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE connection_id = $1 ORDER BY seq DESC LIMIT $2");
        let mut rows: Vec<AuditRecord> =
            crate::dispatch!(self, p => sqlx::query_as(&sql).bind(id).bind(n).fetch_all(p).await)?;
        rows.reverse();
        Ok(rows)
    }

    /// The newest `n` events about one connection recorded at or after `since` (the
    /// stored text form, which compares like the time), oldest first.
    pub async fn audit_for_connection_since(
        &self,
        id: i64,
        since: &str,
        n: i64,
    ) -> anyhow::Result<Vec<AuditRecord>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE connection_id = $1 AND at >= $2 ORDER BY seq DESC LIMIT $3");
        let mut rows: Vec<AuditRecord> = crate::dispatch!(self, p => sqlx::query_as(&sql).bind(id).bind(since).bind(n).fetch_all(p).await)?;
        rows.reverse();
        Ok(rows)
    }
}

/// Runs `$body` with `$c` bound to the snapshot's connection of either backend.
macro_rules! on_snapshot {
    ($on:expr, $c:ident => $body:expr) => {
        match &mut $on.inner {
            TxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

impl Snapshot {
    async fn audit_page_after(&mut self, after: i64, n: i64) -> anyhow::Result<Vec<AuditRecord>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        );
        Ok(on_snapshot!(self, c => sqlx::query_as(&sql).bind(after).bind(n).fetch_all(c).await)?)
    }

    async fn audit_head(&mut self) -> anyhow::Result<(i64, String)> {
        Ok(
            on_snapshot!(self, c => sqlx::query_as("SELECT last_seq, last_hash FROM audit_head WHERE id = 1").fetch_one(c).await)?,
        )
    }

    /// The newest archived head: the last archived event and its hash.
    async fn archived_head(&mut self) -> anyhow::Result<Option<(i64, String)>> {
        let sql =
            "SELECT through_seq, through_hash FROM audit_archive ORDER BY through_seq DESC LIMIT 1";
        Ok(on_snapshot!(self, c => sqlx::query_as(sql).fetch_optional(c).await)?)
    }
}

/// Walks the whole chain in pages (constant memory) and names the first bad sequence
/// number and the kind of damage: a gap (missing), a row out of its place (reordered), a
/// row whose content does not match its hash (changed), a row that does not link to the one
/// before it or is stored past the head (inserted), or a head that points past the last row
/// (truncated). After an archive the walk starts from the archived head.
///
/// Head and rows are read in one snapshot: writers commit a row and the head that points
/// at it together, so read apart (the head, then the rows a moment later) a healthy chain
/// under load looks like rows stored past their head, and the other way round. That
/// snapshot holds a pool connection for the whole walk, so verifies take turns (one walk at
/// a time per process, see `Store::snapshot`) and leave the other connections to writers.
pub async fn verify(store: &Store) -> anyhow::Result<VerifyReport> {
    let mut snap = store.snapshot().await?;
    let report = verify_in(&mut snap).await?;
    snap.end().await?;
    Ok(report)
}

/// How far from its own place a moved row is looked for: a row whose content hashes under
/// a sequence number this close to the one it carries was moved there (reordered).
const MOVED_WITHIN: i64 = 64;

/// The sequence number `r`'s content was sealed with, when it is not the one it carries.
fn sealed_as(r: &AuditRecord) -> Option<i64> {
    let mut probe = r.clone();
    (1..=MOVED_WITHIN)
        .flat_map(|d| [r.seq - d, r.seq + d])
        .filter(|s| *s > 0)
        .find(|s| {
            probe.seq = *s;
            probe.compute_hash() == r.hash
        })
}

async fn verify_in(snap: &mut Snapshot) -> anyhow::Result<VerifyReport> {
    let mut repairs = Vec::new();
    let mut report = walk(snap, &mut repairs).await?;
    report.repairs = repairs;
    Ok(report)
}

async fn walk(snap: &mut Snapshot, repairs: &mut Vec<RepairNote>) -> anyhow::Result<VerifyReport> {
    const PAGE: i64 = 2000;
    let (head_seq, head_hash) = snap.audit_head().await?;
    let archived = snap.archived_head().await?;
    let archived_through = archived.as_ref().map(|(s, _)| *s);
    let (mut expected_seq, mut prev_hash) = match archived {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_string()),
    };
    let mut count = 0i64;
    let bad = |seq: i64, kind: Damage, problem: String, count: i64, last: i64| VerifyReport {
        ok: false,
        events: count,
        last_seq: last,
        first_bad_seq: Some(seq),
        kind: Some(kind),
        problem: Some(problem),
        archived_through,
        repairs: Vec::new(),
        read_not_recorded: None,
    };
    loop {
        let page = snap.audit_page_after(expected_seq - 1, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for r in page {
            // The chain up to its head is whole: whatever follows was stored without
            // moving the head, the damage that blocks every later write.
            if r.seq > head_seq && expected_seq > head_seq {
                if head_hash != prev_hash {
                    return Ok(bad(
                        head_seq,
                        Damage::Changed,
                        format!("event {head_seq} does not match the chain head"),
                        count,
                        head_seq,
                    ));
                }
                return Ok(bad(
                    r.seq,
                    Damage::Inserted,
                    format!(
                        "event {} is stored past the chain head (sequence {head_seq}): it was added without moving the head; \
                         an admin moves it out with `qbo-console audit quarantine --from {}`",
                        r.seq, r.seq
                    ),
                    count,
                    r.seq,
                ));
            }
            if r.seq != expected_seq {
                return Ok(bad(
                    expected_seq,
                    Damage::Missing,
                    format!(
                        "event {expected_seq} is missing (next stored event is {})",
                        r.seq
                    ),
                    count,
                    expected_seq - 1,
                ));
            }
            if r.compute_hash() != r.hash {
                return Ok(match sealed_as(&r) {
                    // A copy of an event already checked in its own place was put here.
                    Some(was) if was < r.seq => bad(
                        r.seq,
                        Damage::Inserted,
                        format!("event {} is a copy of event {was}: it was put in the chain from elsewhere", r.seq),
                        count,
                        r.seq,
                    ),
                    Some(was) => bad(
                        r.seq,
                        Damage::Reordered,
                        format!("event {} holds event {was}: rows were reordered", r.seq),
                        count,
                        r.seq,
                    ),
                    None => bad(
                        r.seq,
                        Damage::Changed,
                        format!(
                            "event {} was altered: its content does not match its hash",
                            r.seq
                        ),
                        count,
                        r.seq,
                    ),
                });
            }
            if r.prev_hash != prev_hash {
                return Ok(bad(
                    r.seq,
                    Damage::Inserted,
                    format!(
                        "event {} does not link to event {}: it was put in the chain from elsewhere",
                        r.seq,
                        r.seq - 1
                    ),
                    count,
                    r.seq,
                ));
            }
            repairs.extend(RepairNote::of(&r));
            prev_hash = r.hash;
            expected_seq += 1;
            count += 1;
        }
    }
    let last = expected_seq - 1;
    if head_seq < last {
        return Ok(bad(
            head_seq + 1,
            Damage::Inserted,
            format!("the chain head says {head_seq} events but {last} are stored: event {} onwards was added without moving the head", head_seq + 1),
            count,
            last,
        ));
    }
    if head_seq != last {
        return Ok(bad(
            last + 1,
            Damage::Truncated,
            format!("the chain head says {head_seq} events but only {last} are stored: event {} onwards was deleted", last + 1),
            count,
            last,
        ));
    }
    if head_hash != prev_hash {
        return Ok(bad(
            last,
            Damage::Changed,
            format!("event {last} does not match the chain head"),
            count,
            last,
        ));
    }
    Ok(VerifyReport {
        ok: true,
        events: count,
        last_seq: last,
        first_bad_seq: None,
        kind: None,
        problem: None,
        archived_through,
        repairs: Vec::new(),
        read_not_recorded: None,
    })
}
