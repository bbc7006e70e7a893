//! How one refresh, revocation or verification of a connection ended: the words every
//! report, the audit log and the console use for it.

use crate::domain::{ErrorClass, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RefreshOutcome {
    /// This call refreshed the connection.
    Refreshed {
        access_expires_at: DateTime<Utc>,
        rotated: bool,
        intuit_tid: Option<String>,
    },
    /// Another refresher finished a refresh after this call was made; its result stands.
    AlreadyRefreshed {
        access_expires_at: Option<DateTime<Utc>>,
    },
    /// Intuit could not be reached or answered unusably; tokens kept, retried later.
    Failed {
        error_class: ErrorClass,
        detail: String,
        intuit_tid: Option<String>,
        next_attempt_at: Option<DateTime<Utc>>,
    },
    /// Intuit said invalid_grant: the customer must reconnect.
    NeedsReconnect {
        reason: String,
        intuit_tid: Option<String>,
    },
    /// Our own configuration is wrong (invalid_client, missing environment): nothing marked.
    ConfigError {
        detail: String,
        intuit_tid: Option<String>,
    },
    /// Nothing to refresh in this state.
    Skipped { reason: String },
    /// Another process held the connection for longer than a lease; try again.
    Busy { holder: String },
    /// The refresh ended in an error before reaching a verdict (a stored value that will
    /// not open, a lease taken over, the database): nothing was stored for it. Never made
    /// by the engine itself: a bulk report uses it so that one connection's error does not
    /// hide what happened to the others.
    Error { detail: String },
}

impl RefreshOutcome {
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            RefreshOutcome::Refreshed { .. } | RefreshOutcome::AlreadyRefreshed { .. }
        )
    }
}

pub fn outcome_name(o: &RefreshOutcome) -> &'static str {
    match o {
        RefreshOutcome::Refreshed { .. } => "refreshed",
        RefreshOutcome::AlreadyRefreshed { .. } => "already_refreshed",
        RefreshOutcome::Failed { .. } => "failed",
        RefreshOutcome::NeedsReconnect { .. } => "needs_reconnect",
        RefreshOutcome::ConfigError { .. } => "config_error",
        RefreshOutcome::Skipped { .. } => "skipped",
        RefreshOutcome::Busy { .. } => "busy",
        RefreshOutcome::Error { .. } => "error",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RevokeOutcome {
    /// Intuit confirmed; no ciphertext of the connection remains.
    Revoked { intuit_tid: Option<String> },
    /// The tokens were forgotten locally without Intuit (`--local-only`).
    RevokedLocally { reason: String },
    /// Intuit could not be reached or did not confirm: tokens kept, status `revoking`, the
    /// daemon retries at `next_attempt_at`.
    Revoking {
        error_class: ErrorClass,
        detail: String,
        intuit_tid: Option<String>,
        next_attempt_at: DateTime<Utc>,
    },
    /// Our own configuration is wrong (invalid_client, a missing environment): nothing marked.
    ConfigError {
        detail: String,
        intuit_tid: Option<String>,
    },
    /// Nothing to revoke (already revoked, never connected).
    Skipped { reason: String },
    /// Another process held the connection for longer than a lease; try again.
    Busy { holder: String },
    /// What a dry run (`--where` without `--yes`) would revoke; nothing was done.
    WouldRevoke { status: Status },
    /// An error before any verdict (a token that will not open, the database): nothing
    /// stored. Made by bulk reports, not by the engine.
    Error { detail: String },
}

impl RevokeOutcome {
    /// Whether the connection ends this call with no grant left to worry about.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            RevokeOutcome::Revoked { .. }
                | RevokeOutcome::RevokedLocally { .. }
                | RevokeOutcome::Skipped { .. }
                | RevokeOutcome::WouldRevoke { .. }
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            RevokeOutcome::Revoked { .. } => "revoked",
            RevokeOutcome::RevokedLocally { .. } => "revoked_locally",
            RevokeOutcome::Revoking { .. } => "revoking",
            RevokeOutcome::ConfigError { .. } => "config_error",
            RevokeOutcome::Skipped { .. } => "skipped",
            RevokeOutcome::Busy { .. } => "busy",
            RevokeOutcome::WouldRevoke { .. } => "would_revoke",
            RevokeOutcome::Error { .. } => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum VerifyOutcome {
    Ok {
        company_name: String,
        intuit_tid: Option<String>,
    },
    Failed {
        error_class: ErrorClass,
        detail: String,
        intuit_tid: Option<String>,
    },
    /// Getting a usable access token failed first; the refresh outcome says why.
    RefreshFailed {
        refresh: RefreshOutcome,
    },
    Skipped {
        reason: String,
    },
    /// The verify ended in an error before reaching a verdict; nothing was recorded for it
    /// (see `RefreshOutcome::Error`).
    Error {
        detail: String,
    },
}

impl VerifyOutcome {
    pub fn is_success(&self) -> bool {
        matches!(self, VerifyOutcome::Ok { .. })
    }
}

pub fn describe_refresh(o: &RefreshOutcome) -> String {
    match o {
        RefreshOutcome::Refreshed { .. } => "refreshed".into(),
        RefreshOutcome::AlreadyRefreshed { .. } => "already refreshed".into(),
        RefreshOutcome::Failed {
            error_class,
            detail,
            ..
        } => format!("{error_class}: {detail}"),
        RefreshOutcome::NeedsReconnect { reason, .. } => reason.clone(),
        RefreshOutcome::ConfigError { detail, .. } => detail.clone(),
        RefreshOutcome::Skipped { reason } => reason.clone(),
        RefreshOutcome::Busy { holder } => format!("busy: held by {holder}"),
        RefreshOutcome::Error { detail } => format!("error: {detail}"),
    }
}
