//! The operations every interface calls: the CLI today, the operators' socket, the TUI and
//! the token API later. Each takes the caller's identity, checks its role, and leaves a
//! record in the audit log: credential changes record themselves, reads record what was
//! shown, and refusals are recorded as `denied`. A request for nothing (no such tenant,
//! bad input) leaves the database as it was.

pub mod alerts;
mod apikeys;
pub mod archive;
mod audit_stream;
pub mod backup;
pub mod campaigns;
mod changes;
pub mod client;
pub mod consent;
mod export;
pub mod facts;
pub mod filter;
/// Views in every state, for the tests of the service and of the interfaces above it.
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod fixtures;
mod forecast;
pub mod import;
pub mod incidents;
pub mod links;
mod list_stream;
mod monitoring;
mod offline;
mod operations_admin;
mod posture;
pub mod protocol;
mod quarantine;
mod refusals;
mod revocation;
mod roster;
pub mod service_keys;
mod soonest;
pub mod sort;
mod support;
pub mod tasks;
mod token_api;
mod views;
mod watch;
mod webhooks;

pub use archive::ArchiveReport;
pub use client::{
    Client, ClientError, ClientResult, ImportFile, LocalClient, SocketClient, WatchStream,
};
pub use export::ExportFrame;
pub use monitoring::{HealthReport, Unhealthy};
pub use operations_admin::{
    database_checkup, migrate_database, pending_migrations, Checkup, TokenlessSeed,
};
pub use protocol::{Denial, Reply, Request};
pub use token_api::TokenHolder;
pub use views::{
    ConnectionDetail, ConnectionView, ListQuery, RefreshReport, Target, VerifyReport,
    REFRESH_WINDOW_DAYS,
};
pub use watch::{WatchEvent, WatchFeed, PROTOCOL_VERSION};
pub use webhooks::WebhookEvent;

// What interfaces need from the layers below, so that they import `service` alone.
pub use apikeys::CreatedApiKey;
pub use audit_stream::{AuditFrame, AuditTailCursor};
pub use campaigns::{CampaignLink, CampaignRequest, CampaignView, IssuedCampaign, LeftOut};
pub use forecast::ForecastWalk;
pub use import::{ImportFrame, ImportProgress, ImportRun, ImportUpload, Pass as ImportPass};
pub use incidents::{IncidentDetail, IncidentMemberView};
pub use links::LinkView;
pub use links::{IssuedLink, LinkRequest};
pub use links::{LinkFrame, LinksCursor};
pub use list_stream::{ListCursor, ListFrame};
pub use offline::{open_import_file, sqlite_file, verify_export_file};
pub use posture::{posture_markdown, PostureReport};
pub use qbo_core::audit::{
    manifest_path, Action, AuditEvent, AuditPage, AuditQuery, AuditRecord, Damage, ExportFilter,
    ExportFormat, FileReport, Outcome, QuarantineReport, RepairNote,
    VerifyReport as AuditVerifyReport, MAX_PAGE as MAX_AUDIT_PAGE,
};
pub use qbo_core::domain::ConnectionFilter;
pub use qbo_core::domain::{Condition, Environment, ErrorClass, LastRefresh, Status, SyncStatus};
pub use qbo_core::identity::{Actor, ActorKind, DaemonTask, Interface, Operator, Permission, Role};
pub use qbo_core::import_text::TextChunks;
pub use qbo_core::incident::{Endpoint, Incident, IncidentClass};
pub use qbo_core::reports::ImportTally;
pub use qbo_core::reports::{
    describe_refresh, outcome_name, AlertDelivery, ApiKeyRecord, Cause, CauseSummary, Forecast,
    ForecastFrame, ForecastItem, ImportReport, KeyStatus, RefreshOutcome, RevokeOutcome, Risk,
    RotationReport, VerifyOutcome,
};
pub use revocation::{PurgeReport, RevokeReport, RevokeRequest};
pub use roster::{WindowPage, WindowQuery, MAX_WINDOW_ROWS};
pub use support::{bundle_markdown, parse_since as support_since, write_owner_only, SupportBundle};

