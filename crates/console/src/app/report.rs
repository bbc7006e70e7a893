//! What a finished action says on the message line.

use super::Tone;
use crate::event::Done;
use qbo_service::{RefreshOutcome, RevokeOutcome, VerifyOutcome};

/// One line for a finished action: a single connection's outcome, or the tally of a bulk
/// one with its first failure spelled out.
/// One connection's outcome in a tally: its tenant, why it failed (if it did), and whether
/// it was skipped (nothing to do for a pending or revoked one, which is not a failure).
type Tallied = (String, Option<String>, bool);

pub(super) fn summarize(done: &Done) -> (Tone, String) {
    let (verb, outcomes): (&str, Vec<Tallied>) = match done {
        Done::Refreshed(reports) => (
            "refresh",
            reports
                .iter()
                .map(|r| {
                    let skipped = matches!(r.outcome, RefreshOutcome::Skipped { .. });
                    (
                        r.target.tenant.clone(),
                        refresh_failure(&r.outcome),
                        skipped,
                    )
                })
                .collect(),
        ),
        Done::Verified(reports) => (
            "verify",
            reports
                .iter()
                .map(|r| {
                    let skipped = matches!(r.outcome, VerifyOutcome::Skipped { .. });
                    (r.target.tenant.clone(), verify_failure(&r.outcome), skipped)
                })
                .collect(),
        ),
        Done::Revoked(reports) => (
            "revoke",
            reports
                .iter()
                .map(|r| {
                    let skipped = matches!(r.outcome, RevokeOutcome::Skipped { .. });
                    (r.target.tenant.clone(), revoke_failure(&r.outcome), skipped)
                })
                .collect(),
        ),
    };
    let skipped = outcomes.iter().filter(|(_, _, s)| *s).count();
    let failed: Vec<&Tallied> = outcomes
        .iter()
        .filter(|(_, f, s)| f.is_some() && !s)
        .collect();
    let and_skipped = if skipped > 0 {
        format!(", {skipped} skipped (nothing to {verb})")
    } else {
        String::new()
    };
    match (outcomes.as_slice(), failed.first()) {
        ([], _) => (Tone::Warn, format!("{verb}: nothing was done")),
        ([(tenant, None, _)], _) => (Tone::Ok, format!("{tenant}: {verb} ok")),
        ([(tenant, Some(why), true)], _) => (Tone::Warn, format!("{tenant}: {verb} {why}")),
        ([(tenant, Some(why), false)], _) => {
            (Tone::Error, format!("{tenant}: {verb} failed: {why}"))
        }
        (all, None) => (
            Tone::Ok,
            format!(
                "{verb} of {}: {} ok{and_skipped}",
                all.len(),
                all.len() - skipped
            ),
        ),
        (all, Some((tenant, why, _))) => (
            Tone::Error,
            format!(
                "{verb} of {}: {} ok, {} failed{and_skipped}; first: {tenant}: {}",
                all.len(),
                all.len() - failed.len() - skipped,
                failed.len(),
                why.as_deref().unwrap_or("")
            ),
        ),
    }
}

fn with_tid(text: String, tid: &Option<String>) -> String {
    match tid {
        Some(t) => format!("{text} (intuit_tid {t})"),
        None => text,
    }
}

fn refresh_failure(o: &RefreshOutcome) -> Option<String> {
    Some(match o {
        RefreshOutcome::Refreshed { .. } | RefreshOutcome::AlreadyRefreshed { .. } => return None,
        RefreshOutcome::Failed {
            error_class,
            detail,
            intuit_tid,
            ..
        } => with_tid(format!("{error_class}: {detail}"), intuit_tid),
        // The engine's reason already says what follows (the customer must reconnect, or
        // the answer was lost): adding it here printed it twice.
        RefreshOutcome::NeedsReconnect { reason, intuit_tid } => {
            with_tid(format!("invalid_grant: {reason}"), intuit_tid)
        }
        RefreshOutcome::ConfigError { detail, intuit_tid } => {
            with_tid(format!("configuration: {detail}"), intuit_tid)
        }
        RefreshOutcome::Skipped { reason } => format!("skipped: {reason}"),
        RefreshOutcome::Busy { holder } => format!("busy: held by {holder}; try again"),
        RefreshOutcome::Error { detail } => format!("error: {detail}; nothing was stored"),
    })
}

fn revoke_failure(o: &RevokeOutcome) -> Option<String> {
    Some(match o {
        RevokeOutcome::Revoked { .. }
        | RevokeOutcome::RevokedLocally { .. }
        | RevokeOutcome::WouldRevoke { .. } => return None,
        RevokeOutcome::Revoking {
            error_class,
            detail,
            intuit_tid,
            ..
        } => with_tid(
            format!("{error_class}: {detail}; shows revoking, tokens kept, the daemon retries"),
            intuit_tid,
        ),
        RevokeOutcome::ConfigError { detail, intuit_tid } => {
            with_tid(format!("configuration: {detail}"), intuit_tid)
        }
        RevokeOutcome::Skipped { reason } => format!("skipped: {reason}"),
        RevokeOutcome::Busy { holder } => format!("busy: held by {holder}; try again"),
        RevokeOutcome::Error { detail } => format!("error: {detail}; nothing was stored"),
    })
}

fn verify_failure(o: &VerifyOutcome) -> Option<String> {
    Some(match o {
        VerifyOutcome::Ok { .. } => return None,
        VerifyOutcome::Failed {
            error_class,
            detail,
            intuit_tid,
        } => with_tid(format!("{error_class}: {detail}"), intuit_tid),
        VerifyOutcome::RefreshFailed { refresh } => format!(
            "no access token: {}",
            refresh_failure(refresh).unwrap_or_else(|| "refresh did not finish".into())
        ),
        VerifyOutcome::Skipped { reason } => format!("skipped: {reason}"),
        VerifyOutcome::Error { detail } => format!("error: {detail}; nothing was recorded"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine's reason names the remedy itself; the status line said it twice.
    #[test]
    fn a_refusal_names_the_remedy_once() {
        let said = refresh_failure(&RefreshOutcome::NeedsReconnect {
            reason: "Intuit refused the refresh token (HTTP 400 invalid_grant); the customer must reconnect".into(),
            intuit_tid: Some("1-abc".into()),
        })
        .unwrap();
        assert_eq!(
            said.matches("the customer must reconnect").count(),
            1,
            "{said}"
        );
        assert!(
            said.starts_with("invalid_grant: ") && said.ends_with("(intuit_tid 1-abc)"),
            "{said}"
        );
    }
}
