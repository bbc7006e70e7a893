//! Importing existing connections from a JSON array or a CSV file. All or nothing: every
//! row is parsed and checked first, naming the line of the first bad one; then everything
//! is written, sealed and audited in one transaction.
//!
//! An import file is read whole, so only a regular file of at most [`MAX_IMPORT_BYTES`] is
//! read: a device (`/dev/zero`) would grow without end, and a FIFO would block forever.

use super::{Engine, Status};
use chrono::{DateTime, Utc};
use qbo_core::domain::{Environment, InvalidValue, RealmId, MAX_NAME_CHARS};
use qbo_core::identity::Actor;
pub use qbo_core::reports::{ImportReport, ImportedRow};
use qbo_core::vault::{AccessToken, RefreshToken, TokenColumn};
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::NewConnection;
use serde::Deserialize;
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use zeroize::Zeroizing;

/// Largest import file accepted: 16 MiB, some 50,000 connections. Larger files are split.
/// Kept well below the daemon's request limit, which the file's text must fit in once
/// JSON-encoded (see [`MAX_IMPORT_REQUEST_BYTES`]).
pub const MAX_IMPORT_BYTES: u64 = 16 * 1024 * 1024;

/// Largest import request the CLI sends the daemon: the file's text as a JSON string, which
/// grows quotes, backslashes and control characters. Below the socket's 64 MiB request
/// limit for roles that may import, so an oversized file is named here rather than cut off
/// by the daemon.
pub const MAX_IMPORT_REQUEST_BYTES: usize = 30 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ImportError(pub String);

/// One validated row.
#[derive(Debug)]
pub struct ImportEntry {
    pub line: usize,
    pub tenant: String,
    pub realm_id: RealmId,
    pub environment: Environment,
    pub company_name: Option<String>,
    pub refresh_token: RefreshToken,
    pub access_token: Option<AccessToken>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    tenant: String,
    realm_id: String,
    environment: String,
    refresh_token: Zeroizing<String>,
    #[serde(default)]
    access_token: Option<Zeroizing<String>>,
    #[serde(default)]
    access_expires_at: Option<String>,
    #[serde(default)]
    refresh_expires_at: Option<String>,
    #[serde(default)]
    company_name: Option<String>,
}

fn too_large(file: &str, size: impl std::fmt::Display) -> ImportError {
    ImportError(format!(
        "{file} is {size} bytes; an import file may hold at most {MAX_IMPORT_BYTES} bytes (16 MiB): split it into smaller files and import each"
    ))
}

/// Reads an import file's text: a regular file only, at most [`MAX_IMPORT_BYTES`], UTF-8,
/// and small enough once encoded to travel to the daemon.
pub fn read_file(path: &Path) -> Result<String, ImportError> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.display().to_string();
    let cannot = |e: std::io::Error| ImportError(format!("cannot read {name}: {e}"));
    // Looked at before opening: opening some devices has effects of its own.
    let kind = std::fs::metadata(path).map_err(cannot)?.file_type();
    if !kind.is_file() {
        return Err(not_regular(&name, kind));
    }
    // O_NONBLOCK: if a FIFO took the file's place since, opening it does not wait for a
    // writer; the check on the open file below then refuses it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.file_type().is_file() {
        return Err(not_regular(&name, meta.file_type()));
    }
    if meta.len() > MAX_IMPORT_BYTES {
        return Err(too_large(&name, meta.len()));
    }
    // Bounded: a file that grows while being read is still cut at the limit and refused.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_IMPORT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_IMPORT_BYTES {
        return Err(too_large(&name, format!("more than {MAX_IMPORT_BYTES}")));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        ImportError(format!(
            "{name}:{line}: not UTF-8 text (bad byte at offset {at}); save the file as UTF-8"
        ))
    })?;
    let encoded = json_string_len(&text);
    if encoded > MAX_IMPORT_REQUEST_BYTES {
        return Err(ImportError(format!(
            "{name} takes {encoded} bytes once encoded for the daemon, more than the {MAX_IMPORT_REQUEST_BYTES} a request may hold (control characters and quotes count double or more): split it into smaller files and import each"
        )));
    }
    Ok(text)
}

fn not_regular(name: &str, kind: std::fs::FileType) -> ImportError {
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    ImportError(format!(
        "{name} is {what}; import reads a regular CSV or JSON file: save the data to a file first and import that"
    ))
}