use chrono::Duration as ChronoDuration;
use futures_util::stream::{self, StreamExt};
use qbo_core::clock::Clock;
use qbo_core::config::Config;
use qbo_core::vault::Vault;
use qbo_engine::lifecycle::{Clients, Engine, Missing};
use qbo_store::audit;
use qbo_store::audit::AboutConnection;
use qbo_store::{ConnectionRecord, Store};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("permission denied: {account} (role {role}) may not {what}")]
    Denied {
        account: String,
        role: Role,
        what: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Ambiguous(String),
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, ServiceError>;

/// A row's number as operators type it, as listings print it: `7` or `#7`, above zero.
pub(crate) fn number_in(text: &str) -> Option<i64> {
    text.trim()
        .trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
}

/// Which connections a bulk operation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Named(Vec<String>),
    /// Live connections whose access token expires within the configured window.
    Due,
    /// Every live connection.
    All,
    /// What the filter (the console's language) selects when the request arrives; if
    /// `expect` is given and the filter selects another number, nothing is done: the
    /// operator confirmed a count, and acts on exactly that or not at all.
    Matching {
        filter: String,
        expect: Option<u64>,
    },
}

impl Selection {
    /// From `refresh`'s targets, `--due`, `--all` and `--where`, of which exactly one must
    /// be given (`expect` only with `--where`).
    pub fn from_flags(
        targets: Vec<String>,
        due: bool,
        all: bool,
        filter: Option<String>,
        expect: Option<u64>,
    ) -> Result<Selection> {
        if expect.is_some() && filter.is_none() {
            return Err(ServiceError::Input(
                "--expect goes with --where: it is the count the filter must select".into(),
            ));
        }
        match (all, due, targets.is_empty(), filter) {
            (true, false, true, None) => Ok(Selection::All),
            (false, true, true, None) => Ok(Selection::Due),
            (false, false, false, None) => Ok(Selection::Named(targets)),
            (false, false, true, Some(filter)) => Ok(Selection::Matching { filter, expect }),
            _ => Err(ServiceError::Input(
                "refresh needs targets, --due, --all or --where (exactly one of them)".into(),
            )),
        }
    }

    /// The fields of a `refresh` or `verify` request that say what it is about.
    pub fn into_fields(self) -> (Vec<String>, bool, bool, Option<String>, Option<u64>) {
        match self {
            Selection::Named(t) => (t, false, false, None, None),
            Selection::Due => (Vec::new(), true, false, None, None),
            Selection::All => (Vec::new(), false, true, None, None),
            Selection::Matching { filter, expect } => {
                (Vec::new(), false, false, Some(filter), expect)
            }
        }
    }
}

/// A console opening or closing: recorded with who (account, uid) and from where (an SSH
/// client's address, or none for a local login), so an auditor sees who was watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEvent {
    Opened,
    Closed,
}

impl SessionEvent {
    /// The action as the audit log names it.
    pub fn action(self) -> Action {
        match self {
            SessionEvent::Opened => Action::ConsoleOpened,
            SessionEvent::Closed => Action::ConsoleClosed,
        }
    }
}

#[derive(Clone)]
pub struct Service {
    engine: Arc<Engine>,
    /// How many connections one bulk call works on at once.
    parallelism: usize,
    refusals: Arc<refusals::Refusals>,
    /// `[retention] revoked_days`: how long `purge` keeps a revoked connection.
    revoked_days: u32,
    /// `[forecast]`: the default horizon and the no-sync rule's days.
    forecast_cfg: qbo_core::config::ForecastConfig,
    /// `[public]`: where links point, how long they and their states live.
    links: Arc<links::LinkSettings>,
    /// The configuration the service was opened with, for the reports that state it
    /// (support bundle, posture): ids, URIs and paths, never the secrets themselves.
    config: Arc<Config>,
    /// `[audit] signing_key_file`: signs export manifests; absent, exports are refused.
    signer: Option<Arc<qbo_store::audit::signing::ManifestSigner>>,
    /// `[retention]`: when audit events are archived, and where to.
    retention: qbo_core::config::RetentionConfig,
    /// Every connection in brief, for consoles' windows.
    roster: Arc<roster::Roster>,
}

