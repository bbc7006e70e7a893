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
//! Role refusals are not separate actions: a caller refused an action is recorded under
//! that action with outcome `denied` (see `service::refusals` for the per-minute summary).

use super::event::Outcome;
use serde::{Serialize, Serializer};

/// Whether an event names a connection (connection_id, environment, realm_id, tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Always names one connection.
    Connection,
    /// Names one when the action was about one (for example `show`), otherwise none.
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
    /// What happened, in one sentence, and what the optional fields then hold.
    pub summary: &'static str,
    pub outcomes: &'static [Outcome],
    pub target: Target,
    pub fields: &'static [Field],
    /// Labels of the `label=fp:…` pairs in `fingerprints`.
    pub fingerprints: &'static [&'static str],
}

macro_rules! catalogue {
    ($(
        $variant:ident = $name:literal {
            group: $group:literal,
            summary: $summary:literal,
            outcomes: [$($outcome:ident),* $(,)?],
            target: $target:ident,
            fields: [$($field:ident),* $(,)?],
            fingerprints: [$($fp:literal),* $(,)?] $(,)?
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
                summary: $summary,
                outcomes: &[$(Outcome::$outcome),*],
                target: Target::$target,
                fields: &[$(Field::$field),*],
                fingerprints: &[$($fp),*],
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
        summary: "A connection was created or updated from an import file; reason names the file and line.",
        outcomes: [Ok],
        target: Connection,
        fields: [Reason],
        fingerprints: ["refresh", "access"],
    },
    Refresh = "refresh" {
        group: "credentials",
        summary: "A refresh at Intuit, by the scheduler, an operator (cli, tui) or the token service (interface says which); on failure error_class and reason say why.",
        outcomes: [Ok, Failed, Denied],
        target: Connection,
        fields: [ErrorClass, Reason, IntuitTid],
        fingerprints: ["refresh_used", "access_new", "refresh_new"],
    },
    RefreshInBulk = "refresh in bulk" {
        group: "credentials",
        summary: "A caller without the bulk permission asked to refresh every due or every connection (recorded only as a refusal).",
        outcomes: [Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    Verify = "verify" {
        group: "credentials",
        summary: "CompanyInfo was called to check a connection; the outcome is its sync status.",
        outcomes: [Ok, Failed, Denied],
        target: Connection,
        fields: [ErrorClass, Reason, IntuitTid],
        fingerprints: [],
    },
    Revoke = "revoke" {
        group: "revocation",
        summary: "A revoke at Intuit: ok when Intuit confirmed and the local tokens were destroyed; failed when Intuit could not be reached (the tokens are kept and the daemon retries).",
        outcomes: [Ok, Failed, Denied],
        target: Connection,
        fields: [ErrorClass, Reason, IntuitTid],
        fingerprints: ["refresh_revoked", "refresh_kept"],
    },
    RevokeRetried = "revoke retried" {
        group: "revocation",
        summary: "The daemon retried a revoke left `revoking`; fields as for revoke.",
        outcomes: [Ok, Failed],
        target: Connection,
        fields: [ErrorClass, Reason, IntuitTid],
        fingerprints: ["refresh_revoked", "refresh_kept"],
    },
    RevokeLocalOnly = "local-only revoke" {
        group: "revocation",
        summary: "The local tokens were destroyed without Intuit's confirmation; reason holds the operator's stated reason.",
        outcomes: [Ok],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
    },
    RevokeInBulk = "revoke in bulk" {
        group: "revocation",
        summary: "A caller without the bulk permission asked to revoke by filter (recorded only as a refusal).",
        outcomes: [Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    RevokeDryRun = "revoke dry run" {
        group: "revocation",
        summary: "A caller was shown what a revoke would act on.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    Purge = "purge" {
        group: "retention",
        summary: "A revoked connection older than [retention] revoked_days was deleted (one event each, its earlier events stay in the log), then one event without a connection with the count.",
        outcomes: [Ok, Denied],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
    },
    PurgeDryRun = "purge dry run" {
        group: "retention",
        summary: "A caller was shown what a purge would delete.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    KeyRotation = "key rotation" {
        group: "keys",
        summary: "Progress of `keys rotate`: started, progress, finished or stopped, in reason; failed when it stopped before every value was re-sealed.",
        outcomes: [Ok, Failed],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    KeysStatus = "keys status" {
        group: "keys",
        summary: "A caller was shown which keys seal the stored tokens.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    List = "list" {
        group: "views",
        summary: "A caller was shown the connection list; reason says how many rows.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    Show = "show" {
        group: "views",
        summary: "A caller was shown one connection.",
        outcomes: [Ok, Denied],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
    },
    Watch = "watch" {
        group: "views",
        summary: "A caller subscribed to the change feed (the console does on start).",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    WhoAmI = "whoami" {
        group: "views",
        summary: "A caller asked which account and role the daemon sees.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    ConsoleOpened = "console opened" {
        group: "sessions",
        summary: "An operator opened the console (interface tui).",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    ConsoleClosed = "console closed" {
        group: "sessions",
        summary: "An operator closed the console.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    AuditTail = "audit tail" {
        group: "audit",
        summary: "A caller read the newest events.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    AuditPage = "audit page" {
        group: "audit",
        summary: "A caller read a page of the log (the console's audit view, `audit tail` with filters); reason holds the filter.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    AuditVerify = "audit verify" {
        group: "audit",
        summary: "A caller verified the chain in the database; reason holds the verdict.",
        outcomes: [Ok, Denied],
        target: None,
        fields: [Reason],
        fingerprints: [],
    },
    DemoSeed = "demo seed" {
        group: "demo",
        summary: "`qbo-console demo` created a sample connection (demo databases only).",
        outcomes: [Ok],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
    },
    // ---- health checks, the forecast and alerts (issue 16) ----
    Forecast = "forecast" {
        group: "views",
        summary: "A caller was shown the forecast (the CLI or the console's forecast view); reason gives the horizon and how many connections are at risk.",
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
    },
    AlertDeliveryFailed = "alert delivery failed" {
        group: "alerts",
        summary: "A delivery attempt of an alert failed; reason names the webhook, the error and whether it will be retried (and when) or was given up after [alerts] max_attempts.",
        outcomes: [Failed],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
    },
    // ---- reconnect links and the OAuth callback (issue 14) ----
    LinkIssued = "link issued" {
        group: "reconnect links",
        summary: "A reconnect link was made for a connection (`link`, or Intuit's Reconnect URL for the callback interface); reason says until when, and for `link --new` that the pending row was created.",
        outcomes: [Ok, Denied],
        target: Optional,
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
    },
    ConsentDenied = "consent denied" {
        group: "reconnect links",
        summary: "The customer declined at Intuit (error=access_denied, or another error Intuit sent back); the link stays open for another try.",
        outcomes: [Denied],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
    },
    CodeExchanged = "code exchanged" {
        group: "reconnect links",
        summary: "The callback exchanged the authorization code (once) and stored the new tokens on the same connection, which is active again; the link is completed.",
        outcomes: [Ok],
        target: Connection,
        fields: [Reason, IntuitTid],
        fingerprints: ["access_new", "refresh_new"],
    },
    ExchangeFailed = "exchange failed" {
        group: "reconnect links",
        summary: "Intuit refused or did not answer the code exchange; nothing was stored and the link stays open.",
        outcomes: [Failed],
        target: Connection,
        fields: [ErrorClass, Reason, IntuitTid],
        fingerprints: [],
    },
    DuplicateCallback = "duplicate callback" {
        group: "reconnect links",
        summary: "A callback repeated a state already consumed (a refresh, a double click): answered with a harmless page, its code never exchanged.",
        outcomes: [Denied],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
    },
    RealmMismatch = "realm mismatch" {
        group: "reconnect links",
        summary: "The consent came back for another company than the link's (or one already connected as another tenant): the code was not exchanged and the tenant's tokens and realm are untouched; reason names both realms.",
        outcomes: [Denied],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
    },
    StateRejected = "state rejected" {
        group: "reconnect links",
        summary: "A callback's state was missing, unknown, expired, or not bound to the calling browser: nothing exchanged; names the connection when the state was known.",
        outcomes: [Denied],
        target: Optional,
        fields: [Reason],
        fingerprints: [],
    },
    CustomerDisconnected = "customer disconnected" {
        group: "reconnect links",
        summary: "Intuit's Disconnect URL named the connection's realm: the customer disconnected the app in QuickBooks; one refresh attempt (recorded as refresh) confirms it.",
        outcomes: [Ok],
        target: Connection,
        fields: [Reason],
        fingerprints: [],
    },
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
    fn names_are_unique() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
