//! Importing connections from a file of any size: authorized once, then read twice (a check
//! of every row, then the writing in batches; see `qbo_engine::lifecycle::import`). The
//! file's text arrives in pieces: from the file itself in process, over the socket in
//! `import_stream` frames.

use crate::{ImportReport, Result, Service, ServiceError};
use qbo_core::audit::Action;
use qbo_core::identity::{Actor, Permission};
use qbo_core::import_text::TextChunks;
use qbo_core::reports::ImportTally;
use qbo_engine::lifecycle::import::{self as engine_import, ImportFailure, ImportPlan, PassFeed};
use qbo_engine::lifecycle::Engine;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

pub use qbo_core::reports::{ImportPass as Pass, ImportProgress};

/// The most an import sent as text in one request may hold (the socket's `import` op, and
/// callers that hold the rows in memory); files of any size travel as `import_stream`.
pub const MAX_IMPORT_BYTES: u64 = 16 * 1024 * 1024;

/// Bytes of the file per piece: small enough to keep every stage's buffer small, large
/// enough that a gigabyte is a few thousand frames.
pub const PIECE_BYTES: usize = 256 * 1024;

/// What the daemon says during an `import_stream`, one frame per line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImportFrame {
    /// Send the file (again), as `text` frames, then `end`.
    Send { pass: Pass },
    /// How far the daemon has got.
    Progress(ImportProgress),
    /// Every row is valid: what writing will do.
    Checked(ImportTally),
    /// Written.
    Done(ImportReport),
}

/// What the client sends during an `import_stream`, one frame per line.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImportUpload {
    /// The next piece of the file, cut on a character boundary.
    Text { text: String },
    /// The file cannot be read on from here (not UTF-8 text, an I/O error): `why` names
    /// the line. The daemon answers it after the rows before it.
    Unreadable { why: String },
    /// The end of the file.
    End,
}

impl std::fmt::Debug for ImportUpload {
    // The text holds refresh tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportUpload::Text { text } => write!(f, "Text({} bytes)", text.len()),
            ImportUpload::Unreadable { why } => write!(f, "Unreadable({why})"),
            ImportUpload::End => f.write_str("End"),
        }
    }
}

/// An import the caller may make, ready for its two readings.
pub struct ImportRun {
    engine: Arc<Engine>,
    plan: Arc<ImportPlan>,
}

impl Service {
    /// Authorizes an import of `file` (named in errors and the audit log).
    pub async fn import_begin(
        &self,
        caller: &Actor,
        file: &str,
        update: bool,
        from_line: usize,
    ) -> Result<ImportRun> {
        self.authorize(caller, Permission::Import, Action::Import)
            .await?;
        if from_line == 0 {
            return Err(ServiceError::Input(
                "--from-line counts from 1, the file's first line".into(),
            ));
        }
        Ok(ImportRun {
            engine: self.engine.clone(),
            plan: Arc::new(ImportPlan {
                file: file.to_string(),
                update,
                from_line,
                actor: caller.clone(),
            }),
        })
    }

    /// An import whose text is in hand (the socket's `import` op, the demo): at most
    /// [`MAX_IMPORT_BYTES`]; a file of any size goes through [`Service::import_file`].
    pub async fn import(
        &self,
        caller: &Actor,
        text: &str,
        file: &str,
        update: bool,
    ) -> Result<ImportReport> {
        if text.len() as u64 > MAX_IMPORT_BYTES {
            return Err(ServiceError::Input(format!(
                "{file} is {} bytes; an import sent in one request holds at most {MAX_IMPORT_BYTES} bytes (16 MiB): \
                 import the file with `qbo-console import FILE`, which has no limit",
                text.len()
            )));
        }
        let run = self.import_begin(caller, file, update, 1).await?;
        let (progress, _) = watch::channel(None);
        run.both(|| Ok(text.as_bytes()), &progress).await
    }

    /// An import of a file this process can read (`--embedded`), progress on `progress`.
    pub async fn import_file(
        &self,
        caller: &Actor,
        path: &Path,
        from_line: usize,
        update: bool,
        progress: &watch::Sender<Option<ImportProgress>>,
    ) -> Result<ImportReport> {
        let name = path.display().to_string();
        let run = self.import_begin(caller, &name, update, from_line).await?;
        let open = || {
            engine_import::open_file(path)
                .map(|(f, _)| f)
                .map_err(|e| ServiceError::Input(e.0))
        };
        run.both(open, progress).await
    }
}

impl ImportRun {
    pub fn file(&self) -> &str {
        &self.plan.file
    }

    /// Starts one reading: feed it the file's text, then finish it.
    pub fn pass(&self, pass: Pass) -> PassFeed {
        self.engine.import_pass(self.plan.clone(), pass)
    }

    /// What the finished writing did.
    pub fn report(&self, tally: &ImportTally) -> ImportReport {
        ImportReport {
            file: self.plan.file.clone(),
            created: tally.created,
            updated: tally.updated,
            first_line: tally.first_line,
            last_line: tally.last_line,
            from_line: self.plan.from_line,
        }
    }

    /// Both readings of a source this process can open twice.
    async fn both<R: Read>(
        &self,
        mut open: impl FnMut() -> Result<R>,
        progress: &watch::Sender<Option<ImportProgress>>,
    ) -> Result<ImportReport> {
        let mut tally = ImportTally::default();
        for pass in [Pass::Check, Pass::Write] {
            let mut feed = self.pass(pass);
            let mut seen = feed.progress();
            let source = open()?;
            let fed = {
                let fed = feed_from(&self.plan.file, source, &mut feed);
                tokio::pin!(fed);
                // The progress, passed on while the pieces go in.
                loop {
                    tokio::select! {
                        done = &mut fed => break done,
                        Ok(()) = seen.changed() => {
                            progress.send_replace(Some(*seen.borrow_and_update()));
                        }
                    }
                }
            };
            let finished = feed.finish().await.map_err(failure);
            // The pass's own error first: it names an earlier line than anything met
            // after it. A read that failed with nothing wrong before it says so itself.
            tally = match (finished, fed) {
                (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
                (Ok(t), Ok(())) => t,
            };
        }
        Ok(self.report(&tally))
    }
}

/// Reads `source` a piece at a time into `feed`, cut on character boundaries.
async fn feed_from<R: Read>(name: &str, mut source: R, feed: &mut PassFeed) -> Result<()> {
    let mut chunks = TextChunks::new(name);
    let mut block = vec![0u8; PIECE_BYTES];
    loop {
        // A local file: a read of a quarter megabyte does not hold the runtime up.
        let n = source
            .read(&mut block)
            .map_err(|e| ServiceError::Input(format!("cannot read {name}: {e}")))?;
        let text = if n == 0 {
            chunks.finish().map(|()| None)
        } else {
            chunks.push(&block[..n]).map(Some)
        };
        let text = match text {
            Ok(Some(text)) => text,
            Ok(None) => return Ok(()),
            Err(e) => {
                feed.fail(e.0).await;
                return Ok(());
            }
        };
        if !feed.feed(text.into_bytes()).await {
            // The reading stopped on an error of its own: `finish` says which.
            return Ok(());
        }
    }
}

/// A failed import as the service says it.
pub fn failure(f: ImportFailure) -> ServiceError {
    match f {
        ImportFailure::Input(m) => ServiceError::Input(m),
        ImportFailure::Internal(e) => ServiceError::Internal(e),
    }
}
