//! Taking the log out of the ops box: a slice of the chain as JSON lines or CSV, read a page
//! at a time (constant memory), with a manifest that says what the slice is and is signed
//! by the daemon's key, so whoever receives the file can prove it complete and unaltered
//! with the public key alone (`offline`).

mod cells;
mod conditions;
mod manifest;
pub mod offline;

pub use manifest::{manifest_path, signed_manifest, ExportedBy, Manifest, MANIFEST_FORMAT};
pub use qbo_core::audit::{parse_time, ExportFilter, ExportFormat};

use super::chain::AUDIT_COLUMNS;
use super::AuditRecord;
use crate::Store;
use sha2::{Digest, Sha256};

/// The columns of a CSV export, in the order of the record's fields (the order the hash
/// covers them in). `actor_kind` came last, later: an export written before it has the
/// first 20 columns only (`CSV_COLUMNS_BEFORE_ACTOR_KIND`), and still verifies.
pub const CSV_COLUMNS: [&str; 21] = [
    "seq",
    "at",
    "actor_account",
    "actor_uid",
    "actor_ssh",
    "interface",
    "role",
    "action",
    "connection_id",
    "environment",
    "realm_id",
    "tenant",
    "outcome",
    "error_class",
    "reason",
    "intuit_tid",
    "request_id",
    "fingerprints",
    "prev_hash",
    "hash",
    "actor_kind",
];

/// The header of a CSV export written before `actor_kind` was added.
pub const CSV_COLUMNS_BEFORE_ACTOR_KIND: &[&str] = CSV_COLUMNS.split_at(20).0;

/// A UTF-8 byte order mark opens a CSV export: without it, spreadsheets guess a legacy
/// encoding and garble any name outside ASCII.
pub const CSV_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Appends one record to `out` in `format`.
pub fn encode(format: ExportFormat, r: &AuditRecord, out: &mut Vec<u8>) -> anyhow::Result<()> {
    match format {
        ExportFormat::Jsonl => {
            serde_json::to_writer(&mut *out, r)?;
            out.push(b'\n');
        }
        ExportFormat::Csv => cells::write_row(r, out)?,
    }
    Ok(())
}

/// The file's first bytes (the CSV's BOM and header; nothing for JSON lines).
pub fn preamble(format: ExportFormat) -> Vec<u8> {
    match format {
        ExportFormat::Jsonl => Vec::new(),
        ExportFormat::Csv => {
            let mut out = CSV_BOM.to_vec();
            out.extend_from_slice(CSV_COLUMNS.join(",").as_bytes());
            out.extend_from_slice(b"\r\n");
            out
        }
    }
}

/// What an export has streamed so far: counted and hashed as it goes, so the manifest
/// describes exactly the bytes that left.
#[derive(Clone)]
pub struct Tally {
    pub rows: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub first_prev_hash: Option<String>,
    pub last_hash: Option<String>,
    pub bytes: u64,
    sha: Sha256,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            rows: 0,
            first_seq: None,
            last_seq: None,
            first_prev_hash: None,
            last_hash: None,
            bytes: 0,
            sha: Sha256::new(),
        }
    }
}

impl Tally {
    pub fn bytes_out(&mut self, b: &[u8]) {
        self.sha.update(b);
        self.bytes += b.len() as u64;
    }

    pub fn row(&mut self, r: &AuditRecord) {
        if self.first_seq.is_none() {
            self.first_seq = Some(r.seq);
            self.first_prev_hash = Some(r.prev_hash.clone());
        }
        self.rows += 1;
        self.last_seq = Some(r.seq);
        self.last_hash = Some(r.hash.clone());
    }

    pub fn sha256(&self) -> String {
        qbo_core::vault::hex(&self.sha.clone().finalize())
    }
}

/// Events a page: large enough that a million rows take 500 round trips, small enough that
/// a page (about 1 MB of text) is nothing to hold.
const PAGE: i64 = 2000;

/// One export in progress: pages of encoded rows, in sequence order, up to the chain head
/// as it was when the export began (later events are not part of it).
pub struct ExportStream {
    store: Store,
    pub filter: ExportFilter,
    pub format: ExportFormat,
    after_seq: i64,
    upto_seq: i64,
    started: bool,
    /// The next JSONL page, already asked of the database while the caller hashes and
    /// writes this one: the two overlap instead of taking turns.
    prefetch: Option<tokio::task::JoinHandle<anyhow::Result<Vec<String>>>>,
    done: bool,
    pub tally: Tally,
}

impl ExportStream {
    pub async fn begin(
        store: &Store,
        filter: ExportFilter,
        format: ExportFormat,
    ) -> anyhow::Result<ExportStream> {
        let upto_seq = store.audit_head_seq().await?;
        Ok(ExportStream {
            store: store.clone(),
            filter,
            format,
            after_seq: 0,
            upto_seq,
            started: false,
            prefetch: None,
            done: false,
            tally: Tally::default(),
        })
    }

    /// Only events after this sequence number (an archive continues from the last one).
    pub fn after(mut self, seq: i64) -> ExportStream {
        self.after_seq = seq;
        self
    }

