//! `import FILE`: a file of any size, checked whole and then written in batches by the
//! service, with a progress line on stderr for the long ones.

use super::args::ImportArgs;
use super::{exit, print_json, render, Failure};
use qbo_core::text::thousands;
use qbo_service::{Client, ImportFile, ImportPass, ImportProgress};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Nothing is said for an import shorter than this.
const QUIET_FOR: Duration = Duration::from_secs(2);

/// Checked before a database is opened or the daemon asked: a path that is no regular file
/// leaves nothing behind. Returns the file's size, for the time left.
pub fn check(a: &ImportArgs) -> Result<u64, Failure> {
    if a.from_line == 0 {
        return Err(Failure {
            code: exit::BAD_INPUT,
            message: "--from-line counts from 1, the file's first line".into(),
        });
    }
    let (_, size) = qbo_service::open_import_file(&a.file).map_err(|e| Failure {
        code: exit::BAD_INPUT,
        message: e.to_string(),
    })?;
    Ok(size)
}

pub async fn run(client: &dyn Client, a: ImportArgs, size: u64) -> Result<u8, Failure> {
    let file = ImportFile {
        path: a.file.clone(),
        update: a.update,
        from_line: a.from_line,
    };
    let (tx, rx) = watch::channel(None);
    let tty = std::io::stderr().is_terminal();
    let line = tokio::spawn(progress_line(rx, size, tty));
    let report = client.import_file(&file, &tx).await;
    drop(tx);
    let said = line.await.unwrap_or(false);
    if said && tty {
        // The progress line gives its place to the result.
        eprint!("\r\x1b[K");
    }
    let report = report?;
    if a.json {
        print_json(&report)?;
    } else {
        println!("{}", render::import_report(&report));
    }
    Ok(exit::OK)
}

/// Prints how far the import has got, once a second on a terminal (one line, rewritten),
/// every ten seconds otherwise (plain lines, for logs). Returns whether it said anything.
async fn progress_line(
    mut rx: watch::Receiver<Option<ImportProgress>>,
    size: u64,
    tty: bool,
) -> bool {
    let start = Instant::now();
    let every = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    let mut said = false;
    let mut next = start + QUIET_FOR;
    let mut pass_start: Option<(ImportPass, Instant)> = None;
    loop {
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return said },
            _ = tokio::time::sleep_until(next.into()) => {}
        }
        let Some(p) = *rx.borrow_and_update() else {
            continue;
        };
        let now = Instant::now();
        // Each reading's rate is its own: the check goes faster than the writing.
        let since = match pass_start {
            Some((pass, at)) if pass == p.pass => at,
            _ => {
                pass_start = Some((p.pass, now));
                now
            }
        };
        if now < next {
            continue;
        }
        next = now + every;
        let text = describe(&p, size, now.duration_since(since));
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r\x1b[K{text}")
        } else {
            writeln!(err, "{text}")
        };
        let _ = err.flush();
        said = true;
    }
}

/// "import: writing: 412,000 rows, 38,000 rows/s, 52% of the file, about 12 s left".
fn describe(p: &ImportProgress, size: u64, in_pass: Duration) -> String {
    let what = match p.pass {
        ImportPass::Check => "checking every row",
        ImportPass::Write => "writing",
    };
    let secs = in_pass.as_secs_f64();
    let mut s = format!("import: {what}: {} rows", thousands(p.rows));
    if secs >= 1.0 {
        s.push_str(&format!(
            ", {} rows/s",
            thousands((p.rows as f64 / secs) as u64)
        ));
    }
    if size > 0 {
        let share = (p.bytes as f64 / size as f64).min(1.0);
        s.push_str(&format!(", {:.0}% of the file", share * 100.0));
        if share > 0.0 && secs >= 1.0 {
            let left = secs * (1.0 - share) / share;
            let after = match p.pass {
                ImportPass::Check => " (then the writing)",
                ImportPass::Write => "",
            };
            s.push_str(&format!(
                ", about {} left{after}",
                qbo_core::present::duration(Duration::from_secs(left.ceil() as u64))
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_says_rows_rate_share_and_time_left() {
        let p = ImportProgress {
            pass: ImportPass::Write,
            rows: 412_000,
            bytes: 50,
        };
        assert_eq!(
            describe(&p, 100, Duration::from_secs(10)),
            "import: writing: 412,000 rows, 41,200 rows/s, 50% of the file, about 10s left"
        );
        let early = ImportProgress {
            pass: ImportPass::Check,
            rows: 999,
            bytes: 0,
        };
        assert_eq!(
            describe(&early, 100, Duration::from_millis(300)),
            "import: checking every row: 999 rows, 0% of the file"
        );
    }
}