/// The length of `text` as a JSON string, as serde_json writes it, without building it.
fn json_string_len(text: &str) -> usize {
    2 + text
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Parses a file's text. JSON when it starts with `[`, CSV with a header otherwise.
pub fn parse(text: &str, file: &str) -> Result<Vec<ImportEntry>, ImportError> {
    // Every interface comes through here, whatever it checked before sending.
    if text.len() as u64 > MAX_IMPORT_BYTES {
        return Err(too_large(file, text.len()));
    }
    let trimmed = text.trim_start();
    let entries = if trimmed.starts_with('[') {
        parse_json(text, file)?
    } else {
        parse_csv(text, file)?
    };
    if entries.is_empty() {
        return Err(ImportError(format!("{file}: no connections to import")));
    }
    let mut seen = HashSet::new();
    for e in &entries {
        if !seen.insert((e.environment, e.realm_id.clone())) {
            return Err(ImportError(format!(
                "{file}:{}: {} realm {} appears twice in the file",
                e.line, e.environment, e.realm_id
            )));
        }
    }
    Ok(entries)
}

fn parse_json(text: &str, file: &str) -> Result<Vec<ImportEntry>, ImportError> {
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(text).map_err(|e| {
        ImportError(format!(
            "{file}:{}: not a JSON array of objects: {}",
            e.line(),
            strip_position(&e.to_string())
        ))
    })?;
    items
        .into_iter()
        .map(|raw| {
            // The raw value borrows from `text`, so its offset gives the line it starts on.
            let offset = (raw.get().as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
            let line = text[..offset.min(text.len())].matches('\n').count() + 1;
            let row: RawRow = serde_json::from_str(raw.get()).map_err(|e| {
                ImportError(format!("{file}:{line}: {}", strip_position(&e.to_string())))
            })?;
            validate(row, line).map_err(|m| ImportError(format!("{file}:{line}: {m}")))
        })
        .collect()
}

fn parse_csv(text: &str, file: &str) -> Result<Vec<ImportEntry>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ImportError(format!("{file}:1: cannot read the CSV header: {e}")))?
        .clone();
    for required in ["tenant", "realm_id", "environment", "refresh_token"] {
        if !headers.iter().any(|h| h == required) {
            return Err(ImportError(format!(
                "{file}:1: the CSV header has no `{required}` column; expected tenant, realm_id, environment, refresh_token \
                 and optionally access_token, access_expires_at, refresh_expires_at, company_name"
            )));
        }
    }
    let mut out = Vec::new();
    let mut lines = CsvLines::new(text);
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = lines.line(e.position());
            ImportError(format!("{file}:{line}: malformed CSV record"))
        })?;
        let line = lines.line(record.position());
        let row: RawRow = record.deserialize(Some(&headers)).map_err(|e| {
            let msg = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
                _ => "malformed record".into(),
            };
            ImportError(format!("{file}:{line}: {msg}"))
        })?;
        out.push(validate(row, line).map_err(|m| ImportError(format!("{file}:{line}: {m}")))?);
    }
    Ok(out)
}

/// The line a CSV record starts on. The csv crate counts lines by LF only after it has
/// read the line ending, and with CRLF it stops at the CR, so its count is one short; the
/// byte offset is exact, once past the line endings in front of the record.
///
/// Records arrive in file order, so the count carries on from the last record instead of
/// starting again from the top: counting from the top for each record made an import
/// quadratic in its length (2,000 rows took 20 s in a debug build).
struct CsvLines<'a> {
    bytes: &'a [u8],
    counted_to: usize,
    newlines: usize,
}

impl<'a> CsvLines<'a> {
    fn new(text: &'a str) -> Self {
        CsvLines {
            bytes: text.as_bytes(),
            counted_to: 0,
            newlines: 0,
        }
    }

    fn line(&mut self, pos: Option<&csv::Position>) -> usize {
        let Some(p) = pos else { return 0 };
        let bytes = self.bytes;
        let mut at = (p.byte() as usize).min(bytes.len());
        while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        if at < self.counted_to {
            // Not expected (the reader only goes forward), but stay exact if it happens.
            self.counted_to = 0;
            self.newlines = 0;
        }
        self.newlines += bytes[self.counted_to..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.counted_to = at;
        self.newlines + 1
    }
}

/// A name may carry any text (it is escaped wherever it is shown) but NUL, which
/// PostgreSQL cannot store and which no name has a use for.
fn check_name(key: &str, v: &str) -> Result<(), String> {
    if v.contains('\0') {
        return Err(format!(
            "{key} contains a NUL character; remove it from the file"
        ));
    }
    let n = v.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(format!(
            "{key} is {n} characters; at most {MAX_NAME_CHARS} are accepted: shorten it in the file"
        ));
    }
    Ok(())
}

