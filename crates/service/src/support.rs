//! `support-bundle`: what an Intuit support ticket about one connection needs, in one file
//! a support engineer can attach: the connection and its status history, every Intuit call
//! in the window (time, endpoint, HTTP status, error class, `intuit_tid`), the token
//! fingerprints before and after each refresh, the scheduler's attempts and backoff, and the
//! configuration facts Intuit asks about. Built from the audit log and the connection row,
//! which hold fingerprints, never tokens, and from the configuration without its secrets.
//!
//! Every call qbo-console makes to Intuit is recorded as exactly one audit event, in the
//! same transaction as its effect: `refresh` (the token endpoint), `verify` (CompanyInfo),
//! `revoke` and `revoke retried` (the revocation endpoint). The HTTP status follows from the
//! event: the client accepts an answer only when it is a 200, and every refusal it records
//! begins its detail with `HTTP <status>`; a call that got no answer (a timeout, a refused
//! connection) has none. So the log is the record of Intuit calls, and the refresh path
//! writes nothing more for it.

use super::{ConnectionView, Permission, Result, Service, ServiceError};
use chrono::{DateTime, SecondsFormat, Utc};
use qbo_core::identity::Actor;
use qbo_store::audit::{Action, AuditRecord};
use serde::{Deserialize, Serialize};

/// The window when none is asked for.
pub const DEFAULT_SINCE: &str = "30d";
/// The longest window: a bundle is for a ticket, not an archive (that is `audit export`).
const MAX_SINCE_DAYS: u64 = 3650;
/// At most this many events of the connection go into one bundle (the newest).
const MAX_EVENTS: i64 = 20_000;
use qbo_engine::lifecycle::NEXT_ATTEMPT_MARK;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SupportBundle {
    pub generated_at: DateTime<Utc>,
    pub generated_by: String,
    /// The window asked for (`30d`) and where it starts.
    pub window: String,
    pub since: DateTime<Utc>,
    pub connection: ConnectionView,
    pub configuration: ConfigurationFacts,
    pub status_history: Vec<StatusEntry>,
    pub intuit_calls: Vec<IntuitCall>,
    pub refreshes: Vec<RefreshFingerprints>,
    pub scheduler: SchedulerAttempts,
    /// Intuit incidents of the connection's environment within the window (the ones its
    /// failures were part of say so): Intuit's support reads one outage, not one tenant.
    #[serde(default)]
    pub incidents: Vec<BundleIncident>,
    /// True when the window held more events than a bundle takes; the oldest were left out.
    pub truncated: bool,
}

/// An incident in a support bundle, and whether this connection was among its connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleIncident {
    pub incident: qbo_core::incident::Incident,
    pub this_connection: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigurationFacts {
    pub environment: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub api_base: String,
    pub request_hard_expiry: bool,
}

