//! One reading of an import file, as a pipeline: text arrives in pieces (from the socket or
//! from the file), a thread parses and checks the rows, and a task checks or writes them a
//! batch at a time. Every stage holds a bounded amount, so memory does not follow the file.

use super::read::{read_rows, ReadError, SeenRealms};
use super::{ImportEntry, ImportError, BATCH_ROWS};
use crate::lifecycle::{Engine, Status};
use qbo_core::domain::Environment;
use qbo_core::identity::Actor;
use qbo_core::reports::{ImportPass as Pass, ImportProgress, ImportTally as PassTally};
use qbo_core::vault::TokenColumn;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::{NewConnection, Present, SealedPair};
use std::cell::Cell;
use std::collections::HashMap;
use std::io::Read;
use std::rc::Rc;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// What one import is: the same for both readings.
#[derive(Debug, Clone)]
pub struct ImportPlan {
    pub file: String,
    pub update: bool,
    /// Rows that start before this line are left alone (1: none are).
    pub from_line: usize,
    pub actor: Actor,
}

/// Why an import stopped. The message says what was written, and how to go on.
#[derive(Debug)]
pub enum ImportFailure {
    /// The file (or the database's rows) refuse it: fix the file.
    Input(String),
    Internal(anyhow::Error),
}

/// Feeds one reading: give it the file's text in pieces, then `finish`.
pub struct PassFeed {
    pass: Pass,
    plan: Arc<ImportPlan>,
    bytes: Option<mpsc::Sender<Piece>>,
    reader: tokio::task::JoinHandle<Result<u64, ReadError>>,
    writer: tokio::task::JoinHandle<Result<PassTally, (ImportFailure, PassTally)>>,
    progress: watch::Receiver<ImportProgress>,
}

/// What the reader is fed.
enum Piece {
    Text(Vec<u8>),
    /// The file cannot be read from here on (not UTF-8 text): the reader meets that where
    /// the bad byte is, after every row before it.
    Unreadable(String),
    /// The whole file was fed. Without it, a feed that stops (a client hanging up) is an
    /// error, never the end of the file: a record cut short could pass for a whole one.
    End,
}

/// A batch of rows, and how many bytes of the file had been read when it was cut.
type Batch = (Vec<ImportEntry>, u64);

impl Engine {
    /// Starts one reading of an import file.
    pub fn import_pass(self: &Arc<Self>, plan: Arc<ImportPlan>, pass: Pass) -> PassFeed {
        // A few pieces and two batches in flight: enough to keep both stages busy.
        let (bytes_tx, bytes_rx) = mpsc::channel::<Piece>(4);
        let (batch_tx, mut batch_rx) = mpsc::channel::<Batch>(2);
        let (progress_tx, progress) = watch::channel(ImportProgress {
            pass,
            rows: 0,
            bytes: 0,
        });
        let reader = {
            let plan = plan.clone();
            tokio::task::spawn_blocking(move || {
                let mut source = Pieces {
                    rx: bytes_rx,
                    piece: Vec::new(),
                    at: 0,
                    taken: Rc::new(Cell::new(0)),
                    ended: false,
                };
                // Pairs named twice are the check's business; the writing trusts it.
                let mut seen = (pass == Pass::Check).then(SeenRealms::default);
                let mut batch = Vec::with_capacity(BATCH_ROWS);
                let taken = source.taken.clone();
                let handed = read_rows(
                    &mut source,
                    &plan.file,
                    plan.from_line,
                    seen.as_mut(),
                    |entry| {
                        batch.push(entry);
                        if batch.len() == BATCH_ROWS {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                            batch_tx
                                .blocking_send((full, taken.get()))
                                .map_err(|_| ReadError::Stopped)?;
                        }
                        Ok(())
                    },
                )?;
                if !batch.is_empty() {
                    batch_tx
                        .blocking_send((batch, taken.get()))
                        .map_err(|_| ReadError::Stopped)?;
                }
                Ok(handed)
            })
        };
        let writer = {
            let engine = self.clone();
            let plan = plan.clone();
            tokio::spawn(async move {
                let mut tally = PassTally::default();
                while let Some((rows, bytes)) = batch_rx.recv().await {
                    let done = match pass {
                        Pass::Check => engine.import_check(&plan, &rows).await,
                        Pass::Write => engine.import_write(&plan, rows.as_slice()).await,
                    };
                    let (created, updated) = done.map_err(|f| (f, tally))?;
                    tally.rows += rows.len() as u64;
                    tally.created += created;
                    tally.updated += updated;
                    tally.first_line = tally.first_line.or(rows.first().map(|e| e.line));
                    tally.last_line = rows.last().map(|e| e.line).or(tally.last_line);
                    progress_tx.send_replace(ImportProgress {
                        pass,
                        rows: tally.rows,
                        bytes,
                    });
                }
                Ok(tally)
            })
        };
        PassFeed {
            pass,
            plan,
            bytes: Some(bytes_tx),
            reader,
            writer,
            progress,
        }
    }