/// A token is one line of printable text; a line break inside means the file is broken
/// (a field that swallowed the next line), and would be sent to Intuit as is.
fn check_token(key: &str, v: &str) -> Result<(), String> {
    if v.contains(['\r', '\n']) {
        return Err(format!(
            "{key} contains a line break (CR or LF); a token is a single line: fix the quoting in the file"
        ));
    }
    if v.contains(char::is_control) {
        return Err(format!(
            "{key} contains a control character; a token is printable text: copy it again from its source"
        ));
    }
    Ok(())
}

fn validate(row: RawRow, line: usize) -> Result<ImportEntry, String> {
    let tenant = row.tenant.trim().to_string();
    if tenant.is_empty() {
        return Err(format!(
            "tenant is empty; give 1 to {MAX_NAME_CHARS} characters"
        ));
    }
    check_name("tenant", &tenant)?;
    let company_name = row
        .company_name
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(c) = &company_name {
        check_name("company_name", c)?;
    }
    check_token("refresh_token", row.refresh_token.trim())?;
    if let Some(a) = &row.access_token {
        check_token("access_token", a.trim())?;
    }
    let realm_id = RealmId::parse(&row.realm_id).map_err(|e| e.0)?;
    let environment: Environment = row.environment.parse().map_err(|e: InvalidValue| e.0)?;
    let refresh_token =
        RefreshToken::new(row.refresh_token.trim()).map_err(|e| format!("refresh_token: {e}"))?;
    let access_token = match row
        .access_token
        .as_ref()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        Some(t) => Some(AccessToken::new(t).map_err(|e| format!("access_token: {e}"))?),
        None => None,
    };
    let time = |v: Option<String>, key: &str| -> Result<Option<DateTime<Utc>>, String> {
        match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| {
                    format!("{key} {s:?} is not an RFC 3339 time such as 2026-11-23T14:00:00Z")
                }),
        }
    };
    let access_expires_at = time(row.access_expires_at, "access_expires_at")?;
    let refresh_expires_at = time(row.refresh_expires_at, "refresh_expires_at")?;
    if access_expires_at.is_some() && access_token.is_none() {
        return Err("access_expires_at is given without access_token".into());
    }
    Ok(ImportEntry {
        line,
        tenant,
        realm_id,
        environment,
        company_name,
        refresh_token,
        access_token,
        access_expires_at,
        refresh_expires_at,
    })
}

/// serde_json appends " at line L column C" relative to the fragment; the caller already
/// names the line in the file.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