/// One credential event about the connection, with the status it left the connection in
/// when the event implies one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusEntry {
    pub seq: i64,
    pub at: String,
    pub action: String,
    pub outcome: String,
    pub actor: String,
    pub interface: String,
    /// Who acted, in words (`AuditRecord::actor_words`): an operator with its role, or the
    /// daemon's task, a host app, a customer's browser or Intuit, with none.
    #[serde(default)]
    pub by: String,
    pub status_after: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntuitCall {
    pub seq: i64,
    pub at: String,
    /// `token` (refresh), `companyinfo` or `revocation`.
    pub endpoint: String,
    pub action: String,
    pub interface: String,
    /// Who acted, in words (`AuditRecord::actor_words`): an operator with its role, or the
    /// daemon's task, a host app, a customer's browser or Intuit, with none.
    #[serde(default)]
    pub by: String,
    /// None when no HTTP answer came (a timeout, a refused connection).
    pub http_status: Option<u16>,
    pub outcome: String,
    pub error_class: Option<String>,
    pub intuit_tid: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshFingerprints {
    pub seq: i64,
    pub at: String,
    pub interface: String,
    /// Who acted, in words (`AuditRecord::actor_words`): an operator with its role, or the
    /// daemon's task, a host app, a customer's browser or Intuit, with none.
    #[serde(default)]
    pub by: String,
    pub outcome: String,
    /// The refresh token spent (before).
    pub refresh_used: Option<String>,
    /// The refresh token Intuit returned, when it rotated it (after).
    pub refresh_new: Option<String>,
    /// The access token obtained (after).
    pub access_new: Option<String>,
    pub intuit_tid: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchedulerAttempts {
    /// `[refresh] backoff_base` and `backoff_cap`, as configured.
    pub backoff_base: String,
    pub backoff_cap: String,
    pub consecutive_failures: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Every refresh attempt by the scheduler in the window, oldest first.
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub seq: i64,
    pub at: String,
    pub outcome: String,
    pub error_class: Option<String>,
    pub intuit_tid: Option<String>,
    /// Seconds since the scheduler's previous attempt in the window.
    pub secs_since_previous: Option<i64>,
    /// The wait the backoff chose after this attempt failed (`2s`, `1m 4s`).
    pub backoff: Option<String>,
}

/// Which Intuit endpoint an event's call went to; None for an event that made no call (a
/// refusal, a verify that stopped before CompanyInfo because no access token could be had).
fn endpoint_of(ev: &AuditRecord) -> Option<&'static str> {
    let called = ev.outcome == "ok" || (ev.outcome == "failed" && ev.error_class.is_some());
    if !called {
        return None;
    }
    match Action::parse(&ev.action)? {
        Action::Refresh => Some("token"),
        Action::Verify => Some("companyinfo"),
        Action::Revoke | Action::RevokeRetried => Some("revocation"),
        _ => None,
    }
}

/// The HTTP status of a recorded call (see the module's notes).
pub fn http_status_of(ev: &AuditRecord) -> Option<u16> {
    if ev.outcome == "ok" {
        return Some(200);
    }
    let reason = ev.reason.as_deref()?;
    let at = reason.find("HTTP ")? + "HTTP ".len();
    let digits: String = reason[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|s| (100..600).contains(s))
}

/// The status an event left its connection in, when the event implies one.
fn status_after(ev: &AuditRecord) -> Option<&'static str> {
    let action = Action::parse(&ev.action)?;
    Some(
        match (action, ev.outcome.as_str(), ev.error_class.as_deref()) {
            (Action::Refresh, "ok", _) => "active",
            (Action::Refresh, "failed", Some("invalid_grant")) => "needs_reconnect",
            (Action::Revoke | Action::RevokeRetried, "ok", _) => "revoked",
            (Action::Revoke | Action::RevokeRetried, "failed", Some(c))
                if c != "invalid_client" =>
            {
                "revoking"
            }
            (Action::RevokeLocalOnly, "ok", _) => "revoked",
            _ => return None,
        },
    )
}

fn fingerprint(ev: &AuditRecord, label: &str) -> Option<String> {
    ev.fingerprints
        .split_whitespace()
        .filter_map(|p| p.split_once('='))
        .find(|(l, _)| *l == label)
        .map(|(_, fp)| fp.to_string())
}

/// Parses `--since`: a duration such as `30d` or `12h`, at most ten years.
pub fn parse_since(text: &str) -> Result<std::time::Duration> {
    let d = humantime::parse_duration(text.trim()).map_err(|_| {
        ServiceError::Input(format!(
            "support-bundle --since {text:?} is not a duration; use for example 30d, 12h or 90m"
        ))
    })?;
    if d.is_zero() || d.as_secs() > MAX_SINCE_DAYS * 86_400 {
        return Err(ServiceError::Input(format!(
            "support-bundle --since {text:?} must be more than 0 and at most {MAX_SINCE_DAYS}d"
        )));
    }
    Ok(d)
}