    /// The check of a batch: which rows exist already, refused unless `update`.
    async fn import_check(
        &self,
        plan: &ImportPlan,
        rows: &[ImportEntry],
    ) -> Result<(u64, u64), ImportFailure> {
        let mut present = HashMap::new();
        for env in [Environment::Sandbox, Environment::Production] {
            let realms = realms_of(rows, env);
            if realms.is_empty() {
                continue;
            }
            let found = self
                .store
                .realms_present(env, &realms)
                .await
                .map_err(ImportFailure::Internal)?;
            present.extend(found.into_iter().map(|p| ((env, p.realm_id.clone()), p)));
        }
        tally_existing(plan, rows, &present, None)
    }

    /// Writes a batch in one transaction: the new connections, the replaced tokens, and one
    /// audit event per row.
    async fn import_write(
        &self,
        plan: &ImportPlan,
        rows: &[ImportEntry],
    ) -> Result<(u64, u64), ImportFailure> {
        let internal = ImportFailure::Internal;
        let now = self.clock.now();
        let mut tx = self.store.begin().await.map_err(internal)?;
        let mut present = HashMap::new();
        for env in [Environment::Sandbox, Environment::Production] {
            let realms = realms_of(rows, env);
            if realms.is_empty() {
                continue;
            }
            let found = tx.realms_present(env, &realms).await.map_err(internal)?;
            present.extend(found.into_iter().map(|p| ((env, p.realm_id.clone()), p)));
        }
        // A connection made since the check (a customer's consent, another import).
        let counts = tally_existing(plan, rows, &present, Some(" (made since the check)"))?;
        let fresh: Vec<NewConnection> = rows.iter().map(new_connection).collect();
        let mut ids: HashMap<(Environment, &str), i64> = HashMap::with_capacity(rows.len());
        let mut inserts = Vec::new();
        for (e, n) in rows.iter().zip(&fresh) {
            match present.get(&(e.environment, e.realm_id.to_string())) {
                Some(p) => {
                    tx.update_imported(p.id, n, now).await.map_err(internal)?;
                    ids.insert((e.environment, e.realm_id.as_str()), p.id);
                }
                None => inserts.push(n),
            }
        }
        let made = tx
            .insert_connections(&inserts, now)
            .await
            .map_err(internal)?;
        let made: HashMap<(String, String), i64> = made
            .into_iter()
            .map(|(id, env, realm)| ((env, realm), id))
            .collect();
        let mut sealed = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for e in rows {
            let key = (e.environment, e.realm_id.as_str());
            let (id, action) = match ids.get(&key) {
                Some(id) => (*id, "updated"),
                None => {
                    let id = made
                        .get(&(e.environment.as_str().to_string(), e.realm_id.to_string()))
                        .copied()
                        .ok_or_else(|| {
                            internal(anyhow::anyhow!(
                                "the database returned no id for {} realm {}",
                                e.environment,
                                e.realm_id
                            ))
                        })?;
                    (id, "created")
                }
            };
            let access = e
                .access_token
                .as_ref()
                .map(|t| self.vault.seal(id, TokenColumn::Access, t.expose()));
            let refresh = self
                .vault
                .seal(id, TokenColumn::Refresh, e.refresh_token.expose());
            sealed.push((id, access, refresh));
            let mut ev = AuditEvent::new(now, &plan.actor, Action::Import, Outcome::Ok)
                .target(id, e.environment.as_str(), e.realm_id.as_str(), &e.tenant)
                .fingerprint("refresh", self.vault.fingerprint(e.refresh_token.expose()));
            if let Some(a) = &e.access_token {
                ev = ev.fingerprint("access", self.vault.fingerprint(a.expose()));
            }
            ev.reason = Some(format!("{action} from {} line {}", plan.file, e.line));
            events.push(ev);
        }
        let pairs: Vec<SealedPair> = sealed
            .iter()
            .map(|(id, access, refresh)| SealedPair {
                id: *id,
                access: access.as_deref(),
                refresh,
            })
            .collect();
        let refs: Vec<&AuditEvent> = events.iter().collect();
        tx.audit_many(&refs).await.map_err(internal)?;
        tx.set_sealed_many(&pairs).await.map_err(internal)?;
        self.commit_audited(tx, &[]).await.map_err(internal)?;
        Ok(counts)
    }
}

fn realms_of(rows: &[ImportEntry], env: Environment) -> Vec<&str> {
    rows.iter()
        .filter(|e| e.environment == env)
        .map(|e| e.realm_id.as_str())
        .collect()
}

/// Counts the rows that create and that update, refusing the first that exists when the
/// import may not replace.
fn tally_existing(
    plan: &ImportPlan,
    rows: &[ImportEntry],
    present: &HashMap<(Environment, String), Present>,
    when: Option<&str>,
) -> Result<(u64, u64), ImportFailure> {
    let when = when.unwrap_or_default();
    let mut updated = 0;
    for e in rows {
        if let Some(p) = present.get(&(e.environment, e.realm_id.to_string())) {
            if !plan.update {
                return Err(ImportFailure::Input(format!(
                    "{}:{}: {} realm {} already exists as tenant {:?}{when}; use --update to replace its tokens",
                    plan.file, e.line, e.environment, e.realm_id, p.tenant
                )));
            }
            updated += 1;
        }
    }
    Ok((rows.len() as u64 - updated, updated))
}

