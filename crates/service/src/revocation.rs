//! `revoke` and `purge`: ending tenants' grants at Intuit, one by one or chosen with the
//! console's filter language, and deleting long-revoked tenants (their audit history stays).

use super::filter::{Filter, VALID_FORMS};
use super::{Permission, Result, Service, ServiceError, Target};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use futures_util::stream::{self, StreamExt};
use qbo_core::identity::Actor;
use qbo_engine::lifecycle::{RevokeMode, RevokeOutcome};
use qbo_store::audit::AboutConnection;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use serde::{Deserialize, Serialize};

/// What to revoke and how: named targets or a filter (exactly one), at Intuit or locally.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRequest {
    #[serde(default)]
    pub targets: Vec<String>,
    /// The console's filter language (`status:needs_reconnect idle>90d`).
    #[serde(default, rename = "where")]
    pub filter: Option<String>,
    /// With `where`: the count the operator confirmed; if the filter selects another
    /// number when the request arrives, nothing is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<u64>,
    /// `--local-only --reason TEXT`: forget the tokens without Intuit.
    #[serde(default)]
    pub local_only_reason: Option<String>,
    /// Only say what would be revoked.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeReport {
    #[serde(flatten)]
    pub target: Target,
    #[serde(flatten)]
    pub outcome: RevokeOutcome,
}

/// `purge`: what was (or, in a dry run, would be) deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeReport {
    pub dry_run: bool,
    pub revoked_days: u32,
    /// Connections revoked before this time are purged.
    pub revoked_before: DateTime<Utc>,
    pub purged: Vec<Target>,
}

enum Chosen {
    Named(Vec<String>),
    Where(String),
}

impl RevokeRequest {
    /// Checks the request before anything is read or written: bad input changes nothing.
    fn checked(&self) -> Result<(Chosen, RevokeMode)> {
        if self.expect.is_some() && self.filter.is_none() {
            return Err(ServiceError::Input(
                "expect goes with where: it is the count the filter must select".into(),
            ));
        }
        let chosen = match (&self.filter, self.targets.is_empty()) {
            (Some(_), false) | (None, true) => {
                return Err(ServiceError::Input(
                    "revoke needs targets or --where FILTER (exactly one of them)".into(),
                ))
            }
            (None, false) => Chosen::Named(self.targets.clone()),
            (Some(text), true) => {
                let f = Filter::parse(text).map_err(|e| ServiceError::Input(e.to_string()))?;
                if f.is_empty() {
                    return Err(ServiceError::Input(format!(
                        "revoke --where {text:?} selects every connection; name at least one term ({VALID_FORMS})"
                    )));
                }
                Chosen::Where(text.clone())
            }
        };
        let mode = match &self.local_only_reason {
            None => RevokeMode::AtIntuit,
            Some(r) if r.trim().is_empty() => {
                return Err(ServiceError::Input(
                    "revoke --local-only needs --reason TEXT saying why the tokens are forgotten without Intuit".into(),
                ))
            }
            Some(r) => RevokeMode::LocalOnly {
                reason: r.trim().to_string(),
            },
        };
        Ok((chosen, mode))
    }
}

impl Service {
    /// Revokes the chosen connections, each with its own outcome (as for `refresh`). A dry
    /// run names them and changes nothing; it is recorded as a read.
    pub async fn revoke(&self, caller: &Actor, req: &RevokeRequest) -> Result<Vec<RevokeReport>> {
        let (chosen, mode) = req.checked()?;
        self.authorize(caller, Permission::Revoke, Action::Revoke)
            .await?;
        if matches!(chosen, Chosen::Where(_)) {
            // Every role that may revoke may act in bulk today, so this refusal cannot
            // happen; kept so that a future role with revoke alone is refused, as `revoke`.
            self.authorize(caller, Permission::BulkActions, Action::Revoke)
                .await?;
        }
        if !req.dry_run {
            self.ensure_audit_appendable().await?;
        }
        let targets = match &chosen {
            Chosen::Named(names) => self.select(&super::Selection::Named(names.clone())).await?,
            Chosen::Where(f) => {
                self.select(&super::Selection::Matching {
                    filter: f.clone(),
                    expect: req.expect,
                })
                .await?
            }
        };
        if req.dry_run {
            let shown = format!(
                "would revoke {} connections ({})",
                targets.len(),
                req.filter
                    .as_deref()
                    .map_or_else(|| "named".to_string(), |f| format!("where {f:?}"))
            );
            self.record_view(caller, Action::RevokeDryRun, None, shown)
                .await?;
            return Ok(targets
                .into_iter()
                .map(|rec| RevokeReport {
                    target: Target::of(&rec),
                    outcome: RevokeOutcome::WouldRevoke { status: rec.status },
                })
                .collect());
        }
        let engine = self.engine.clone();
        let mode = &mode;
        Ok(stream::iter(targets)
            .map(|rec| {
                let engine = engine.clone();
                async move {
                    let outcome = match engine.revoke(rec.id, caller, mode).await {
                        Ok(o) => o,
                        Err(e) => RevokeOutcome::Error {
                            detail: format!("{e:#}"),
                        },
                    };
                    RevokeReport {
                        target: Target::of(&rec),
                        outcome,
                    }
                }
            })
            .buffered(self.parallelism)
            .collect::<Vec<_>>()
            .await)
    }

    /// Deletes the connections revoked more than `[retention] revoked_days` ago, recording
    /// one `purge` event with the count and one per connection (their earlier events stay).
    pub async fn purge(&self, caller: &Actor, dry_run: bool) -> Result<PurgeReport> {
        self.authorize(caller, Permission::Revoke, Action::Purge)
            .await?;
        let now = self.engine.clock.now();
        let cutoff = now - ChronoDuration::days(i64::from(self.revoked_days));
        let mut old = Vec::new();
        for id in self.store().revoked_before(cutoff).await? {
            if let Some(r) = self.store().get_connection(id).await? {
                old.push(r);
            }
        }
        let rule = format!("[retention] revoked_days = {}", self.revoked_days);
        if dry_run {
            let shown = format!("would purge {} revoked connections ({rule})", old.len());
            self.record_view(caller, Action::PurgeDryRun, None, shown)
                .await?;
        } else {
            // Also with nothing to delete: the request is on record like any other.
            let mut tx = self.store().begin().await?;
            let mut purged = Vec::with_capacity(old.len());
            for r in old {
                if tx.delete_revoked(r.id).await? {
                    purged.push(r);
                }
            }
            for r in &purged {
                let mut ev = AuditEvent::new(now, caller, Action::Purge, Outcome::Ok).about(r);
                ev.reason = Some(format!(
                    "deleted: revoked at {} ({rule}); its audit history is kept",
                    r.updated_at.to_rfc3339()
                ));
                self.engine.audit(&mut tx, &ev).await?;
            }
            let mut ev = AuditEvent::new(now, caller, Action::Purge, Outcome::Ok);
            ev.reason = Some(format!(
                "purged {} revoked connections revoked before {} ({rule})",
                purged.len(),
                cutoff.to_rfc3339()
            ));
            self.engine.commit_audited(tx, &[ev]).await?;
            old = purged;
        }
        Ok(PurgeReport {
            dry_run,
            revoked_days: self.revoked_days,
            revoked_before: cutoff,
            purged: old.iter().map(Target::of).collect(),
        })
    }
}