impl Service {
    /// Opens the database (applying migrations), the vault and the Intuit clients in this
    /// process: the embedded mode, and what the daemon runs.
    pub async fn open(config: &Config, clock: Clock) -> anyhow::Result<Service> {
        // Every secret is read before the database is touched: a bad key or a missing
        // client secret must not leave a half-created database behind.
        let vault = Vault::from_config(config.vault()?, &config.source)?;
        let signer = match &config.audit.signing_key {
            Some(src) => Some(Arc::new(
                qbo_store::audit::signing::ManifestSigner::from_source(src, &config.source)?,
            )),
            None => None,
        };
        let (clients, missing) = Engine::clients(config)?;
        let db = config.database()?;
        let store = Store::connect(db, config.daemon.file_group.as_deref()).await?;
        store.migrate().await?;
        let mut svc = Service::with_parts(config, store, vault, clock, clients, missing);
        svc.signer = signer;
        Ok(svc)
    }

    fn with_parts(
        config: &Config,
        store: Store,
        vault: Vault,
        clock: Clock,
        clients: Clients,
        missing: Missing,
    ) -> Service {
        let parallelism = config
            .database()
            .map(|d| d.max_connections as usize)
            .unwrap_or(8)
            .clamp(1, 16);
        Service {
            engine: Arc::new(Engine::new(config, store, vault, clock, clients, missing)),
            parallelism,
            refusals: Arc::default(),
            revoked_days: config.retention.revoked_days,
            forecast_cfg: config.forecast.clone(),
            links: Arc::new(links::LinkSettings::from_config(config)),
            config: Arc::new(config.clone()),
            signer: None,
            retention: config.retention.clone(),
            roster: Arc::default(),
        }
    }

    /// The lifecycle engine under the service, for tests of the layers below it (leases,
    /// commit gates, rows written behind the service's back). Not in a product build:
    /// `test-support` is a feature only this workspace's tests and benches turn on, so no
    /// interface can reach past the service.
    #[cfg(feature = "test-support")]
    pub fn lifecycle_for_tests(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Empties SQLite's write-ahead log if no reader needs it (see `qbo_store::wal`); the
    /// daemon calls it every few seconds. Whether it was emptied; `None` on PostgreSQL.
    pub async fn checkpoint_wal(&self) -> anyhow::Result<Option<bool>> {
        Ok(self.store().checkpoint_wal().await?.map(|c| c.emptied))
    }

    fn store(&self) -> &Store {
        &self.engine.store
    }

    /// The time by the service's clock (the emulator's, under test).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.engine.clock.now()
    }

    /// A secret's fingerprint under the vault's fingerprint key: what logs, the audit log
    /// and screens show in place of a token or key.
    pub fn fingerprint(&self, secret: &str) -> String {
        self.engine.vault.fingerprint(secret)
    }

    /// Refuses a caller whose role lacks `p`. The refusal is recorded as `denied`, or, when
    /// the same caller was refused the same action within the minute, counted into the
    /// summary recorded when that minute is over (see `refusals`).
    async fn authorize(&self, caller: &Actor, p: Permission, what: Action) -> Result<()> {
        if caller.allows(p) {
            return Ok(());
        }
        let now = self.engine.clock.now();
        if let refusals::Verdict::Record { closed } = self.refusals.refuse(caller, what, now) {
            let mut ev = AuditEvent::new(now, caller, what, Outcome::Denied);
            ev.reason = Some(refusals::role_cause(caller, what));
            let mut events: Vec<AuditEvent> = closed.iter().map(|s| s.event(now)).collect();
            events.push(ev);
            if let Err(e) = self.record_refusals(&events).await {
                self.refusals.unrecorded(caller, what, None);
                self.refusals.unwritten(closed.into_iter().collect());
                return Err(e.into());
            }
        }
        Err(ServiceError::Denied {
            account: caller.name(),
            // Only operators are checked against a role; anything else has none.
            role: caller.role().unwrap_or(Role::Unmapped),
            what: what.to_string(),
        })
    }

    async fn record_refusals(&self, events: &[AuditEvent]) -> anyhow::Result<()> {
        let tx = self.store().begin().await?;
        self.engine.commit_audited(tx, events).await?;
        Ok(())
    }