impl Service {
    /// A support bundle for one connection over the window (support, admin), recorded
    /// with the window and how many Intuit calls it lists.
    pub async fn support_bundle(
        &self,
        caller: &Actor,
        selector: &str,
        since: Option<&str>,
    ) -> Result<SupportBundle> {
        let window = since.unwrap_or(DEFAULT_SINCE).trim().to_string();
        let span = parse_since(&window)?;
        self.authorize(caller, Permission::SupportBundle, Action::SupportBundle)
            .await?;
        let rec = self.resolve(selector).await?;
        let now = self.engine.clock.now();
        let since =
            now - chrono::Duration::from_std(span).map_err(|e| ServiceError::Internal(e.into()))?;
        let events = self
            .store()
            .audit_for_connection_since(
                rec.id,
                &since.to_rfc3339_opts(SecondsFormat::Micros, true),
                MAX_EVENTS + 1,
            )
            .await?;
        let truncated = events.len() as i64 > MAX_EVENTS;
        let events = &events[usize::from(truncated)..];
        let env = self.config.environments.get(&rec.environment);
        let configuration = ConfigurationFacts {
            environment: rec.environment.to_string(),
            client_id: env.map(|e| e.client_id.clone()).unwrap_or_default(),
            redirect_uri: env.map(|e| e.redirect_uri.clone()).unwrap_or_default(),
            scopes: env.map(|e| e.scopes.clone()).unwrap_or_default(),
            token_endpoint: env.map(|e| e.token_endpoint.clone()).unwrap_or_default(),
            revocation_endpoint: env
                .map(|e| e.revocation_endpoint.clone())
                .unwrap_or_default(),
            api_base: env.map(|e| e.api_base.clone()).unwrap_or_default(),
            request_hard_expiry: self.config.intuit.request_hard_expiry,
        };
        let mut status_history = Vec::new();
        let mut intuit_calls = Vec::new();
        let mut refreshes = Vec::new();
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut last_attempt: Option<DateTime<Utc>> = None;
        for ev in events {
            let Some(action) = Action::parse(&ev.action) else {
                continue;
            };
            // Reads (show, an earlier bundle) are not the connection's history.
            if matches!(action, Action::Show | Action::SupportBundle) {
                continue;
            }
            status_history.push(StatusEntry {
                seq: ev.seq,
                at: ev.at.clone(),
                action: ev.action.clone(),
                outcome: ev.outcome.clone(),
                actor: ev.actor_account.clone(),
                interface: ev.interface.clone(),
                by: ev.actor_words(),
                status_after: status_after(ev).map(str::to_string),
                reason: ev.reason.clone(),
            });
            if let Some(endpoint) = endpoint_of(ev) {
                intuit_calls.push(IntuitCall {
                    seq: ev.seq,
                    at: ev.at.clone(),
                    endpoint: endpoint.to_string(),
                    action: ev.action.clone(),
                    interface: ev.interface.clone(),
                    by: ev.actor_words(),
                    http_status: http_status_of(ev),
                    outcome: ev.outcome.clone(),
                    error_class: ev.error_class.clone(),
                    intuit_tid: ev.intuit_tid.clone(),
                    detail: ev.reason.clone(),
                });
            }
            if action == Action::Refresh && ev.outcome != "denied" {
                refreshes.push(RefreshFingerprints {
                    seq: ev.seq,
                    at: ev.at.clone(),
                    interface: ev.interface.clone(),
                    by: ev.actor_words(),
                    outcome: ev.outcome.clone(),
                    refresh_used: fingerprint(ev, "refresh_used"),
                    refresh_new: fingerprint(ev, "refresh_new"),
                    access_new: fingerprint(ev, "access_new"),
                    intuit_tid: ev.intuit_tid.clone(),
                });
                if ev.interface == "scheduler" {
                    let at = DateTime::parse_from_rfc3339(&ev.at)
                        .ok()
                        .map(|t| t.with_timezone(&Utc));
                    let backoff = ev.reason.as_deref().and_then(|r| {
                        let from = r.rfind(NEXT_ATTEMPT_MARK)? + NEXT_ATTEMPT_MARK.len();
                        Some(r[from..].split(" (").next().unwrap_or("").to_string())
                    });
                    attempts.push(Attempt {
                        seq: ev.seq,
                        at: ev.at.clone(),
                        outcome: ev.outcome.clone(),
                        error_class: ev.error_class.clone(),
                        intuit_tid: ev.intuit_tid.clone(),
                        secs_since_previous: match (last_attempt, at) {
                            (Some(p), Some(t)) => Some((t - p).num_seconds()),
                            _ => None,
                        },
                        backoff,
                    });
                    last_attempt = at.or(last_attempt);
                }
            }
        }
        let shown = format!(
            "support bundle over the last {window} (since {}): {} Intuit calls, {} events",
            since.to_rfc3339_opts(SecondsFormat::Secs, true),
            intuit_calls.len(),
            status_history.len()
        );
        self.record_view(caller, Action::SupportBundle, Some(&rec), shown)
            .await?;
        let refresh_cfg = self.engine.refresh_config();
        let scheduler = SchedulerAttempts {
            backoff_base: humantime::format_duration(refresh_cfg.backoff_base).to_string(),
            backoff_cap: humantime::format_duration(refresh_cfg.backoff_cap).to_string(),
            consecutive_failures: rec.consecutive_failures,
            next_attempt_at: rec.next_attempt_at,
            attempts,
        };
        let involved = self.store().incidents_with(rec.id).await?;
        let incidents = self
            .store()
            .incidents_since(since)
            .await?
            .into_iter()
            .filter(|i| i.environment == rec.environment)
            .map(|i| BundleIncident {
                this_connection: involved.contains(&i.id),
                incident: i,
            })
            .collect();
        Ok(SupportBundle {
            generated_at: now,
            generated_by: caller.name(),
            window,
            since,
            connection: ConnectionView::from_record(rec, now),
            configuration,
            status_history,
            intuit_calls,
            refreshes,
            scheduler,
            incidents,
            truncated,
        })
    }
}

