//! One interface to the service for every front end (the CLI verbs, the TUI), implemented
//! over the operators' socket (`SocketClient`) and in process (`LocalClient`, the embedded
//! mode), so a front end is written once and can be tested against a fake. Errors are typed;
//! exit codes and wording on screen stay the front end's business.

mod export_file;
mod local;
mod socket;

pub use export_file::{default_export_path, export_to_file};
pub use local::LocalClient;
pub use socket::SocketClient;

use super::{
    AuditPage, AuditQuery, AuditRecord, AuditVerifyReport, ConnectionDetail, ConnectionView,
    ImportReport, ListQuery, PurgeReport, RefreshReport, RevokeReport, RevokeRequest, Role,
    Selection, ServiceError, SessionEvent, VerifyReport, WatchEvent,
};
use futures_util::stream::BoxStream;
use qbo_core::audit::{ExportFilter, ExportFormat, Manifest};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// An import file, and how to import it.
#[derive(Debug, Clone)]
pub struct ImportFile {
    pub path: PathBuf,
    /// Replace the tokens of pairs that exist already.
    pub update: bool,
    /// Rows that start before this line are left alone (1: none are).
    pub from_line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the socket.
    #[error("no qbo-console daemon answers at {} ({why}); start one with `qbo-console serve`, or run this command with --embedded if you hold the key", .socket.display())]
    Unavailable { socket: PathBuf, why: String },
    /// The daemon went away in the middle of a request or a watch.
    #[error("the daemon at {} closed the connection without answering{}; see its log", .socket.display(), .why.as_ref().map(|w| format!(" ({w})")).unwrap_or_default())]
    ConnectionLost {
        socket: PathBuf,
        why: Option<String>,
    },
    /// The daemon answered something this client cannot read.
    #[error("{0}")]
    Protocol(String),
    /// The caller's role does not allow `what`; `message` is the daemon's full wording.
    #[error("{message}")]
    Denied {
        account: String,
        role: Role,
        what: String,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Ambiguous(String),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Internal(String),
}

impl From<ServiceError> for ClientError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Denied {
                ref account,
                role,
                ref what,
            } => ClientError::Denied {
                account: account.clone(),
                role,
                what: what.clone(),
                message: e.to_string(),
            },
            ServiceError::NotFound(m) => ClientError::NotFound(m),
            ServiceError::Ambiguous(m) => ClientError::Ambiguous(m),
            ServiceError::Input(m) => ClientError::Input(m),
            ServiceError::Internal(e) => ClientError::Internal(format!("{e:#}")),
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// Hands each of `rows` to `sink` (a streamed answer's page); a write that fails (a closed
/// pipe, a full disk) ends the answer naming `what`.
pub(crate) fn feed<T>(
    rows: &[T],
    sink: &mut (dyn FnMut(&T) -> std::io::Result<()> + Send),
    what: &str,
) -> ClientResult<()> {
    for r in rows {
        sink(r).map_err(|e| ClientError::Input(format!("cannot write {what}: {e}")))?;
    }
    Ok(())
}

/// What every client method returns: a boxed future, so `dyn Client` works (`Arc<dyn
/// Client>` shared by tasks) without an extra crate.
pub type ClientFuture<'a, T> = Pin<Box<dyn Future<Output = ClientResult<T>> + Send + 'a>>;

/// The live feed: a hello first, then changes and missed notices, until the daemon goes
/// away (a `ConnectionLost` error, then the end) or the stream is dropped.
pub type WatchStream = BoxStream<'static, ClientResult<WatchEvent>>;

pub trait Client: Send + Sync {
    fn list(&self, query: ListQuery) -> ClientFuture<'_, Vec<ConnectionView>>;
    /// The listing, handed to `sink` row by row as it arrives (a page at a time over the
    /// socket): constant memory whatever the table's size. Returns how many rows.
    fn list_each<'a>(
        &'a self,
        query: ListQuery,
        sink: &'a mut (dyn FnMut(&ConnectionView) -> std::io::Result<()> + Send),
    ) -> ClientFuture<'a, u64>;
    /// A window on the connections: what one screen shows, and the counts.
    fn window(&self, query: crate::WindowQuery) -> ClientFuture<'_, crate::WindowPage>;
    /// One connection by tenant name, realm id or `environment:realm_id`.
    fn show(&self, target: String) -> ClientFuture<'_, ConnectionDetail>;
    fn refresh(&self, selection: Selection) -> ClientFuture<'_, Vec<RefreshReport>>;
    /// Named connections, or what a filter selects (`Selection::Matching`).
    fn verify(&self, selection: Selection) -> ClientFuture<'_, Vec<VerifyReport>>;
    /// Revokes at Intuit (or locally), or in a dry run names what would be revoked.
    fn revoke(&self, request: RevokeRequest) -> ClientFuture<'_, Vec<RevokeReport>>;
    /// Deletes long-revoked connections, or in a dry run names them.
    fn purge(&self, dry_run: bool) -> ClientFuture<'_, PurgeReport>;
    /// `file` names the import in errors and the audit log; `text` is its content.
    fn import(&self, file: String, text: String, update: bool) -> ClientFuture<'_, ImportReport>;
    /// An import file of any size, read by this process (twice: the check, then the
    /// writing) and handed over in pieces; how far it has got is sent on `progress`.
    fn import_file<'a>(
        &'a self,
        file: &'a ImportFile,
        progress: &'a tokio::sync::watch::Sender<Option<crate::ImportProgress>>,
    ) -> ClientFuture<'a, ImportReport>;
    fn audit_tail(&self, n: i64) -> ClientFuture<'_, Vec<AuditRecord>>;
    /// The latest `n` events (any number), oldest first, each to `sink` as it is read; how
    /// many were sent.
    fn audit_tail_each<'a>(
        &'a self,
        n: i64,
        sink: &'a mut (dyn FnMut(&AuditRecord) -> std::io::Result<()> + Send),
    ) -> ClientFuture<'a, u64>;
    /// A page of the audit log, newest first.
    fn audit_page(&self, query: AuditQuery) -> ClientFuture<'_, AuditPage>;
    fn audit_verify(&self) -> ClientFuture<'_, AuditVerifyReport>;
    /// Records a console opening or closing in the audit log.
    fn session(&self, event: SessionEvent) -> ClientFuture<'_, ()>;
    /// Who the service takes the caller for, with which role.
    fn whoami(&self) -> ClientFuture<'_, qbo_core::identity::Operator>;
    /// Subscribes to live changes. Subscribe first, then list: nothing committed after the
    /// hello is missed.
    fn watch(&self) -> ClientFuture<'_, WatchStream>;
    /// Which keys seal the stored tokens.
    fn keys_status(&self) -> ClientFuture<'_, crate::KeyStatus>;
    /// The connections that will die within `days` (else `[forecast] days`), and the
    /// last alerts.
    fn forecast(&self, days: Option<u32>, limit: Option<u32>) -> ClientFuture<'_, crate::Forecast>;
    /// The whole forecast, frame by frame to `sink` as it is read (`forecast --json`).
    fn forecast_each<'a>(
        &'a self,
        days: Option<u32>,
        sink: &'a mut (dyn FnMut(crate::ForecastFrame) -> std::io::Result<()> + Send),
    ) -> ClientFuture<'a, ()>;
    /// Issues a reconnect link.
    fn link(&self, request: super::LinkRequest) -> ClientFuture<'_, super::IssuedLink>;
    /// The open reconnect links.
    fn links(&self) -> ClientFuture<'_, Vec<super::LinkView>>;
    /// The open reconnect links, each to `sink` as it is read; how many were sent.
    fn links_each<'a>(
        &'a self,
        sink: &'a mut (dyn FnMut(&super::LinkView) -> std::io::Result<()> + Send),
    ) -> ClientFuture<'a, u64>;
    /// Cancels an open reconnect link by its number.
    fn link_cancel(&self, id: String) -> ClientFuture<'_, super::LinkView>;

    /// `link --where`: a campaign, committed before it is answered.
    fn link_campaign(
        &self,
        request: super::CampaignRequest,
    ) -> ClientFuture<'_, super::IssuedCampaign>;

    fn campaigns(&self) -> ClientFuture<'_, Vec<super::CampaignView>>;

    fn campaign(&self, id: i64) -> ClientFuture<'_, super::CampaignView>;

    fn incidents(&self) -> ClientFuture<'_, Vec<super::Incident>>;

    fn db_backup(&self, path: String) -> ClientFuture<'_, super::backup::BackupReport>;

    fn db_restore_check(&self, path: String) -> ClientFuture<'_, super::backup::RestoreDrill>;

    fn incident(&self, id: i64) -> ClientFuture<'_, super::IncidentDetail>;
    /// A support bundle for one connection over a window (`30d` when None).
    fn support_bundle(
        &self,
        target: String,
        since: Option<String>,
    ) -> ClientFuture<'_, crate::SupportBundle>;
    /// The security posture report.
    fn posture(&self) -> ClientFuture<'_, crate::PostureReport>;
    /// Creates a service API key; the only answer that holds the key.
    fn apikey_create(
        &self,
        name: String,
        realms: Vec<String>,
        environment: Option<qbo_core::domain::Environment>,
    ) -> ClientFuture<'_, crate::CreatedApiKey>;
    fn apikey_list(&self) -> ClientFuture<'_, Vec<crate::ApiKeyRecord>>;
    fn apikey_revoke(&self, id: i64) -> ClientFuture<'_, crate::ApiKeyRecord>;
    /// Streams a slice of the log into `sink`, then returns the manifest the service
    /// signed over exactly those bytes.
    fn audit_export<'a>(
        &'a self,
        filter: ExportFilter,
        format: ExportFormat,
        sink: &'a mut (dyn ExportSink + Send),
    ) -> ClientFuture<'a, Manifest>;
    /// The public key that verifies export manifests.
    fn audit_pubkey(&self) -> ClientFuture<'_, String>;
    /// Archives events older than `[retention] audit_days` now.
    fn audit_archive(&self) -> ClientFuture<'_, super::ArchiveReport>;

    /// `audit quarantine --from SEQ` (admin): moves the rows stored past the chain head out.
    fn audit_quarantine(&self, from: i64) -> ClientFuture<'_, crate::QuarantineReport>;
}

/// Where an export's bytes go as they arrive (a file, a hasher).
pub trait ExportSink {
    /// `rows` is how many events have been streamed so far, for progress.
    fn write(&mut self, bytes: &[u8], rows: u64) -> std::io::Result<()>;
}