fn new_connection(e: &ImportEntry) -> NewConnection {
    NewConnection {
        tenant: e.tenant.clone(),
        realm_id: e.realm_id.clone(),
        environment: e.environment,
        company_name: e.company_name.clone(),
        scopes: "com.intuit.quickbooks.accounting".into(),
        status: Status::Active,
        access_expires_at: e.access_token.as_ref().and(e.access_expires_at),
        refresh_issued_at: None,
        refresh_expires_at: e.refresh_expires_at,
    }
}

impl PassFeed {
    /// How far this reading has gone; changes after each batch.
    pub fn progress(&self) -> watch::Receiver<ImportProgress> {
        self.progress.clone()
    }

    /// Gives the next piece of the file. False once the reading has stopped on an error
    /// (`finish` says which): the rest of the file is not needed.
    pub async fn feed(&mut self, piece: Vec<u8>) -> bool {
        match &self.bytes {
            Some(tx) => tx.send(Piece::Text(piece)).await.is_ok(),
            None => false,
        }
    }

    /// The file cannot be read past what was fed (`why` names the line): the reading
    /// fails there, once the rows before it are checked (or written).
    pub async fn fail(&mut self, why: String) {
        if let Some(tx) = self.bytes.take() {
            let _ = tx.send(Piece::Unreadable(why)).await;
        }
    }

    /// Ends the file and waits for the reading to finish.
    pub async fn finish(self) -> Result<PassTally, ImportFailure> {
        let PassFeed {
            pass,
            plan,
            bytes,
            reader,
            writer,
            ..
        } = self;
        if let Some(tx) = bytes {
            // Refused only if the reader has stopped already, which it then says.
            let _ = tx.send(Piece::End).await;
        }
        let read = reader.await.map_err(|e| {
            ImportFailure::Internal(anyhow::anyhow!("the import reader failed: {e}"))
        })?;
        let written = writer.await.map_err(|e| {
            ImportFailure::Internal(anyhow::anyhow!("the import writer failed: {e}"))
        })?;
        let stays = |f, t: &PassTally| say_what_stays(pass, &plan, f, t);
        match (read, written) {
            // The writer stopped first (its error is about an earlier line than anything
            // the reader could have met after it).
            (_, Err((failure, tally))) => Err(stays(failure, &tally)),
            (Err(ReadError::Bad(ImportError(m))), Ok(tally)) => {
                Err(stays(ImportFailure::Input(m), &tally))
            }
            (Err(ReadError::Stopped), Ok(_)) => Err(ImportFailure::Internal(anyhow::anyhow!(
                "the import of {} stopped without a reason",
                plan.file
            ))),
            (Ok(_), Ok(tally)) => Ok(tally),
        }
    }
}

/// Adds to a failure's message what was written before it, and how to go on.
fn say_what_stays(
    pass: Pass,
    plan: &ImportPlan,
    failure: ImportFailure,
    tally: &PassTally,
) -> ImportFailure {
    let stays = match (pass, tally.last_line) {
            (Pass::Write, Some(last)) => format!(
                "; the rows before it, to line {last} ({} created, {} updated), were imported and stay: \
                 fix the file and run `qbo-console import {} --from-line {}` to import the rest",
                tally.created,
                tally.updated,
                plan.file,
                last + 1
            ),
            _ if plan.from_line > 1 => format!(
                "; nothing more was imported (rows before line {} were left as they are)",
                plan.from_line
            ),
            _ => "; nothing was imported".to_string(),
        };
    match failure {
        ImportFailure::Input(m) => ImportFailure::Input(format!("{m}{stays}")),
        ImportFailure::Internal(e) => ImportFailure::Internal(
            e.context(format!("the import of {} stopped{stays}", plan.file)),
        ),
    }
}

/// The pieces of text a reading is fed, as one `Read` for the parser's thread.
struct Pieces {
    rx: mpsc::Receiver<Piece>,
    piece: Vec<u8>,
    at: usize,
    /// Bytes taken so far, shared with the batches' progress.
    taken: Rc<Cell<u64>>,
    ended: bool,
}

impl Read for &mut Pieces {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.piece.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Piece::Text(p)) => {
                    self.piece = p;
                    self.at = 0;
                }
                Some(Piece::End) => self.ended = true,
                Some(Piece::Unreadable(why)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        Unreadable(why),
                    ))
                }
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file stopped arriving before its end (the sender went away)",
                    ))
                }
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        self.taken.set(self.taken.get() + n as u64);
        Ok(n)
    }
}

/// Why the file cannot be read on, as its feeder said (the message names the line).
#[derive(Debug)]
pub(super) struct Unreadable(pub String);

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreadable {}
