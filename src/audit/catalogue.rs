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