impl Engine {
    pub async fn import(
        &self,
        entries: Vec<ImportEntry>,
        update: bool,
        actor: &Actor,
        file: &str,
    ) -> anyhow::Result<ImportReport> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let mut report = ImportReport {
            created: 0,
            updated: 0,
            rows: Vec::new(),
        };
        for e in entries {
            let existing = tx.find_by_realm(e.environment, e.realm_id.as_str()).await?;
            let new = NewConnection {
                tenant: e.tenant.clone(),
                realm_id: e.realm_id.clone(),
                environment: e.environment,
                company_name: e.company_name.clone(),
                scopes: "com.intuit.quickbooks.accounting".into(),
                status: Status::Active,
                access_expires_at: e.access_token.as_ref().and(e.access_expires_at),
                refresh_issued_at: None,
                refresh_expires_at: e.refresh_expires_at,
            };
            let (id, action) = match existing {
                Some(rec) if update => {
                    tx.update_imported(rec.id, &new, now).await?;
                    (rec.id, "updated")
                }
                Some(rec) => {
                    return Err(ImportError(format!(
                        "{file}:{}: {} realm {} already exists as tenant {:?}; nothing was imported (use --update to replace its tokens)",
                        e.line, e.environment, e.realm_id, rec.tenant
                    ))
                    .into())
                }
                None => (tx.insert_connection(&new, now).await?, "created"),
            };
            let access = e
                .access_token
                .as_ref()
                .map(|t| self.vault.seal(id, TokenColumn::Access, t.expose()));
            let refresh = self
                .vault
                .seal(id, TokenColumn::Refresh, e.refresh_token.expose());
            tx.set_sealed(id, access.as_deref(), &refresh).await?;
            let mut ev = AuditEvent::new(now, actor, Action::Import, Outcome::Ok)
                .target(id, e.environment.as_str(), e.realm_id.as_str(), &e.tenant)
                .fingerprint("refresh", self.vault.fingerprint(e.refresh_token.expose()));
            if let Some(a) = &e.access_token {
                ev = ev.fingerprint("access", self.vault.fingerprint(a.expose()));
            }
            ev.reason = Some(format!("{action} from {file} line {}", e.line));
            self.audit(&mut tx, &ev).await?;
            if action == "created" {
                report.created += 1;
            } else {
                report.updated += 1;
            }
            report.rows.push(ImportedRow {
                line: e.line,
                connection_id: id,
                tenant: e.tenant,
                realm_id: e.realm_id.to_string(),
                environment: e.environment,
                action: action.to_string(),
            });
        }
        // Each row's event was appended as it was written.
        self.commit_audited(tx, &[]).await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_name_the_bad_line() {
        let csv = "tenant,realm_id,environment,refresh_token\nacme,123,sandbox,RT1-a\nbeta,12x,sandbox,RT1-b\n";
        let e = parse(csv, "f.csv").unwrap_err().0;
        assert!(e.starts_with("f.csv:3: invalid realm id"), "{e}");
        let json = "[\n {\"tenant\":\"a\",\"realm_id\":\"1\",\"environment\":\"sandbox\",\"refresh_token\":\"RT1-a\"},\n {\"tenant\":\"b\",\"realm_id\":\"2\",\"environment\":\"prod\",\"refresh_token\":\"RT1-b\"}\n]";
        let e = parse(json, "f.json").unwrap_err().0;
        assert!(e.starts_with("f.json:3: unknown environment"), "{e}");
    }

    #[test]
    fn errors_never_quote_tokens() {
        let csv = "tenant,realm_id,environment,refresh_token,access_token\nacme,123,sandbox,RT1-secret-value,\n";
        assert!(parse(csv, "f").is_ok());
        let long = format!(
            "tenant,realm_id,environment,refresh_token\nacme,123,sandbox,{}\n",
            "s".repeat(5000)
        );
        let e = parse(&long, "f").unwrap_err().0;
        assert!(!e.contains("sss"), "{e}");
        assert!(e.contains("f:2: refresh_token"), "{e}");
    }