    /// Records the summaries of refusals counted in windows that have closed, or in every
    /// window when `all` (at shutdown). Returns how many summaries were recorded; those
    /// that could not be written are kept for the next call.
    pub async fn record_counted_refusals(&self, all: bool) -> anyhow::Result<usize> {
        let now = self.engine.clock.now();
        let due = self.refusals.due(now, all);
        if due.is_empty() {
            return Ok(0);
        }
        let events: Vec<AuditEvent> = due.iter().map(|s| s.event(now)).collect();
        match self.record_refusals(&events).await {
            Ok(()) => Ok(due.len()),
            Err(e) => {
                self.refusals.unwritten(due);
                Err(e)
            }
        }
    }

    /// Records what a caller was shown, so auditors see every request, not only the
    /// credential changes. Fail-closed: if the record cannot be written, the caller is not
    /// answered.
    ///
    /// Not published to `watch`: a subscriber that reads on every change would otherwise
    /// cause the change it reacts to, forever. `audit tail` shows these events.
    async fn record_view(
        &self,
        caller: &Actor,
        what: Action,
        target: Option<&ConnectionRecord>,
        reason: String,
    ) -> Result<()> {
        let mut ev = AuditEvent::new(self.engine.clock.now(), caller, what, Outcome::Ok);
        if let Some(r) = target {
            ev = ev.about(r);
        }
        ev.reason = Some(reason);
        self.engine.record_reads(&[ev]).await?;
        Ok(())
    }

    /// The connections `query` asks for, in the store's order. Its filter (the console's
    /// language) is checked before anything is read or recorded, and is judged by the
    /// daemon's clock, as `revoke --where` is; `limit` keeps the first rows that match.
    pub async fn list(&self, caller: &Actor, query: &ListQuery) -> Result<Vec<ConnectionView>> {
        let matching = query.checked_filter()?;
        self.authorize(caller, Permission::ViewConnections, Action::List)
            .await?;
        let now = self.engine.clock.now();
        let stored = ConnectionFilter {
            status: query.status,
            environment: query.environment,
        };
        let rows = self.store().list_connections(&stored).await?;
        let limit = query.limit.map_or(usize::MAX, |n| n as usize);
        let views: Vec<ConnectionView> = rows
            .into_iter()
            .map(|r| ConnectionView::from_record(r, now))
            .filter(|v| matching.as_ref().is_none_or(|f| f.matches(v, now)))
            .take(limit)
            .collect();
        let shown = format!("listed {} connections {}", views.len(), query.described());
        self.record_view(caller, Action::List, None, shown).await?;
        Ok(views)
    }

    pub async fn show(&self, caller: &Actor, selector: &str) -> Result<ConnectionDetail> {
        self.authorize(caller, Permission::ViewConnections, Action::Show)
            .await?;
        let rec = self.resolve(selector).await?;
        let events = if caller.allows(Permission::ReadAudit) || caller.allows(Permission::Refresh) {
            self.store().audit_for_connection(rec.id, 20).await?
        } else {
            Vec::new()
        };
        let shown = format!("shown with {} recent audit events", events.len());
        self.record_view(caller, Action::Show, Some(&rec), shown)
            .await?;
        let incident = self.incident_holding(&rec).await?;
        Ok(ConnectionDetail {
            connection: ConnectionView::from_record(rec, self.engine.clock.now()),
            recent_events: events,
            incident,
        })
    }

    /// Refreshes every selected connection. Each gets its own outcome: an error on one (a
    /// token that will not open, a lease taken over) is reported as that connection's
    /// `error`, not as the failure of a call whose other refreshes were committed.
    pub async fn refresh(
        &self,
        caller: &Actor,
        selection: &Selection,
    ) -> Result<Vec<RefreshReport>> {
        self.authorize(caller, Permission::Refresh, Action::Refresh)
            .await?;
        if !matches!(selection, Selection::Named(_)) {
            self.authorize(caller, Permission::BulkActions, Action::RefreshInBulk)
                .await?;
        }
        self.ensure_audit_appendable().await?;
        let targets = self.select(selection).await?;
        let engine = self.engine.clone();
        let reports = stream::iter(targets)
            .map(|rec| {
                let engine = engine.clone();
                async move {
                    let outcome = match engine.refresh(rec.id, caller).await {
                        Ok(r) => r.outcome,
                        Err(e) => RefreshOutcome::Error {
                            detail: format!("{e:#}"),
                        },
                    };
                    RefreshReport {
                        target: Target::of(&rec),
                        outcome,
                    }
                }
            })
            .buffered(self.parallelism)
            .collect::<Vec<_>>()
            .await;
        Ok(reports)
    }

