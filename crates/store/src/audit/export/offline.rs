//! Checking an export with nothing but the file, its manifest and (ideally) the public
//! key: no configuration, no database. One pass over the file, in constant memory (a few
//! dozen rows of look-ahead to tell a reordered row from a missing one).

use super::cells;
use super::manifest::signed_by;
use super::manifest::{manifest_path, Manifest};
use super::{ExportFormat, CSV_BOM, CSV_COLUMNS, CSV_COLUMNS_BEFORE_ACTOR_KIND};
use crate::audit::quarantine::RepairNote;
use crate::audit::{AuditRecord, Damage};
use crate::InputError;
pub use qbo_core::audit::FileReport;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// How far ahead a row that is not in its place is looked for.
const LOOK_AHEAD: usize = 64;

/// Hashes every byte read through it.
struct Hashing<R> {
    inner: R,
    sha: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

type Item = (u64, Result<AuditRecord, InputError>);

enum Source {
    Jsonl {
        reader: BufReader<Hashing<std::fs::File>>,
        line: u64,
    },
    Csv {
        records: csv::StringRecordsIntoIter<Hashing<std::fs::File>>,
        line: u64,
        /// Cells a row: 20 in a file written before `actor_kind`, 21 since.
        columns: usize,
    },
}

impl Source {
    fn next(&mut self) -> std::io::Result<Option<Item>> {
        match self {
            Source::Jsonl { reader, line } => {
                let mut text = String::new();
                if reader.read_line(&mut text)? == 0 {
                    return Ok(None);
                }
                *line += 1;
                let parsed = serde_json::from_str::<AuditRecord>(text.trim_end_matches('\n'))
                    .map_err(|e| InputError(e.to_string()));
                Ok(Some((*line, parsed)))
            }
            Source::Csv {
                records,
                line,
                columns,
            } => match records.next() {
                None => Ok(None),
                Some(Ok(rec)) => {
                    *line += 1;
                    let at = rec.position().map_or(*line, |p| p.line());
                    Ok(Some((at, cells::read_row(&rec, *columns))))
                }
                Some(Err(e)) => {
                    *line += 1;
                    Ok(Some((*line, Err(InputError(e.to_string())))))
                }
            },
        }
    }

    /// Reads what is left and gives the file's hash and size.
    fn finish(self) -> std::io::Result<(String, u64)> {
        let mut h = match self {
            Source::Jsonl { reader, .. } => reader.into_inner(),
            Source::Csv { records, .. } => records.into_reader().into_inner(),
        };
        std::io::copy(&mut h, &mut std::io::sink())?;
        Ok((qbo_core::vault::hex(&h.sha.finalize()), h.bytes))
    }
}

/// The rows of a file with a little look-ahead.
struct Rows {
    source: Source,
    ahead: VecDeque<Item>,
}

impl Rows {
    fn next(&mut self) -> std::io::Result<Option<Item>> {
        match self.ahead.pop_front() {
            Some(i) => Ok(Some(i)),
            None => self.source.next(),
        }
    }

    /// Whether an event with `seq` comes within the next `LOOK_AHEAD` rows.
    fn comes_soon(&mut self, seq: i64) -> std::io::Result<bool> {
        while self.ahead.len() < LOOK_AHEAD {
            match self.source.next()? {
                Some(i) => self.ahead.push_back(i),
                None => break,
            }
        }
        Ok(self
            .ahead
            .iter()
            .any(|(_, r)| r.as_ref().is_ok_and(|r| r.seq == seq)))
    }
}

fn open(path: &Path, format: ExportFormat) -> Result<Source, InputError> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read the export {}: {e}", path.display()))?;
    let hashing = Hashing {
        inner: file,
        sha: Sha256::new(),
        bytes: 0,
    };
    Ok(match format {
        ExportFormat::Jsonl => Source::Jsonl {
            reader: BufReader::with_capacity(1 << 20, hashing),
            line: 0,
        },
        ExportFormat::Csv => {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .from_reader(hashing);
            let header = rdr
                .byte_headers()
                .map_err(|e| format!("{}: the CSV header cannot be read: {e}", path.display()))?
                .clone();
            let names: Vec<String> = header
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let h = if i == 0 {
                        h.strip_prefix(CSV_BOM).unwrap_or(h)
                    } else {
                        h
                    };
                    String::from_utf8_lossy(h).into_owned()
                })
                .collect();
            if names != CSV_COLUMNS && names != CSV_COLUMNS_BEFORE_ACTOR_KIND {
                return Err(InputError::from(format!(
                    "{}: the CSV header is not an audit export's ({}); expected {}",
                    path.display(),
                    names.join(","),
                    CSV_COLUMNS.join(",")
                )));
            }
            Source::Csv {
                columns: names.len(),
                records: rdr.into_records(),
                line: 1,
            }
        }
    })
}