    #[test]
    fn crlf_files_name_the_same_lines_as_lf_files() {
        let lf = "tenant,realm_id,environment,refresh_token\nacme,123,sandbox,RT1-a\n\nbeta,12x,sandbox,RT1-b\n";
        let crlf = lf.replace('\n', "\r\n");
        for text in [lf, crlf.as_str()] {
            let e = parse(text, "f.csv").unwrap_err().0;
            assert!(e.starts_with("f.csv:4: invalid realm id"), "{e}");
        }
        let ok = "tenant,realm_id,environment,refresh_token\r\nacme,123,sandbox,RT1-a\r\nbeta,124,sandbox,RT1-b\r\n";
        let lines: Vec<usize> = parse(ok, "f").unwrap().iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3]);
        let json = "[\r\n {\"tenant\":\"a\",\"realm_id\":\"1\",\"environment\":\"sandbox\",\"refresh_token\":\"RT1-a\"},\r\n {\"tenant\":\"b\",\"realm_id\":\"2\",\"environment\":\"prod\",\"refresh_token\":\"RT1-b\"}\r\n]";
        let e = parse(json, "f.json").unwrap_err().0;
        assert!(e.starts_with("f.json:3: unknown environment"), "{e}");
    }

    #[test]
    fn nul_in_a_name_is_refused_naming_the_line() {
        let tenant = "tenant,realm_id,environment,refresh_token\nac\0me,123,sandbox,RT1-a\n";
        let e = parse(tenant, "f").unwrap_err().0;
        assert!(e.starts_with("f:2: tenant contains a NUL character"), "{e}");
        let company = "[{\"tenant\":\"a\",\"realm_id\":\"1\",\"environment\":\"sandbox\",\"refresh_token\":\"RT1-a\",\"company_name\":\"x\\u0000y\"}]";
        let e = parse(company, "f").unwrap_err().0;
        assert!(
            e.starts_with("f:1: company_name contains a NUL character"),
            "{e}"
        );
    }

    #[test]
    fn other_controls_in_names_are_kept_for_escaping_on_output() {
        let csv = "tenant,realm_id,environment,refresh_token,company_name\n\"a\x1b[2J\rb\u{202e}\",123,sandbox,RT1-a,\"c\x1b]0;t\x07\"\n";
        let e = &parse(csv, "f").unwrap()[0];
        assert_eq!(e.tenant, "a\x1b[2J\rb\u{202e}");
        assert_eq!(e.company_name.as_deref(), Some("c\x1b]0;t\x07"));
    }

    #[test]
    fn names_longer_than_the_cap_are_refused() {
        let at_cap = "é".repeat(MAX_NAME_CHARS);
        let over = "é".repeat(MAX_NAME_CHARS + 1);
        let row = |t: &str, c: &str| {
            format!("tenant,realm_id,environment,refresh_token,company_name\n{t},123,sandbox,RT1-a,{c}\n")
        };
        assert!(parse(&row(&at_cap, &at_cap), "f").is_ok());
        let e = parse(&row(&over, "c"), "f").unwrap_err().0;
        assert!(
            e.starts_with("f:2: tenant is 201 characters; at most 200"),
            "{e}"
        );
        let e = parse(&row("t", &"n".repeat(1_000_000)), "f").unwrap_err().0;
        assert!(
            e.starts_with("f:2: company_name is 1000000 characters"),
            "{e}"
        );
    }

    #[test]
    fn line_breaks_in_tokens_are_refused_without_quoting_the_token() {
        for (col, value) in [
            ("refresh_token", "\"RT1-secret\nmore\""),
            ("refresh_token", "\"RT1-secret\rmore\""),
            ("access_token", "\"AT-secret\r\nmore\""),
        ] {
            let (rt, at) = if col == "refresh_token" {
                (value, "")
            } else {
                ("RT1-a", value)
            };
            let csv = format!(
                "tenant,realm_id,environment,refresh_token,access_token\nacme,123,sandbox,{rt},{at}\n"
            );
            let e = parse(&csv, "f").unwrap_err().0;
            assert!(
                e.starts_with(&format!("f:2: {col} contains a line break")),
                "{e}"
            );
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn only_a_regular_file_within_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Would block forever if the FIFO were opened for a plain read.
        let e = read_file(&fifo).unwrap_err().0;
        assert!(
            e.contains("is a FIFO (named pipe); import reads a regular"),
            "{e}"
        );
        let e = read_file(Path::new("/dev/zero")).unwrap_err().0;
        assert!(e.contains("/dev/zero is a device"), "{e}");
        let e = read_file(dir.path()).unwrap_err().0;
        assert!(e.contains("is a directory"), "{e}");
        let big = dir.path().join("big.csv");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_IMPORT_BYTES + 1).unwrap();
        let e = read_file(&big).unwrap_err().0;
        assert!(
            e.contains("at most 16777216 bytes (16 MiB): split it"),
            "{e}"
        );
        let ok = dir.path().join("ok.csv");
        std::fs::write(&ok, "tenant\n").unwrap();
        assert_eq!(read_file(&ok).unwrap(), "tenant\n");
        let e = parse(&" ".repeat(MAX_IMPORT_BYTES as usize + 1), "t")
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("t is 16777217 bytes; an import file may hold at most"),
            "{e}"
        );
    }

    #[test]
    fn a_file_too_large_once_encoded_for_the_daemon_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // 6 MiB of ESC: within the file limit, but six times that as a JSON string.
        let f = dir.path().join("esc.csv");
        std::fs::write(&f, "\x1b".repeat(6 * 1024 * 1024)).unwrap();
        let e = read_file(&f).unwrap_err().0;
        assert!(e.contains("once encoded for the daemon"), "{e}");
        for s in ["plain", "q\"b\\n\nr\rt\tx\x08\x0c", "\x1b\x00\u{202e}é"] {
            assert_eq!(json_string_len(s), serde_json::to_string(s).unwrap().len());
        }
    }

    #[test]
    fn duplicate_pairs_in_one_file_are_refused() {
        let csv =
            "tenant,realm_id,environment,refresh_token\na,1,sandbox,RT1-a\nb,1,sandbox,RT1-b\n";
        assert!(parse(csv, "f").unwrap_err().0.contains("f:3"));
    }
}