    /// Verifies each named connection (or each a filter selects), each with its own
    /// outcome (as for `refresh`).
    pub async fn verify(&self, caller: &Actor, selection: &Selection) -> Result<Vec<VerifyReport>> {
        self.authorize(caller, Permission::Verify, Action::Verify)
            .await?;
        if matches!(selection, Selection::Due | Selection::All) {
            return Err(ServiceError::Input(
                "verify takes named connections or a filter, not --due or --all".into(),
            ));
        }
        self.ensure_audit_appendable().await?;
        let targets = self.select(selection).await?;
        let mut out = Vec::with_capacity(targets.len());
        for rec in targets {
            let outcome = match self.engine.verify(rec.id, caller).await {
                Ok(o) => o,
                Err(e) => VerifyOutcome::Error {
                    detail: format!("{e:#}"),
                },
            };
            out.push(VerifyReport {
                target: Target::of(&rec),
                outcome,
            });
        }
        Ok(out)
    }

    pub async fn audit_tail(&self, caller: &Actor, n: i64) -> Result<Vec<AuditRecord>> {
        self.authorize(caller, Permission::ReadAudit, Action::AuditTail)
            .await?;
        let records = self.store().audit_tail(n.clamp(1, 100_000)).await?;
        let shown = format!("read the latest {} audit events", records.len());
        self.record_view(caller, Action::AuditTail, None, shown)
            .await?;
        Ok(records)
    }

    /// One page of the log, newest first; recorded as a read, like `audit tail`.
    pub async fn audit_page(&self, caller: &Actor, query: &AuditQuery) -> Result<AuditPage> {
        self.authorize(caller, Permission::ReadAudit, Action::AuditPage)
            .await?;
        let page = self.store().audit_page(query).await?;
        let shown = format!(
            "read {} audit events ({}{})",
            page.events.len(),
            query.describe(),
            query
                .before_seq
                .map_or(String::new(), |s| format!(", before sequence {s}"))
        );
        self.record_view(caller, Action::AuditPage, None, shown)
            .await?;
        Ok(page)
    }

    /// Records a console opening or closing. Anyone who may see the connections may open a
    /// console; the record says who, with which role, through which front end and from where.
    pub async fn session(&self, caller: &Actor, event: SessionEvent) -> Result<()> {
        self.authorize(caller, Permission::ViewConnections, event.action())
            .await?;
        // Authorized above: only an operator has the role to get here.
        let Some(op) = caller.as_operator() else {
            return Err(ServiceError::Input(format!(
                "{} is not an operator and has no console",
                caller.name()
            )));
        };
        let from = match &op.ssh_client {
            Some(ssh) => format!("over SSH from {ssh}"),
            None => "from a local login".to_string(),
        };
        let shown = format!("{} as uid {} {from}", event.action(), op.uid);
        self.record_view(caller, event.action(), None, shown).await
    }

    pub async fn audit_verify(&self, caller: &Actor) -> Result<audit::VerifyReport> {
        self.authorize(caller, Permission::ReadAudit, Action::AuditVerify)
            .await?;
        let mut report = audit::verify(self.store()).await?;
        let shown = match report.first_bad_seq {
            None => format!("chain intact over {} events", report.events),
            Some(seq) => format!(
                "chain broken at sequence {seq} ({})",
                report.kind.map_or("damaged", |k| k.as_str())
            ),
        };
        // The verdict is what the caller needs most when the log is damaged, and damage
        // is what makes the record fail: answer with it, saying the read went unrecorded.
        if let Err(e) = self
            .record_view(caller, Action::AuditVerify, None, shown)
            .await
        {
            let why = match e {
                ServiceError::Internal(inner) => format!("{inner:#}"),
                other => other.to_string(),
            };
            tracing::warn!(error = %qbo_core::text::Safe(&why), "audit verify: the read could not be recorded");
            report.read_not_recorded = Some(why);
        }
        Ok(report)
    }

