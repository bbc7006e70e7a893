//! `revoke` and `purge` on the command line: the typed confirmation, the dry run of a
//! `--where`, progress on stderr, one outcome per tenant.

use super::{exit, print_json, Failure};
use chrono::{DateTime, Utc};
use qbo_core::present::relative;
use qbo_core::text::{terminal_safe_lines, Safe};
use qbo_service::{Client, PurgeReport, RevokeOutcome, RevokeReport, RevokeRequest, Target};
use std::io::{BufRead, IsTerminal, Write};

pub(super) struct RevokeCall {
    pub request: RevokeRequest,
    pub yes: bool,
    pub json: bool,
}

/// Refuses, before anything is opened, a revoke that would have to ask and cannot.
pub(super) fn check_can_confirm(call: &RevokeCall) -> Result<(), Failure> {
    let asks = !call.yes && call.request.filter.is_none();
    if asks && !std::io::stdin().is_terminal() {
        return Err(Failure {
            code: exit::BAD_INPUT,
            message: "revoke asks the operator to type the realm id or the count, and standard input is not a terminal; pass --yes to revoke without asking".into(),
        });
    }
    Ok(())
}

pub(super) async fn revoke(client: &dyn Client, call: RevokeCall) -> Result<u8, Failure> {
    let now = chrono::Utc::now();
    let planned = client
        .revoke(RevokeRequest {
            dry_run: true,
            ..call.request.clone()
        })
        .await?;
    let bulk = call.request.filter.is_some();
    if bulk && !call.yes {
        if call.json {
            print_json(&planned)?;
        } else {
            println!("{}", plan(&planned));
        }
        return Ok(exit::OK);
    }
    if planned.is_empty() {
        if call.json {
            print_json(&planned)?;
        } else {
            println!("nothing to revoke: no connection matches");
        }
        return Ok(exit::OK);
    }
    if !call.yes {
        eprintln!("{}", plan(&planned));
        confirm(&planned)?;
    }
    let mut reports = Vec::with_capacity(planned.len());
    let n = planned.len();
    for (i, p) in planned.iter().enumerate() {
        let t = &p.target;
        // One call per tenant: each is committed before the next starts, so an interrupted
        // run leaves every tenant either revoked, revoking (retried) or untouched.
        let selector = format!("{}:{}", t.environment, t.realm_id);
        let mut one = client
            .revoke(RevokeRequest {
                targets: vec![selector],
                filter: None,
                local_only_reason: call.request.local_only_reason.clone(),
                dry_run: false,
                expect: None,
            })
            .await?;
        let report = one.pop().unwrap_or_else(|| RevokeReport {
            target: t.clone(),
            outcome: RevokeOutcome::Skipped {
                reason: "connection no longer exists".into(),
            },
        });
        eprintln!(
            "revoke [{}/{n}] {}",
            i + 1,
            terminal_safe_lines(&line(&report, now))
        );
        reports.push(report);
    }
    if call.json {
        print_json(&reports)?;
    } else {
        println!("{}", summary(&reports, now));
    }
    Ok(if reports.iter().all(|r| r.outcome.is_success()) {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// Asks for the realm id (one tenant) or the count (several), as typed words: a reflex
/// `y` cannot end a grant.
fn confirm(planned: &[RevokeReport]) -> Result<(), Failure> {
    let expected = match planned {
        [one] => one.target.realm_id.clone(),
        many => many.len().to_string(),
    };
    let what = if planned.len() == 1 {
        "the realm id"
    } else {
        "the number of connections"
    };
    eprint!("type {what} to revoke at Intuit: ");
    let _ = std::io::stderr().flush();
    let mut typed = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut typed)
        .map_err(|e| Failure {
            code: exit::BAD_INPUT,
            message: format!("cannot read the confirmation: {e}; nothing was revoked"),
        })?;
    if typed.trim() != expected {
        return Err(Failure {
            code: exit::BAD_INPUT,
            message: format!(
                "confirmation {:?} is not {what} ({expected}); nothing was revoked",
                typed.trim()
            ),
        });
    }
    Ok(())
}

fn name(t: &Target) -> String {
    format!(
        "{} ({}:{})",
        Safe(&t.tenant),
        t.environment,
        Safe(t.realm_id.as_str())
    )
}

fn plan(planned: &[RevokeReport]) -> String {
    let mut s = format!("would revoke {} connection(s):\n", planned.len());
    for p in planned {
        let status = match &p.outcome {
            RevokeOutcome::WouldRevoke { status } => status.to_string(),
            other => other.name().to_string(),
        };
        s.push_str(&format!("  {} [{status}]\n", name(&p.target)));
    }
    s.push_str("nothing was revoked; rerun with --yes to revoke them");
    terminal_safe_lines(&s).into_owned()
}

fn line(r: &RevokeReport, now: DateTime<Utc>) -> String {
    let tid = |t: &Option<String>| {
        t.as_ref()
            .map(|t| format!(" (intuit_tid {})", Safe(t)))
            .unwrap_or_default()
    };
    let what = match &r.outcome {
        RevokeOutcome::Revoked { intuit_tid } => format!(
            "revoked at Intuit; local tokens destroyed{}",
            tid(intuit_tid)
        ),
        RevokeOutcome::RevokedLocally { reason } => format!(
            "tokens forgotten locally, NOT revoked at Intuit ({})",
            Safe(reason)
        ),
        RevokeOutcome::Revoking {
            error_class,
            detail,
            intuit_tid,
            next_attempt_at,
        } => format!(
            "REVOKING: Intuit did not confirm ({error_class}: {}){}; tokens kept, the daemon retries {}",
            Safe(detail),
            tid(intuit_tid),
            relative(*next_attempt_at, now)
        ),
        RevokeOutcome::ConfigError { detail, intuit_tid } => {
            format!("CONFIGURATION ERROR: {}{}", Safe(detail), tid(intuit_tid))
        }
        RevokeOutcome::Skipped { reason } => format!("skipped: {}", Safe(reason)),
        RevokeOutcome::Busy { holder } => format!(
            "BUSY: another process ({}) holds it; run the revoke again",
            Safe(holder)
        ),
        RevokeOutcome::WouldRevoke { status } => format!("would revoke ({status})"),
        RevokeOutcome::Error { detail } => format!("ERROR: {}; nothing was stored", Safe(detail)),
    };
    format!("{}: {what}", name(&r.target))
}

fn summary(reports: &[RevokeReport], now: DateTime<Utc>) -> String {
    let mut s = String::new();
    for r in reports {
        s.push_str(&line(r, now));
        s.push('\n');
    }
    let done = reports
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                RevokeOutcome::Revoked { .. } | RevokeOutcome::RevokedLocally { .. }
            )
        })
        .count();
    s.push_str(&format!("{done} of {} revoked", reports.len()));
    terminal_safe_lines(&s).into_owned()
}

pub(super) async fn purge(client: &dyn Client, yes: bool, json: bool) -> Result<u8, Failure> {
    let r = client.purge(!yes).await?;
    if json {
        print_json(&r)?;
    } else {
        println!("{}", purge_text(&r));
    }
    Ok(exit::OK)
}

fn purge_text(r: &PurgeReport) -> String {
    let mut s = String::new();
    for t in &r.purged {
        s.push_str(&format!("  {}\n", name(t)));
    }
    let rule = format!(
        "revoked before {} ([retention] revoked_days = {})",
        r.revoked_before.format("%Y-%m-%d %H:%M UTC"),
        r.revoked_days
    );
    if r.dry_run {
        s.push_str(&format!(
            "would purge {} connection(s) {rule}; nothing was deleted; rerun with --yes to delete them (their audit history stays)",
            r.purged.len()
        ));
    } else {
        s.push_str(&format!(
            "purged {} connection(s) {rule}; their audit history stays",
            r.purged.len()
        ));
    }
    terminal_safe_lines(&s).into_owned()
}