/// Reads `FILE.manifest.json`; the error says what is wrong and how to get a good one.
pub fn read_manifest(file: &Path) -> Result<Manifest, InputError> {
    let mp = manifest_path(file);
    let text = std::fs::read_to_string(&mp).map_err(|e| {
        format!(
            "cannot read the manifest {} ({e}); an export's manifest lies beside it as FILE.manifest.json",
            mp.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "the manifest {} is not an audit export manifest ({e}); use the one written with the export",
            mp.display()
        )
        .into()
    })
}

/// Checks `file` against its manifest and signature, and (for a contiguous export) its
/// chain. `Err` when the check cannot run at all (no file, no manifest, a bad key).
pub fn verify_export(file: &Path, pubkey: Option<&str>) -> Result<FileReport, InputError> {
    let m = read_manifest(file)?;
    let given = match pubkey {
        Some(k) => Some(crate::audit::signing::canonical_public_key(&resolve_key(
            k,
        )?)?),
        None => None,
    };
    let mut report = FileReport {
        ok: false,
        file: file.display().to_string(),
        rows: m.rows,
        first_seq: m.first_seq,
        last_seq: m.last_seq,
        contiguous: m.contiguous,
        public_key: m.public_key.clone(),
        key_given: given.is_some(),
        first_bad_seq: None,
        kind: None,
        problem: None,
        repairs: Vec::new(),
    };
    let signer = given.clone().unwrap_or_else(|| m.public_key.clone());
    let same_key =
        crate::audit::signing::canonical_public_key(&m.public_key).is_ok_and(|k| k == signer);
    if !same_key || !signed_by(&m, &signer) {
        report.kind = Some(Damage::NotSigned);
        report.problem = Some(format!(
            "the manifest is not signed by {signer}: it was changed or signed with another key; trust nothing in it"
        ));
        return Ok(report);
    }
    let mut rows = Rows {
        source: open(file, m.file_format)?,
        ahead: VecDeque::new(),
    };
    let io = |e: std::io::Error| format!("cannot read the export {}: {e}", file.display());
    let damage = if m.contiguous {
        walk_contiguous(&m, &mut rows, &mut report.repairs).map_err(io)?
    } else {
        walk_picked(&m, &mut rows, &mut report.repairs).map_err(io)?
    };
    if let Some((seq, kind, problem)) = damage {
        report.first_bad_seq = seq;
        report.kind = Some(kind);
        report.problem = Some(problem);
        return Ok(report);
    }
    let (sha, bytes) = rows.source.finish().map_err(io)?;
    if sha != m.sha256 || bytes != m.bytes {
        report.kind = Some(Damage::HashMismatch);
        report.problem = Some(format!(
            "the file's SHA-256 is {sha} ({bytes} bytes) but the manifest records {} ({} bytes): this is not the file the manifest describes",
            m.sha256, m.bytes
        ));
        return Ok(report);
    }
    report.ok = true;
    Ok(report)
}

/// `--pubkey` takes the key itself or a file holding it.
fn resolve_key(k: &str) -> Result<String, InputError> {
    let p = Path::new(k);
    if !k.starts_with("ed25519:") && p.is_file() {
        return std::fs::read_to_string(p)
            .map_err(|e| InputError(format!("--pubkey: cannot read {}: {e}", p.display())));
    }
    Ok(k.to_string())
}

type Found = Option<(Option<i64>, Damage, String)>;