    /// Which keys seal the stored tokens, and whether a rotation is complete: key ids and
    /// counts only.
    pub async fn keys_status(&self, caller: &Actor) -> Result<KeyStatus> {
        self.authorize(caller, Permission::ReadAudit, Action::KeysStatus)
            .await?;
        let status = self.engine.key_status().await?;
        let shown = format!(
            "key posture: current key {}, {} key id(s) in use, rotation {}",
            status.current_key_id,
            status.keys.len(),
            if status.rotation_complete {
                "complete"
            } else {
                "incomplete"
            }
        );
        self.record_view(caller, Action::KeysStatus, None, shown)
            .await?;
        Ok(status)
    }

    async fn select(&self, selection: &Selection) -> Result<Vec<ConnectionRecord>> {
        let ids = match selection {
            Selection::Named(names) => {
                let mut out: Vec<ConnectionRecord> = Vec::new();
                for n in names {
                    let rec = self.resolve(n).await?;
                    if !out.iter().any(|r| r.id == rec.id) {
                        out.push(rec);
                    }
                }
                return Ok(out);
            }
            Selection::Due => {
                let window =
                    ChronoDuration::from_std(self.engine.scheduler_config().refresh_before_expiry)
                        .map_err(anyhow::Error::from)?;
                self.store()
                    .due_connection_ids(self.engine.clock.now() + window)
                    .await?
            }
            Selection::All => self.store().live_connection_ids().await?,
            Selection::Matching { filter, expect } => {
                let parsed = filter::Filter::parse(filter)
                    .map_err(|e| ServiceError::Input(format!("where: {e}")))?;
                let ids = self.matching_ids(&parsed).await?;
                if let Some(n) = expect.filter(|n| *n != ids.len() as u64) {
                    return Err(ServiceError::Input(format!(
                        "the filter {filter:?} now selects {} connections, not the {n} confirmed; \
                         nothing was done: look again and confirm the new count",
                        ids.len()
                    )));
                }
                ids
            }
        };
        self.records_in_order(&ids).await
    }

    /// The records of `ids`, in that order (most urgent first, as a filter selected them),
    /// not the database's.
    pub(crate) async fn records_in_order(&self, ids: &[i64]) -> Result<Vec<ConnectionRecord>> {
        let mut out = Vec::with_capacity(ids.len());
        for piece in ids.chunks(512) {
            let mut rows = self.store().connections_by_id(piece).await?;
            rows.sort_by_key(|r| piece.iter().position(|id| *id == r.id));
            out.extend(rows);
        }
        Ok(out)
    }