    /// Only events up to this one (an archive stops at its cut).
    pub fn upto(mut self, seq: i64) -> ExportStream {
        self.upto_seq = self.upto_seq.min(seq);
        self
    }

    /// The next bytes of the file, or `None` when it is complete.
    pub async fn next_chunk(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let mut out = if self.started {
            Vec::new()
        } else {
            self.started = true;
            preamble(self.format)
        };
        match self.format {
            ExportFormat::Csv => {
                let rows = self
                    .store
                    .audit_export_page(&self.filter, self.after_seq, self.upto_seq, PAGE)
                    .await?;
                if (rows.len() as i64) < PAGE {
                    self.done = true;
                }
                for r in &rows {
                    encode(self.format, r, &mut out)?;
                    self.tally.row(r);
                }
                if let Some(last) = rows.last() {
                    self.after_seq = last.seq;
                }
            }
            ExportFormat::Jsonl => {
                let lines = match self.prefetch.take() {
                    Some(next) => next.await??,
                    None => {
                        self.store
                            .audit_export_json_page(
                                &self.filter,
                                self.after_seq,
                                self.upto_seq,
                                PAGE,
                            )
                            .await?
                    }
                };
                if (lines.len() as i64) < PAGE {
                    self.done = true;
                }
                // Only the page's ends are read back: the tally needs the first event's
                // link and the last one's hash; the rows in between are only counted.
                let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
                    return self.finish_chunk(out);
                };
                let first: AuditRecord = serde_json::from_str(first)?;
                let last: AuditRecord = serde_json::from_str(last)?;
                self.tally.row(&first);
                if lines.len() > 1 {
                    self.tally.rows += lines.len() as u64 - 2;
                    self.tally.row(&last);
                }
                self.after_seq = last.seq;
                if !self.done {
                    let (store, filter) = (self.store.clone(), self.filter.clone());
                    let (after, upto) = (self.after_seq, self.upto_seq);
                    self.prefetch = Some(tokio::spawn(async move {
                        store
                            .audit_export_json_page(&filter, after, upto, PAGE)
                            .await
                    }));
                }
                for l in &lines {
                    out.extend_from_slice(l.as_bytes());
                    out.push(b'\n');
                }
            }
        }
        self.finish_chunk(out)
    }

    fn finish_chunk(&mut self, out: Vec<u8>) -> anyhow::Result<Option<Vec<u8>>> {
        self.tally.bytes_out(&out);
        if out.is_empty() && self.done {
            return Ok(None);
        }
        Ok(Some(out))
    }
}

impl Store {
    /// The sequence number of the chain's newest event.
    pub(crate) async fn audit_head_seq(&self) -> anyhow::Result<i64> {
        let (seq,): (i64,) = crate::dispatch!(self, p => sqlx::query_as("SELECT last_seq FROM audit_head WHERE id = 1").fetch_one(p).await)?;
        Ok(seq)
    }

    /// Like `audit_export_page`, each event already as one line of JSON, built by the
    /// database: a million rows decoded field by field into records and encoded again cost
    /// several times what the database takes to write the text itself. The verifier parses
    /// each line, so the spelling (spaces, escapes) does not matter, only the values.
    async fn audit_export_json_page(
        &self,
        f: &ExportFilter,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<String>> {
        let pairs: Vec<String> = CSV_COLUMNS.iter().map(|c| format!("'{c}', {c}")).collect();
        let object = match self.backend() {
            crate::Backend::Sqlite => format!("json_object({})", pairs.join(", ")),
            crate::Backend::Postgres => {
                format!("json_build_object({})::text", pairs.join(", "))
            }
        };
        let mut sql = format!("SELECT {object} FROM audit_events WHERE seq > $1 AND seq <= $2");
        let binds = conditions::conditions(f, &mut sql, 3);
        sql.push_str(&format!(" ORDER BY seq LIMIT ${}", binds.len() + 3));
        let rows: Vec<(String,)> = crate::dispatch!(self, p => {
            let mut q = sqlx::query_as(&sql).bind(after).bind(upto);
            for b in &binds {
                q = q.bind(b);
            }
            q.bind(limit).fetch_all(p).await
        })?;
        Ok(rows.into_iter().map(|(l,)| l).collect())
    }

    /// Events after `after` up to `upto` that the filter keeps, in sequence order: a walk
    /// up the primary key that stops after `limit` rows.
    async fn audit_export_page(
        &self,
        f: &ExportFilter,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<AuditRecord>> {
        // Column names are fixed here; every value the caller gave is bound.
        let mut sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq > $1 AND seq <= $2");
        let binds = conditions::conditions(f, &mut sql, 3);
        sql.push_str(&format!(" ORDER BY seq LIMIT ${}", binds.len() + 3));
        Ok(crate::dispatch!(self, p => {
            let mut q = sqlx::query_as(&sql).bind(after).bind(upto);
            for b in &binds {
                q = q.bind(b);
            }
            q.bind(limit).fetch_all(p).await
        })?)
    }
}