fn walk_contiguous(
    m: &Manifest,
    rows: &mut Rows,
    repairs: &mut Vec<RepairNote>,
) -> std::io::Result<Found> {
    let mut expected = m.first_seq.unwrap_or(1);
    let mut prev = m.first_prev_hash.clone();
    let last = m.last_seq.unwrap_or(expected - 1);
    let mut count = 0u64;
    let bad = |seq: i64, kind: Damage, why: String| Ok(Some((Some(seq), kind, why)));
    while let Some((line, item)) = rows.next()? {
        let r = match item {
            Ok(r) => r,
            Err(why) => {
                return bad(
                    expected,
                    Damage::Changed,
                    format!("line {line}, where event {expected} belongs, is not an event ({why})"),
                )
            }
        };
        if r.seq == expected && expected > last {
            return bad(
                r.seq,
                Damage::Inserted,
                format!("event {} is past the manifest's last event {last}", r.seq),
            );
        }
        if r.seq == expected {
            if r.compute_hash() != r.hash {
                return bad(
                    r.seq,
                    Damage::Changed,
                    format!(
                        "event {} (line {line}) was altered: its content does not match its hash",
                        r.seq
                    ),
                );
            }
            if Some(&r.prev_hash) != prev.as_ref() {
                return bad(
                    r.seq,
                    Damage::Inserted,
                    format!("event {} (line {line}) does not link to the event before it: it was put there from elsewhere", r.seq),
                );
            }
            repairs.extend(RepairNote::of(&r));
            prev = Some(r.hash);
            expected += 1;
            count += 1;
            continue;
        }
        if r.seq < expected {
            return bad(
                expected,
                Damage::Inserted,
                format!(
                    "line {line} holds a row claiming sequence {} where event {expected} belongs",
                    r.seq
                ),
            );
        }
        if rows.comes_soon(expected)? {
            let genuine = r.compute_hash() == r.hash && r.seq <= last;
            return if genuine {
                bad(
                    expected,
                    Damage::Reordered,
                    format!(
                        "event {} (line {line}) comes before event {expected}: rows were reordered",
                        r.seq
                    ),
                )
            } else {
                bad(
                    expected,
                    Damage::Inserted,
                    format!(
                        "line {line} holds a row claiming sequence {} before event {expected}",
                        r.seq
                    ),
                )
            };
        }
        return bad(
            expected,
            Damage::Missing,
            format!(
                "event {expected} is missing (line {line} holds event {})",
                r.seq
            ),
        );
    }
    if count < m.rows || (m.rows > 0 && expected - 1 < last) {
        return bad(
            expected,
            Damage::Truncated,
            format!(
                "the file ends after {count} of the manifest's {} events: event {expected} onwards is cut off",
                m.rows
            ),
        );
    }
    if prev != m.last_hash {
        return bad(
            expected - 1,
            Damage::Changed,
            format!(
                "event {} does not end the chain the manifest records",
                expected - 1
            ),
        );
    }
    Ok(None)
}

fn walk_picked(
    m: &Manifest,
    rows: &mut Rows,
    repairs: &mut Vec<RepairNote>,
) -> std::io::Result<Found> {
    let mut last: Option<i64> = None;
    let mut count = 0u64;
    let bad = |seq: Option<i64>, kind: Damage, why: String| Ok(Some((seq, kind, why)));
    while let Some((line, item)) = rows.next()? {
        let r = match item {
            Ok(r) => r,
            Err(why) => {
                let at = last.map(|l| l + 1).or(m.first_seq);
                return bad(
                    at,
                    Damage::Changed,
                    format!("line {line} is not an event ({why})"),
                );
            }
        };
        if r.compute_hash() != r.hash {
            return bad(
                Some(r.seq),
                Damage::Changed,
                format!(
                    "event {} (line {line}) was altered: its content does not match its hash",
                    r.seq
                ),
            );
        }
        match last {
            Some(l) if r.seq == l => {
                return bad(
                    Some(r.seq),
                    Damage::Inserted,
                    format!("event {} appears twice (line {line})", r.seq),
                )
            }
            Some(l) if r.seq < l => {
                return bad(
                    Some(r.seq),
                    Damage::Reordered,
                    format!(
                        "event {} (line {line}) comes after event {l}: rows were reordered",
                        r.seq
                    ),
                )
            }
            _ => {}
        }
        if count == 0 && Some(r.seq) != m.first_seq {
            return match m.first_seq {
                Some(f) if r.seq > f => bad(
                    Some(f),
                    Damage::Missing,
                    format!("the manifest's first event {f} is missing"),
                ),
                _ => bad(
                    Some(r.seq),
                    Damage::Inserted,
                    format!(
                        "event {} (line {line}) is before the manifest's first event",
                        r.seq
                    ),
                ),
            };
        }
        if m.last_seq.is_none_or(|l| r.seq > l) {
            return bad(
                Some(r.seq),
                Damage::Inserted,
                format!(
                    "event {} (line {line}) is past the manifest's last event",
                    r.seq
                ),
            );
        }
        repairs.extend(RepairNote::of(&r));
        last = Some(r.seq);
        count += 1;
    }
    if last != m.last_seq {
        let at = last.map(|l| l + 1).or(m.first_seq);
        return bad(
            at,
            Damage::Truncated,
            format!(
                "the file ends after {count} of the manifest's {} events, before its last event {}",
                m.rows,
                m.last_seq.unwrap_or(0)
            ),
        );
    }
    if count != m.rows {
        return bad(None, Damage::Missing, format!(
            "the file holds {count} events but the manifest counts {}; a filtered export does not link its rows, so which is missing cannot be said",
            m.rows
        ));
    }
    Ok(None)
}
