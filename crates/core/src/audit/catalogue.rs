//! The catalogue: every action the audit log can hold, what it records and which fields it
//! fills. It is the one place an action is named. Code records an `Action`, never a string,
//! so an event cannot be written that the catalogue does not describe; the README's table
//! is generated from `CATALOGUE` and a test fails when the two differ, or when an entry has
//! no test that performs it.
//!
//! Every event also carries the fields common to all (seq, at, actor_account, actor_uid,
//! actor_ssh, interface, role, action, outcome, request_id, prev_hash, hash). An entry lists
//! only what varies: whether a connection is named, which of the optional fields may be
//! set, and the labels of the token fingerprints it may carry.
//!
//! Each entry also says which kinds of actor may record it (`actors`): an operator, one of
//! the daemon's own tasks, a host application (service), a customer's browser or Intuit.
//! An entry that does not say is an operator's act only.
//!
//! Role refusals are not separate actions: a caller refused an action is recorded under
//! that action with outcome `denied` (see `service::refusals` for the per-minute summary).

use super::event::Outcome;
use crate::identity::Kind;
use serde::{Serialize, Serializer};

/// Whether an event names a connection (connection_id, environment, realm_id, tenant). A
/// `denied` event never does: a caller is refused before the connection is looked up, so a
/// refusal says nothing about whether it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Always names one connection.
    Connection,
    /// Names one when the action was about one (a `purge` event per connection deleted,
    /// then one with the count), otherwise none.
    Optional,
    /// Never names a connection.
    None,
}

/// Optional fields an event may fill, beyond the common ones and the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ErrorClass,
    Reason,
    IntuitTid,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::ErrorClass => "error_class",
            Field::Reason => "reason",
            Field::IntuitTid => "intuit_tid",
        }
    }
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy)]
pub struct EventSpec {
    pub action: Action,
    /// Which family the action belongs to, for the README's grouping.
    pub group: &'static str,
    /// Who or what records it (an operator's verb, the scheduler, the daemon), for the
    /// README; empty when the summary already says.
    pub by: &'static str,
    /// What happened, in one sentence, and what the optional fields then hold.
    pub summary: &'static str,
    pub outcomes: &'static [Outcome],
    pub target: Target,
    pub fields: &'static [Field],
    /// Labels of the `label=fp:…` pairs in `fingerprints`.
    pub fingerprints: &'static [&'static str],
    /// The kinds of actor that may record it (`actor_kind`). Only an operator's event
    /// carries a role.
    pub actors: &'static [Kind],
}