    /// Answers one request as the caller: the single entry point the CLI (embedded) and the
    /// operators' socket share. `Watch` is streaming and handled by the socket itself.
    ///
    /// A request refused for what it asked (no such tenant, an ambiguous name, bad input)
    /// leaves no record: it changed nothing, and bad input must leave the database as it
    /// was. Denials record themselves, as `denied`.
    pub async fn handle(
        &self,
        caller: &Actor,
        req: Request,
    ) -> Result<Box<serde_json::value::RawValue>> {
        fn json<T: serde::Serialize>(v: T) -> Result<Box<serde_json::value::RawValue>> {
            serde_json::value::to_raw_value(&v).map_err(|e| ServiceError::Internal(e.into()))
        }
        match req {
            Request::Window(q) => json(self.window(caller, &q).await?),
            Request::List {
                status,
                environment,
                filter,
                limit,
            } => json(
                self.list(
                    caller,
                    &ListQuery {
                        status,
                        environment,
                        filter,
                        limit,
                    },
                )
                .await?,
            ),
            Request::Show { target } => json(self.show(caller, &target).await?),
            Request::Refresh {
                targets,
                due,
                all,
                filter,
                expect,
            } => {
                let sel = Selection::from_flags(targets, due, all, filter, expect)?;
                json(self.refresh(caller, &sel).await?)
            }
            Request::Verify {
                targets,
                filter,
                expect,
            } => {
                let sel = match filter {
                    Some(filter) if targets.is_empty() => Selection::Matching { filter, expect },
                    None if expect.is_none() => Selection::Named(targets),
                    _ => {
                        return Err(ServiceError::Input(
                            "verify takes targets or a filter (`where`, with `expect`), not both"
                                .into(),
                        ))
                    }
                };
                json(self.verify(caller, &sel).await?)
            }
            Request::Import { file, text, update } => {
                json(self.import(caller, &text, &file, update).await?)
            }
            Request::Revoke {
                targets,
                filter,
                local_only_reason,
                dry_run,
                expect,
            } => {
                let req = RevokeRequest {
                    targets,
                    filter,
                    local_only_reason,
                    dry_run,
                    expect,
                };
                json(self.revoke(caller, &req).await?)
            }
            Request::Purge { dry_run } => json(self.purge(caller, dry_run).await?),
            Request::AuditTail { n } => json(self.audit_tail(caller, n).await?),
            Request::AuditPage {
                before_seq,
                limit,
                tenant,
                actor,
                action,
                outcome,
            } => {
                let q = AuditQuery {
                    before_seq,
                    limit,
                    tenant,
                    actor,
                    action,
                    outcome,
                };
                json(self.audit_page(caller, &q).await?)
            }
            Request::Session { event } => json(self.session(caller, event).await?),
            Request::AuditVerify => json(self.audit_verify(caller).await?),
            Request::AuditQuarantine { from } => json(self.audit_quarantine(caller, from).await?),
            Request::WhoAmI => json(self.whoami(caller).await?),
            Request::KeysStatus => json(self.keys_status(caller).await?),
            Request::Forecast { days, limit } => json(self.forecast(caller, days, limit).await?),
            Request::Link {
                target,
                new_tenant,
                environment,
                expires_secs,
            } => {
                let req = links::LinkRequest {
                    target,
                    new_tenant,
                    environment,
                    expires_secs,
                };
                json(self.link_issue(caller, &req).await?)
            }
            Request::Links => json(self.links_open(caller).await?),
            Request::LinkCampaign {
                filter,
                expect,
                expires_secs,
            } => {
                let req = CampaignRequest {
                    filter,
                    expect,
                    expires_secs,
                };
                json(self.link_campaign(caller, &req).await?)
            }
            Request::Campaigns => json(self.campaigns(caller).await?),
            Request::Incidents => json(self.incidents(caller).await?),
            Request::DbBackup { path } => json(self.db_backup(caller, &path).await?),
            Request::DbRestoreCheck { path } => json(self.db_restore_check(caller, &path).await?),
            Request::Incident { id } => json(self.incident(caller, id).await?),
            Request::Campaign { id } => json(self.campaign(caller, id).await?),
            Request::LinkCancel { id } => json(self.link_cancel(caller, &id).await?),
            Request::SupportBundle { target, since } => json(
                self.support_bundle(caller, &target, since.as_deref())
                    .await?,
            ),
            Request::Posture => json(self.posture(caller).await?),
            Request::ApikeyCreate {
                name,
                realms,
                environment,
            } => json(
                self.apikey_create(caller, &name, &realms, environment)
                    .await?,
            ),
            Request::ApikeyList => json(self.apikey_list(caller).await?),
            Request::ApikeyRevoke { id } => json(self.apikey_revoke(caller, id).await?),
            Request::AuditPubkey => json(self.audit_pubkey(caller).await?),
            Request::AuditArchive => json(self.audit_archive(caller).await?),
            Request::AuditExport { .. } => {
                self.authorize(caller, Permission::ReadAudit, Action::AuditExport)
                    .await?;
                Err(ServiceError::Input(
                    "audit export streams the file and is only available over the operators' socket or --embedded".into(),
                ))
            }
            Request::ImportStream { .. } => {
                self.authorize(caller, Permission::Import, Action::Import)
                    .await?;
                Err(ServiceError::Input(
                    "import_stream asks for the file piece by piece and is only available over the operators' socket or --embedded".into(),
                ))
            }
            Request::ListStream { .. } => {
                let (p, a) = (Permission::ViewConnections, Action::List);
                self.frames_only(caller, p, a, "list_stream").await
            }
            Request::AuditTailStream { .. } => {
                let (p, a) = (Permission::ReadAudit, Action::AuditTail);
                self.frames_only(caller, p, a, "audit_tail_stream").await
            }
            Request::LinksStream => {
                let (p, a) = (Permission::ReconnectLink, Action::LinkList);
                self.frames_only(caller, p, a, "links_stream").await
            }
            Request::ForecastStream { .. } => {
                let (p, a) = (Permission::ViewConnections, Action::Forecast);
                self.frames_only(caller, p, a, "forecast_stream").await
            }
            Request::Watch => {
                self.authorize(caller, Permission::ViewConnections, Action::Watch)
                    .await?;
                Err(ServiceError::Input(
                    "watch streams changes and is only available over the operators' socket".into(),
                ))
            }
        }
    }

