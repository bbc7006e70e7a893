//! Importing existing connections from a JSON array or a CSV file of any size.
//!
//! The guarantee, which scales where one transaction would not: the whole file is read and
//! checked first (every row valid, no pair twice, none that exists already unless
//! `--update`), naming the line of the first bad row, and nothing is written; then it is
//! read again and written in batches of [`BATCH_ROWS`], each batch with its audit events in
//! one transaction. A failure while writing (the database, a connection made meanwhile by
//! someone else, a file changed between the two readings) names the last line written, and
//! `--from-line` goes on from there.
//!
//! Only a regular file is read: a device (`/dev/zero`) would grow without end, and a FIFO
//! could not be read twice.

mod file;
mod read;
mod rows;
mod run;

pub use file::open_file;
pub use qbo_core::reports::{ImportPass, ImportProgress, ImportReport, ImportTally};
pub use read::{read_rows, ReadError, SeenRealms};
pub use run::{ImportFailure, ImportPlan, PassFeed};

use chrono::{DateTime, Utc};
use qbo_core::domain::{Environment, RealmId};
use qbo_core::vault::{AccessToken, RefreshToken};

/// Rows written per transaction: large enough that a million rows take a thousand
/// commits, small enough that the scheduler's writes never wait long behind one.
pub const BATCH_ROWS: usize = 1_000;

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

#[cfg(test)]
mod tests {
    use super::*;
    use qbo_core::domain::MAX_NAME_CHARS;
    use std::path::Path;

    /// Every row of `text`, read in pieces of `piece` bytes (the reader must not care).
    fn parse_in(text: &str, file: &str, piece: usize) -> Result<Vec<ImportEntry>, ImportError> {
        struct Trickle<'a>(&'a [u8], usize);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(self.1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        let mut seen = SeenRealms::default();
        read_rows(
            Trickle(text.as_bytes(), piece),
            file,
            1,
            Some(&mut seen),
            |e| {
                out.push(e);
                Ok(())
            },
        )
        .map_err(|e| match e {
            ReadError::Bad(e) => e,
            ReadError::Stopped => unreachable!("nobody stops taking rows here"),
        })?;
        Ok(out)
    }

    /// Read whole, and a byte at a time: both must say the same.
    fn parse(text: &str, file: &str) -> Result<Vec<ImportEntry>, ImportError> {
        let whole = parse_in(text, file, usize::MAX);
        let trickled = parse_in(text, file, 1);
        match (&whole, &trickled) {
            (Ok(a), Ok(b)) => assert_eq!(
                a.iter().map(|e| e.line).collect::<Vec<_>>(),
                b.iter().map(|e| e.line).collect::<Vec<_>>()
            ),
            (Err(a), Err(b)) => assert_eq!(a.0, b.0),
            _ => panic!("read whole: {whole:?}; a byte at a time: {trickled:?}"),
        }
        whole
    }

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
    fn only_a_regular_file_is_read_and_of_any_size() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Would block forever if the FIFO were opened for a plain read.
        let e = open_file(&fifo).unwrap_err().0;
        assert!(
            e.contains("is a FIFO (named pipe); import reads a regular"),
            "{e}"
        );
        let e = open_file(Path::new("/dev/zero")).unwrap_err().0;
        assert!(e.contains("/dev/zero is a device"), "{e}");
        let e = open_file(dir.path()).unwrap_err().0;
        assert!(e.contains("is a directory"), "{e}");
        // Sparse: larger than the old 16 MiB cap without taking the disk.
        let big = dir.path().join("big.csv");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(64 << 20).unwrap();
        assert_eq!(open_file(&big).unwrap().1, 64 << 20);
    }

    #[test]
    fn rows_before_from_line_are_left_alone_unchecked() {
        let csv = "tenant,realm_id,environment,refresh_token\nbad,12x,sandbox,RT1-a\nok,124,sandbox,RT1-b\n";
        let mut lines = Vec::new();
        read_rows(csv.as_bytes(), "f", 3, None, |e| {
            lines.push(e.line);
            Ok(())
        })
        .unwrap();
        assert_eq!(lines, [3]);
    }

    #[test]
    fn a_byte_order_mark_and_leading_blank_lines_are_skipped_and_counted() {
        let csv = "\u{feff}\n\ntenant,realm_id,environment,refresh_token\nacme,12x,sandbox,RT1-a\n";
        let e = parse(csv, "f").unwrap_err().0;
        assert!(e.starts_with("f:4: invalid realm id"), "{e}");
        let json = "\n [\n{\"tenant\":\"a\",\"realm_id\":\"1\",\"environment\":\"prod\",\"refresh_token\":\"RT1-a\"}]";
        let e = parse(json, "f").unwrap_err().0;
        assert!(e.starts_with("f:3: unknown environment"), "{e}");
        let broken = "[\n{\"tenant\":\"a\",\n\"realm_id\" \"1\"}]";
        let e = parse(broken, "f").unwrap_err().0;
        assert!(e.starts_with("f:3: not a JSON array of objects"), "{e}");
        assert!(parse("  \n ", "f")
            .unwrap_err()
            .0
            .contains("no connections"));
    }

    #[test]
    fn duplicate_pairs_in_one_file_are_refused() {
        let csv =
            "tenant,realm_id,environment,refresh_token\na,1,sandbox,RT1-a\nb,1,sandbox,RT1-b\n";
        assert!(parse(csv, "f").unwrap_err().0.contains("f:3"));
    }
}