/// Writes a report to `path`, created owner-only (0600) when new: a bundle names tenants
/// and realms, which the operator chooses to share, not every account on the host.
pub fn write_owner_only(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// The bundle as Markdown, to attach to a ticket.
pub fn bundle_markdown(b: &SupportBundle) -> String {
    use std::fmt::Write;
    // Everything from outside (names, Intuit's words) goes into table cells: a `|` or a
    // line break would break the table, and controls are escaped like everywhere else.
    let cell = |t: &str| {
        qbo_core::text::Safe(t)
            .to_string()
            .replace('|', "\\|")
            .replace('\n', " ")
    };
    let opt = |t: &Option<String>| t.as_deref().map_or("-".to_string(), cell);
    let c = &b.connection;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Support bundle: {} ({} realm {})\n",
        cell(&c.tenant),
        c.environment,
        c.realm_id
    );
    let _ = writeln!(
        s,
        "Generated {} by {}, covering the last {} (since {}). Token values, client secrets and authorization codes are never included: tokens appear as keyed fingerprints (`fp:…`).\n",
        b.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        cell(&b.generated_by),
        cell(&b.window),
        b.since.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    if b.truncated {
        let _ = writeln!(
            s,
            "The window held more than {MAX_EVENTS} events; the oldest were left out.\n"
        );
    }
    let _ = writeln!(s, "## Connection\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    let time = |t: Option<DateTime<Utc>>| {
        t.map_or("-".to_string(), |t| {
            t.to_rfc3339_opts(SecondsFormat::Secs, true)
        })
    };
    for (k, v) in [
        ("tenant", cell(&c.tenant)),
        ("realm id", c.realm_id.clone()),
        ("environment", c.environment.to_string()),
        ("company", opt(&c.company_name)),
        ("status", c.status.to_string()),
        ("status reason", opt(&c.status_reason)),
        ("access token expires", time(c.access_expires_at)),
        ("refresh token expires", time(c.refresh_expires_at)),
        ("refresh token issued", time(c.refresh_issued_at)),
        ("hard expiry", time(c.hard_expires_at)),
        ("last refresh", time(c.last_refresh_at)),
        ("last error class", opt(&c.last_error_class)),
        ("last intuit_tid", opt(&c.last_intuit_tid)),
        ("last sync", time(c.last_sync_at)),
        ("connected since", time(Some(c.created_at))),
    ] {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let f = &b.configuration;
    let _ = writeln!(s, "\n## Configuration\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    for (k, v) in [
        ("client id", cell(&f.client_id)),
        ("redirect URI", cell(&f.redirect_uri)),
        ("scopes", cell(&f.scopes.join(" "))),
        ("token endpoint", cell(&f.token_endpoint)),
        ("revocation endpoint", cell(&f.revocation_endpoint)),
        ("API base", cell(&f.api_base)),
        (
            "asks for the hard expiry",
            if f.request_hard_expiry { "yes" } else { "no" }.to_string(),
        ),
    ] {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(s, "\n## Intuit calls ({})\n", b.intuit_calls.len());
    let _ = writeln!(
        s,
        "| time | endpoint | by | HTTP status | outcome | error class | intuit_tid | detail |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for call in &b.intuit_calls {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            call.at,
            call.endpoint,
            cell(&call.by),
            call.http_status
                .map_or("no answer".to_string(), |h| h.to_string()),
            call.outcome,
            opt(&call.error_class),
            opt(&call.intuit_tid),
            opt(&call.detail)
        );
    }
    let _ = writeln!(s, "\n## Token fingerprints per refresh\n");
    let _ = writeln!(
        s,
        "| time | by | outcome | refresh token before | refresh token after | access token after | intuit_tid |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for r in &b.refreshes {
        let after = match (&r.refresh_new, r.outcome.as_str()) {
            (Some(fp), _) => fp.clone(),
            (None, "ok") => "unchanged".to_string(),
            (None, _) => "-".to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.at,
            cell(&r.by),
            r.outcome,
            opt(&r.refresh_used),
            after,
            opt(&r.access_new),
            opt(&r.intuit_tid)
        );
    }
    let sch = &b.scheduler;
    let _ = writeln!(s, "\n## Scheduler attempts and backoff\n");
    let _ = writeln!(
        s,
        "Backoff: `[refresh] backoff_base` {}, doubling per consecutive failure up to `backoff_cap` {} (Intuit's Retry-After wins when longer). Consecutive failures now: {}; next attempt: {}.\n",
        sch.backoff_base,
        sch.backoff_cap,
        sch.consecutive_failures,
        time(sch.next_attempt_at)
    );
    let _ = writeln!(
        s,
        "| time | outcome | error class | intuit_tid | since previous attempt | backoff chosen |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for a in &sch.attempts {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            a.at,
            a.outcome,
            opt(&a.error_class),
            opt(&a.intuit_tid),
            a.secs_since_previous
                .map_or("-".to_string(), |x| format!("{x}s")),
            opt(&a.backoff)
        );
    }
    let _ = writeln!(
        s,
        "\n## Intuit incidents in the window ({})\n",
        b.incidents.len()
    );
    if b.incidents.is_empty() {
        let _ = writeln!(
            s,
            "None: no outage of Intuit's was recognised in this environment."
        );
    }
    for bi in &b.incidents {
        let i = &bi.incident;
        let _ = writeln!(
            s,
            "- {}{}; Intuit said: {}; sample intuit_tids: {}",
            i.headline(),
            if bi.this_connection {
                " — this connection's failures were part of it"
            } else {
                ""
            },
            i.detail,
            if i.sample_tids.is_empty() {
                "none".to_string()
            } else {
                i.sample_tids.join(" ")
            }
        );
    }
    let _ = writeln!(s, "\n## Status history\n");
    let _ = writeln!(
        s,
        "| seq | time | action | outcome | by | status after | reason |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for h in &b.status_history {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            h.seq,
            h.at,
            h.action,
            h.outcome,
            cell(&h.by),
            h.status_after.as_deref().unwrap_or("-"),
            opt(&h.reason)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        action: &str,
        outcome: &str,
        class: Option<&str>,
        reason: Option<&str>,
    ) -> AuditRecord {
        AuditRecord {
            seq: 1,
            at: "2026-01-01T00:00:00.000000Z".into(),
            actor_account: "ops".into(),
            actor_uid: 1,
            actor_ssh: None,
            interface: "cli".into(),
            role: "admin".into(),
            action: action.into(),
            connection_id: Some(1),
            environment: Some("sandbox".into()),
            realm_id: Some("1".into()),
            tenant: Some("t".into()),
            outcome: outcome.into(),
            error_class: class.map(str::to_string),
            reason: reason.map(str::to_string),
            intuit_tid: None,
            request_id: None,
            fingerprints: String::new(),
            actor_kind: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn a_recorded_call_has_the_status_its_event_implies_and_a_refusal_is_no_call() {
        let ok = record("refresh", "ok", None, Some("refresh token rotated"));
        assert_eq!(
            (endpoint_of(&ok), http_status_of(&ok)),
            (Some("token"), Some(200))
        );
        let failed = record(
            "verify",
            "failed",
            Some("rate_limited"),
            Some("HTTP 429 fault 003001"),
        );
        assert_eq!(
            (endpoint_of(&failed), http_status_of(&failed)),
            (Some("companyinfo"), Some(429))
        );
        let grant = record(
            "refresh",
            "failed",
            Some("invalid_grant"),
            Some("Intuit refused the refresh token (HTTP 400 invalid_grant: Token invalid); the customer must reconnect"),
        );
        assert_eq!(http_status_of(&grant), Some(400));
        assert_eq!(status_after(&grant), Some("needs_reconnect"));
        let timeout = record(
            "revoke",
            "failed",
            Some("transient"),
            Some("revoke not confirmed by Intuit (timed out waiting for Intuit); tokens kept"),
        );
        assert_eq!(
            (endpoint_of(&timeout), http_status_of(&timeout)),
            (Some("revocation"), None)
        );
        let denied = record(
            "refresh",
            "denied",
            None,
            Some("role viewer lacks permission for refresh"),
        );
        assert_eq!(endpoint_of(&denied), None);
        let no_token = record(
            "verify",
            "failed",
            None,
            Some("could not get an access token: HTTP 503"),
        );
        assert_eq!(endpoint_of(&no_token), None);
    }

    #[test]
    fn since_takes_a_duration_within_ten_years_and_names_the_bad_value() {
        assert_eq!(parse_since("30d").unwrap().as_secs(), 30 * 86_400);
        for bad in ["", "30", "thirty days", "0s", "4000d"] {
            let e = parse_since(bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{bad:?}")) && e.contains("--since"),
                "{e}"
            );
        }
    }
}