macro_rules! catalogue {
    (@by) => { "" };
    (@by $by:literal) => { $by };
    (@actors) => { &[Kind::Operator] };
    (@actors $($kind:ident),+) => { &[$(Kind::$kind),+] };
    ($(
        $variant:ident = $name:literal {
            group: $group:literal,
            $(by: $by:literal,)?
            summary: $summary:literal,
            outcomes: [$($outcome:ident),* $(,)?],
            target: $target:ident,
            fields: [$($field:ident),* $(,)?],
            fingerprints: [$($fp:literal),* $(,)?]
            $(, actors: [$($kind:ident),+ $(,)?])? $(,)?
        }
    ),* $(,)?) => {
        /// An action the audit log records. Its text (`as_str`) is what the log stores.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $($variant),*
        }

        /// Every entry, in the order the README lists them.
        pub const CATALOGUE: &[EventSpec] = &[$(
            EventSpec {
                action: Action::$variant,
                group: $group,
                by: catalogue!(@by $($by)?),
                summary: $summary,
                outcomes: &[$(Outcome::$outcome),*],
                target: Target::$target,
                fields: &[$(Field::$field),*],
                fingerprints: &[$($fp),*],
                actors: catalogue!(@actors $($($kind),+)?),
            }
        ),*];

        impl Action {
            pub const ALL: &[Action] = &[$(Action::$variant),*];

            /// The action's name as stored in the log and accepted by `--action`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name),*
                }
            }

            /// The action a stored name stands for, if the catalogue has it.
            pub fn parse(name: &str) -> Option<Action> {
                match name {
                    $($name => Some(Action::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

impl Action {
    pub fn spec(self) -> &'static EventSpec {
        // CATALOGUE is built from the same list as the enum, in the same order.
        &CATALOGUE[self as usize]
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

catalogue! {
    Import = "import" {
        group: "credentials",
        by: "`import` (admin)",
        summary: "A connection was created or updated from an import file; reason names the file and line.",
        outcomes: [Ok, Denied],
        target: Connection,
        fields: [Reason],
        fingerprints: ["refresh", "access"],
    },
    Refresh = "refresh" {
        group: "credentials",
        by: "the scheduler; `refresh` (support, admin); the console's `r`; `verify` when the access token has expired",
        summary: "A refresh at Intuit, by the scheduler, an operator (cli, tui) or the token service (interface says which); reason says whether the refresh token rotated, or on failure why, with the wait before the next attempt when the daemon retries; error_class on failure.",
        outcomes: [Ok, Failed, Denied],
        target: Connection,
        fields: [ErrorClass, Reason, IntuitTid],
        fingerprints: ["refresh_used", "access_new", "refresh_new"],
        actors: [Operator, Scheduler, HealthCheck, Service, Intuit],
    },
    RefreshInBulk = "refresh in bulk" {
        group: "credentials",
        by: "`refresh --due`, `refresh --all` (admin)",
        summary: "A caller without the bulk permission asked to refresh every due or every connection (recorded only as a refusal).",
        outcomes: [Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    Verify = "verify" {
        group: "credentials",
        by: "`verify` (support, admin); the console's `v`; the health check; the callback, after a reconnect; Intuit's Disconnect URL, in the background",
        summary: "A check of a connection with CompanyInfo; the outcome is its sync status, with error_class, reason and intuit_tid as Intuit answered. Failed without error_class when no access token could be had: CompanyInfo was not called (the refresh tried has its own event).",
        outcomes: [Ok, Failed, Denied],
        target: Connection,
        fields: [ErrorClass, Reason, IntuitTid],
        fingerprints: [],
        actors: [Operator, HealthCheck, Customer, Intuit],
    },
    Revoke = "revoke" {
        group: "revocation",
        by: "`revoke` (admin); the console's `R`",
        summary: "A revoke at Intuit: ok when Intuit confirmed and the local tokens were destroyed; failed when Intuit could not be reached (the tokens are kept and the daemon retries).",
        outcomes: [Ok, Failed, Denied],
        target: Connection,
        fields: [ErrorClass, Reason, IntuitTid],
        fingerprints: ["refresh_revoked", "refresh_kept"],
    },
    RevokeRetried = "revoke retried" {
        group: "revocation",
        by: "the daemon's scheduler; `revoke` of a connection left `revoking`",
        summary: "A revoke of a connection left `revoking` (Intuit had not confirmed an earlier one), retried by the daemon or asked again by an operator; fields as for revoke.",
        outcomes: [Ok, Failed],
        target: Connection,
        fields: [ErrorClass, Reason, IntuitTid],
        fingerprints: ["refresh_revoked", "refresh_kept"],
        actors: [Operator, RevokeRetry],
    },
    RevokeLocalOnly = "local-only revoke" {
        group: "revocation",
        by: "`revoke --local-only --reason` (admin)",
        summary: "The local tokens were destroyed without Intuit's confirmation; reason holds the operator's stated reason.",
        outcomes: [Ok],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
    },
    RevokeDryRun = "revoke dry run" {
        group: "revocation",
        by: "`revoke` (admin), which asks for one before acting to show what it will act on; `revoke --where` without `--yes` stops there",
        summary: "A caller was shown what a revoke would act on; reason says how many and the filter. A refusal is recorded as `revoke`, denied.",
        outcomes: [Ok],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    Purge = "purge" {
        group: "retention",
        by: "`purge --yes` (admin)",
        summary: "A revoked connection older than [retention] revoked_days was deleted (one event each, its earlier events stay in the log), then one event without a connection with the count (also when there was nothing to delete).",
        outcomes: [Ok, Denied],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
    },
    PurgeDryRun = "purge dry run" {
        group: "retention",
        by: "`purge` without `--yes` (admin)",
        summary: "A caller was shown what a purge would delete; reason says how many and the rule. A refusal is recorded as `purge`, denied.",
        outcomes: [Ok],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    KeyRotation = "key rotation" {
        group: "keys",
        by: "`keys rotate` (admin, in process)",
        summary: "Progress of `keys rotate`: started, progress, finished or stopped, in reason; failed when it stopped before every value was re-sealed.",
        outcomes: [Ok, Failed],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    KeysStatus = "keys status" {
        group: "keys",
        by: "`keys status` (auditor, admin)",
        summary: "A caller was shown which keys seal the stored tokens.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    List = "list" {
        group: "views",
        by: "`list` (viewer+); a console's window only when refused",
        summary: "A caller was shown the connection list; reason says how many rows. The console's windows (the rows it reads as the operator scrolls, filters and sorts) are not recorded one by one: its `console opened` and `console closed` say who was reading, and when.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    Show = "show" {
        group: "views",
        by: "`show`; the console's detail pane (viewer+)",
        summary: "A caller was shown one connection; reason says how many of its audit events were shown with it.",
        outcomes: [Ok, Denied],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
    },
    Watch = "watch" {
        group: "views",
        by: "`watch`; the console on start (viewer+)",
        summary: "A caller subscribed to the change feed (the console does on start).",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    WhoAmI = "whoami" {
        group: "views",
        by: "any socket client asking who it is (the console on start)",
        summary: "A caller asked which account and role the daemon sees.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    ConsoleOpened = "console opened" {
        group: "sessions",
        by: "the console (viewer+)",
        summary: "An operator opened the console (interface tui).",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    ConsoleClosed = "console closed" {
        group: "sessions",
        by: "the console (viewer+)",
        summary: "An operator closed the console.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    AuditTail = "audit tail" {
        group: "audit",
        by: "`audit tail` without filters (auditor, admin)",
        summary: "A caller read the newest events.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    AuditPage = "audit page" {
        group: "audit",
        by: "`audit tail` with filters; the console's audit view (auditor, admin)",
        summary: "A caller read a page of the log (the console's audit view, `audit tail` with filters); reason holds the filter.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    AuditVerify = "audit verify" {
        group: "audit",
        by: "`audit verify` (auditor, admin)",
        summary: "A caller verified the chain in the database; reason holds the verdict.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    ChainRepaired = "chain repaired" {
        group: "audit",
        by: "`audit quarantine --from SEQ` (admin)",
        summary: "An admin moved the rows stored past the chain head (written outside the daemon, which blocked every audited action) to the audit_quarantine table, kept forever, and the chain continued from its last good head; reason holds how many rows, their sequence range, every removed row's hash, how many of them linked like chained events, and the head the chain continues from.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    DemoSeed = "demo seed" {
        group: "demo",
        by: "`qbo-console demo`",
        summary: "`qbo-console demo` created a sample connection (demo databases only).",
        outcomes: [Ok],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
    },
    // Support bundles and the posture report (issue 15).
    SupportBundle = "support bundle" {
        group: "reports",
        by: "`support-bundle` (support, admin); the console's `b` on the detail pane",
        summary: "A caller was given a support bundle for one connection (its Intuit calls, fingerprints, backoff and configuration facts, never a secret); reason holds the window and how many Intuit calls it lists.",
        outcomes: [Ok, Denied],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
    },
    PostureReport = "posture report" {
        group: "reports",
        by: "`report posture` (auditor, admin)",
        summary: "A caller was shown the security posture report (scopes, redirect URIs, encryption, roles, audit chain, retention, outbound endpoints); reason holds the chain verdict.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    // ---- health checks, the forecast and alerts (issue 16) ----
    Forecast = "forecast" {
        group: "views",
        summary: "A caller was shown the forecast (the CLI or the console's forecast view); reason gives the horizon, how many risks were found and how many shown (or that it was streamed).",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    IncidentsShown = "incidents shown" {
        group: "views",
        summary: "A caller was shown the incidents (`incidents`) or one of them with its connections (`incidents show ID`); reason says which and how many.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    AlertDelivered = "alert delivered" {
        group: "alerts",
        summary: "An alert (or digest) was POSTed to a configured webhook and accepted; reason names the webhook, the condition and the attempt.",
        outcomes: [Ok],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
        actors: [Alerts],
    },
    AlertDeliveryFailed = "alert delivery failed" {
        group: "alerts",
        summary: "A delivery attempt of an alert failed; reason names the webhook, the error and whether it will be retried (and when) or was given up after [alerts] max_attempts.",
        outcomes: [Failed],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
        actors: [Alerts],
    },
    // ---- backups (issue 26) ----
    DatabaseBackup = "database backup" {
        group: "backups",
        summary: "An admin took an online snapshot of the SQLite database (`db backup FILE`); reason holds the file, its size and SHA-256, the schema version, the connection count and the audit chain head it holds. The manifest beside it is signed like audit exports.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    RestoreCheck = "restore check" {
        group: "backups",
        summary: "An admin drilled a restore of a backup against the live database (`db restore-check FILE`), sending nothing to Intuit; reason holds how many connections it would bring back live, recoverable within Intuit's 24-hour grace, lost (the customer must reconnect) or gone, and how many audit events it lacks.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    DatabaseRestored = "database restored" {
        group: "backups",
        summary: "An admin restored a backup in place of the database (`db restore FILE`, the daemon stopped): the first event of the restored chain after its head; reason holds the backup's file and SHA-256, where the replaced database was kept, and the drill's figures.",
        outcomes: [Ok],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    // ---- incidents (issue 25) ----
    IncidentOpened = "incident opened" {
        group: "incidents",
        by: "the daemon's scheduler (the token endpoint); its health checks (the accounting API); its revoke retries (the revoke endpoint)",
        summary: "Many connections of one environment failed at one of Intuit's endpoints the same way within [scheduler.incidents] window (or Intuit rejected our client credentials): one incident opened, and that environment's refreshes (token endpoint), health checks (accounting API) or revoke retries (revoke endpoint) stop but for a probe every probe_every. reason holds its number, class (server_error, rate_limited, unreachable, garbled, invalid_client), scope (environment and endpoint), the connections affected, the share of calls failing and sample intuit_tids; error_class the engine's class of the failures.",
        outcomes: [Ok],
        target: None,
        fields: [Reason, ErrorClass],
        fingerprints: [],
        actors: [Scheduler, HealthCheck, RevokeRetry],
    },
    IncidentClosed = "incident closed" {
        group: "incidents",
        by: "the daemon's scheduler (the token endpoint); its health checks (the accounting API); its revoke retries (the revoke endpoint)",
        summary: "An incident ended: recovery_probes probes in a row succeeded (or, for our credentials, a refresh succeeded; or none of its companies is live, or waiting on a revoke, any more). reason holds its number, how long it lasted, the connections it affected and how many were made due at once: for the token endpoint, the catch-up of refreshes, most urgent first; for the accounting API, a health check each; for the revoke endpoint, a retry of each revoke.",
        outcomes: [Ok],
        target: None,
        fields: [Reason],
        fingerprints: [],
        actors: [Scheduler, HealthCheck, RevokeRetry],
    },
    // ---- reconnect links and the OAuth callback (issue 14) ----
    LinkIssued = "link issued" {
        group: "reconnect links",
        summary: "A reconnect link was made for a connection (`link` by an operator, or Intuit's Reconnect URL for a customer's browser); reason says until when, and for `link --new` that the pending row was created; the `link` fingerprint is what the customer's browser is named by when it uses the link. Intuit's Reconnect URL naming a realm not connected here (in the environment it serves) records it denied, naming no connection and no link.",
        outcomes: [Ok, Denied],
        target: Optional,
        fields: [Reason],
        fingerprints: ["link"],
        actors: [Operator, Customer],
    },
    LinkCampaign = "link campaign" {
        group: "reconnect links",
        summary: "An operator made a reconnect campaign (`link --where FILTER --csv FILE`): one `link issued` per connection the filter selected, in the same transaction, and this one event for the campaign; reason holds its number, the filter, the count, until when the links are valid and which selected connections were left out and why.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    LinkList = "link list" {
        group: "reconnect links",
        summary: "A caller was shown the open reconnect links; reason says how many.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    LinkOpened = "link opened" {
        group: "reconnect links",
        summary: "A browser opened a reconnect link and was sent to Intuit with a fresh state; reason holds the browser's address and user agent (escaped). Denied when the link is unknown, used, cancelled or expired.",
        outcomes: [Ok, Denied],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
        actors: [Customer],
    },
    LinkCancelled = "link cancelled" {
        group: "reconnect links",
        summary: "An operator cancelled an open reconnect link (`link cancel`).",
        outcomes: [Ok, Denied],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
    },
    LinkExpired = "link expired" {
        group: "reconnect links",
        summary: "An open reconnect link reached its expiry unused and was closed.",
        outcomes: [Ok],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
        actors: [LinkExpiry],
    },
    ConsentDenied = "consent denied" {
        group: "reconnect links",
        summary: "The customer declined at Intuit (error=access_denied, or another error Intuit sent back); the link stays open for another try.",
        outcomes: [Denied],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
        actors: [Customer],
    },
    CodeExchanged = "code exchanged" {
        group: "reconnect links",
        summary: "The callback exchanged the authorization code (once) and stored the new tokens on the same connection, which is active again; the link is completed.",
        outcomes: [Ok],
        target: Connection,
        fields: [Reason, IntuitTid],
        fingerprints: ["access_new", "refresh_new"],
        actors: [Customer],
    },
    ExchangeFailed = "exchange failed" {
        group: "reconnect links",
        summary: "Intuit refused or did not answer the code exchange; nothing was stored and the link stays open.",
        outcomes: [Failed],
        target: Connection,
        fields: [ErrorClass, Reason, IntuitTid],
        fingerprints: [],
        actors: [Customer],
    },
    DuplicateCallback = "duplicate callback" {
        group: "reconnect links",
        summary: "A callback repeated a state already consumed (a refresh, a double click): answered with a harmless page, its code never exchanged.",
        outcomes: [Denied],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
        actors: [Customer],
    },
    RealmMismatch = "realm mismatch" {
        group: "reconnect links",
        summary: "The consent came back for another company than the link's (or one already connected as another tenant): the code was not exchanged and the tenant's tokens and realm are untouched; reason names both realms.",
        outcomes: [Denied],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
        actors: [Customer],
    },
    StateRejected = "state rejected" {
        group: "reconnect links",
        summary: "A callback's state was missing, unknown, expired, or not bound to the calling browser: nothing exchanged; names the connection when the state was known.",
        outcomes: [Denied],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
        actors: [Customer],
    },
    CustomerDisconnected = "customer disconnected" {
        group: "reconnect links",
        summary: "Intuit's Disconnect URL was opened for the connection's realm (by anyone: the request proves nothing); nothing is refreshed: a check with the stored access token follows in the background while it is valid (recorded as verify), otherwise the next scheduled refresh tells. Denied, naming no connection, when the realm is not connected here.",
        outcomes: [Ok, Denied],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
        actors: [Intuit],
    },
    // ---- The token API: service keys, hand-outs, refusals, host-app sync reports ----
    ApiKeyCreated = "api key created" {
        group: "token api",
        summary: "An admin created a service API key (shown once, stored only as a hash); reason names the service, its id and the connections it may read.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: ["api_key"],
    },
    ApiKeysListed = "api keys listed" {
        group: "token api",
        summary: "A caller was shown the service API keys (names and scopes, never the keys).",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    ApiKeyRevoked = "api key revoked" {
        group: "token api",
        summary: "An admin revoked a service API key; the token API refuses it from then on. Reason names the service and its id.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    AccessTokenHandedOut = "access token handed out" {
        group: "token api",
        summary: "The token API handed an access token value to a service for the first time; reason names the service, the fingerprint the token.",
        outcomes: [Ok],
        target: Connection,
        fields: [Reason],
        fingerprints: ["access"],
        actors: [Service],
    },
    AccessTokenHandouts = "access token handouts" {
        group: "token api",
        summary: "Further hand-outs of one access token value to one service, summarised once that value was superseded (or the daemon stopped): reason holds the count, the first and the last time.",
        outcomes: [Ok],
        target: Connection,
        fields: [Reason],
        fingerprints: ["access"],
        actors: [Service],
    },
    AccessTokenRefused = "access token refused" {
        group: "token api",
        summary: "The token API refused a request: a missing, unknown or revoked key, or a connection the key may not read (named when it exists; the caller is answered as if it did not); reason says which.",
        outcomes: [Denied],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
        actors: [Service],
    },
    SyncReported = "sync reported" {
        group: "token api",
        summary: "A host app reported its last sync of a connection through the token API; reason holds the status, the record count and the detail.",
        outcomes: [Ok],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
        actors: [Service],
    },
    // ---- Intuit's webhooks ----
    DataChangeReported = "data change reported" {
        group: "intuit webhooks",
        summary: "A signed Intuit webhook reported a data change at a connection's realm (one event per event and connection; naming none when the realm is not connected here); reason holds the event id, what changed and when. Committed with the event id and the connection's last data change before Intuit is answered 200; a redelivery of the same id records nothing.",
        outcomes: [Ok],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
        actors: [Intuit],
    },
    // ---- audit export, offline verification and retention (issue 15) ----
    AuditExport = "audit export" {
        group: "audit",
        summary: "A caller exported a slice of the log with a signed manifest; reason holds the filters, the row count, the sequence range and the file's SHA-256.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    AuditPubkey = "audit pubkey" {
        group: "audit",
        summary: "A caller was shown the public key that verifies export manifests.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    AuditArchive = "audit archive" {
        group: "retention",
        summary: "Events older than [retention] audit_days were written to an archive with its signed manifest and removed from the database; reason holds the archive file, its SHA-256 and the archived head (the chain continues from it).",
        outcomes: [Ok, Failed, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
        actors: [Operator, Retention],
    },
}

/// The README's table opens after this line…
pub const README_START: &str = "<!-- catalogue:start (generated from crates/core/src/audit/catalogue.rs; QBO_CONSOLE_UPDATE_README=1 cargo test --test suite catalogue:: rewrites it) -->";
/// …and closes before this one.
pub const README_END: &str = "<!-- catalogue:end -->";

/// The catalogue as Markdown: one table per group, in the order the catalogue first names
/// each group. The README holds exactly this between `README_START` and `README_END`.
pub fn markdown_table() -> String {
    let mut groups: Vec<&str> = Vec::new();
    for spec in CATALOGUE {
        if !groups.contains(&spec.group) {
            groups.push(spec.group);
        }
    }
    let mut out = String::new();
    for group in groups {
        out.push_str(&format!("\n**{group}**\n\n"));
        out.push_str("| action | recorded by | actor kinds | outcomes | connection | optional fields | fingerprints | what it records |\n");
        out.push_str("|---|---|---|---|---|---|---|---|\n");
        for spec in CATALOGUE.iter().filter(|s| s.group == group) {
            let outcomes: Vec<&str> = spec.outcomes.iter().map(|o| o.as_str()).collect();
            let fields: Vec<String> = spec
                .fields
                .iter()
                .map(|f| format!("`{}`", f.as_str()))
                .collect();
            let fps: Vec<String> = spec.fingerprints.iter().map(|f| format!("`{f}`")).collect();
            let dash = |v: Vec<String>| {
                if v.is_empty() {
                    "—".to_string()
                } else {
                    v.join(", ")
                }
            };
            let actors: Vec<&str> = spec.actors.iter().map(|k| k.as_str()).collect();
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} | {} | {} |\n",
                spec.action.as_str(),
                cell(if spec.by.is_empty() { "—" } else { spec.by }),
                actors.join(", "),
                outcomes.join(", "),
                match spec.target {
                    Target::Connection => "always",
                    Target::Optional => "when about one",
                    Target::None => "never",
                },
                dash(fields),
                dash(fps),
                cell(spec.summary),
            ));
        }
    }
    out
}

/// Text safe inside a Markdown table cell: a `|` would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_through_its_name_and_finds_its_own_entry() {
        for &a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(a.spec().action, a);
        }
        assert_eq!(Action::ALL.len(), CATALOGUE.len());
    }

    #[test]
    fn the_markdown_table_has_one_row_per_entry_under_its_group() {
        let md = markdown_table();
        let rows = md.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(rows, CATALOGUE.len(), "{md}");
        assert!(md.contains("**credentials**"), "{md}");
        assert!(
            md.contains(
                "| `import` | `import` (admin) | operator | ok, denied | always | `reason` | `refresh`, `access` |"
            ),
            "{md}"
        );
        assert_eq!(cell("a | b"), "a \\| b");
    }

    /// Every kind of actor that is not an operator is named by some entry, and every
    /// entry names at least one kind: an action no actor may record could never pass
    /// `assert_catalogued`.
    #[test]
    fn every_actor_kind_is_catalogued_somewhere() {
        for kind in Kind::ALL {
            assert!(
                CATALOGUE.iter().any(|s| s.actors.contains(kind)),
                "no catalogue entry may be recorded by {kind}"
            );
        }
        assert!(CATALOGUE.iter().all(|s| !s.actors.is_empty()));
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