    /// A request answered frame by frame (`op`), which only the operators' socket and
    /// `--embedded`'s client carry: refused once the caller's right to it is checked, so
    /// one without the right hears only that.
    async fn frames_only<T>(
        &self,
        caller: &Actor,
        permission: Permission,
        action: Action,
        op: &str,
    ) -> Result<T> {
        self.authorize(caller, permission, action).await?;
        Err(ServiceError::Input(format!(
            "{op} answers frame by frame and is only available over the operators' socket or --embedded"
        )))
    }

    /// Who the service takes the caller for, with which role.
    pub async fn whoami(&self, caller: &Actor) -> Result<Operator> {
        let Some(op) = caller.as_operator() else {
            return Err(ServiceError::Input(format!(
                "{} is not an operator: only an operator has an account and a role to show",
                caller.name()
            )));
        };
        let shown = format!("identified as role {}", op.role);
        self.record_view(caller, Action::WhoAmI, None, shown)
            .await?;
        Ok(op.clone())
    }

    /// Subscribes to live changes (recording the subscription once, or a refusal).
    pub async fn watch(&self, caller: &Actor) -> Result<WatchFeed> {
        self.authorize(caller, Permission::ViewConnections, Action::Watch)
            .await?;
        let feed = WatchFeed::new(self.engine.clone(), caller);
        let shown = "subscribed to live changes".to_string();
        self.record_view(caller, Action::Watch, None, shown).await?;
        Ok(feed)
    }

    /// Records a refusal of a caller no role is mapped to, whatever it asked.
    pub async fn deny_unmapped(&self, caller: &Actor, what: Action) -> ServiceError {
        match self
            .authorize(caller, Permission::ViewConnections, what)
            .await
        {
            Err(e) => e,
            Ok(()) => {
                ServiceError::Internal(anyhow::anyhow!("an unmapped caller was allowed {what}"))
            }
        }
    }

    /// Finds exactly one connection by tenant name, realm id, or `environment:realm`.
    pub async fn resolve(&self, selector: &str) -> Result<ConnectionRecord> {
        let s = selector.trim();
        if s.is_empty() {
            return Err(ServiceError::Input("empty tenant or realm id".into()));
        }
        let (env, needle) = match s.split_once(':') {
            Some((e, rest)) => match e.parse::<Environment>() {
                Ok(env) => (Some(env), rest),
                Err(_) => (None, s),
            },
            None => (None, s),
        };
        let mut found = self.store().find_connections(needle).await?;
        if let Some(env) = env {
            found.retain(|r| r.environment == env);
        }
        match found.len() {
            0 => Err(ServiceError::NotFound(format!(
                "no connection matches {s:?} (by tenant name or realm id); `qbo-console list` shows them all"
            ))),
            1 => Ok(found.remove(0)),
            _ => Err(ServiceError::Ambiguous(format!(
                "{s:?} matches {} connections: {}; name one by realm id or environment:realm_id",
                found.len(),
                found
                    .iter()
                    .map(|r| format!("{} ({}:{})", r.tenant, r.environment, r.realm_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Counts by status across environments, for summaries.
    pub async fn status_counts(&self) -> Result<Vec<(Environment, Status, i64)>> {
        Ok(self.store().count_by_status().await?)
    }
}

/// Whether every outcome in a bulk refresh succeeded.
pub fn all_refreshed(reports: &[RefreshReport]) -> bool {
    reports.iter().all(|r| r.outcome.is_success())
}
