//! The rules, one function each. Each looks at one connection and says when it dies by
//! its cause, if it does within any horizon, and what would save it.

use super::{Cause, Context, Finding, Risk, Rule, Subject};
use chrono::Duration;
use qbo_core::domain::{Condition, ErrorClass, Status};

/// Every rule, graver first. A new rule is a function here and a line in this list.
pub const RULES: &[Rule] = &[
    needs_reconnect,
    customer_disconnected,
    credentials_rejected,
    refresh_failing,
    hard_limit,
    no_sync,
    link_unused,
    link_expired,
];

fn day(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// Intuit answered invalid_grant: dead already, since the refresh that found it.
fn needs_reconnect(s: &Subject<'_>, _: &Context<'_>) -> Option<Finding> {
    let r = s.record;
    (r.status == Status::NeedsReconnect).then(|| Finding {
        risk: Risk::NeedsReconnect,
        cause: Cause::DeadGrant,
        date: r.last_refresh_at.unwrap_or(r.updated_at),
        // Under its group's heading ("Intuit refused the refresh token: the customer must
        // reconnect"), the line says only what is this connection's own: Intuit's words.
        reason: dead_grant_words(r.status_reason.as_deref()),
        action: "send the customer a reconnect link: only they can authorize the app again".into(),
    })
}

/// What Intuit said when it refused the grant, without the words the group's heading
/// already says: `HTTP 400 invalid_grant: Token invalid` from the stored reason
/// `Intuit refused the refresh token (HTTP 400 invalid_grant: Token invalid); the customer
/// must reconnect`.
fn dead_grant_words(status_reason: Option<&str>) -> String {
    let Some(reason) = status_reason else {
        return "refused (invalid_grant)".into();
    };
    let inner = reason
        .strip_prefix("Intuit refused the refresh token (")
        .and_then(|rest| rest.rsplit_once(')'))
        .map(|(said, _)| said);
    match inner {
        Some(said) if !said.trim().is_empty() => said.trim().to_string(),
        _ => reason.to_string(),
    }
}

/// The API refused tokens a refresh had just produced (401, fault 3200/3201): the
/// customer disconnected the app inside QuickBooks, and the OAuth service has not caught
/// up yet. The status stays live so keep-alive refreshes go on (see `lifecycle::verify`).
fn customer_disconnected(s: &Subject<'_>, _: &Context<'_>) -> Option<Finding> {
    let at = s.facts.disconnected_at?;
    s.record.status.is_live().then(|| Finding {
        risk: Risk::CustomerDisconnected,
        cause: Cause::CustomerDisconnected,
        date: at,
        reason: format!(
            "customer disconnected: QuickBooks refuses fresh tokens (401) since {}",
            day(at)
        ),
        action: "ask the customer whether they disconnected the app; send a reconnect link".into(),
    })
}

/// Intuit rejected the environment's client credentials: the scheduler refreshes nothing
/// in it, so each refresh token lapses on its own date.
fn credentials_rejected(s: &Subject<'_>, ctx: &Context<'_>) -> Option<Finding> {
    let r = s.record;
    if !r.status.is_live() {
        return None;
    }
    let pause = ctx
        .paused
        .iter()
        .find(|p| p.environment == r.environment && p.until > ctx.now)?;
    Some(Finding {
        risk: Risk::CredentialsRejected,
        cause: Cause::OurCredentials,
        date: r.refresh_expires_at.unwrap_or(ctx.now),
        reason: format!(
            "environment {} paused: Intuit rejected the client credentials ({}); the refresh token lapses unused",
            r.environment,
            &pause.reason
        ),
        action: format!(
            "fix client_id / client_secret in [environments.{}] and restart the daemon",
            r.environment
        ),
    })
}

/// Refreshes keep failing (not for a dead grant: those are `needs_reconnect`), so the
/// refresh token reaches Intuit's 100 days unused on `refresh_expires_at`.
fn refresh_failing(s: &Subject<'_>, _: &Context<'_>) -> Option<Finding> {
    let r = s.record;
    // The same test as the console's `↯ failing` and `status:failing` (`Condition`).
    if Condition::of(r.status, r.consecutive_failures) != Condition::Failing {
        return None;
    }
    let lapses = r.refresh_expires_at?;
    let class = r.last_error_class.as_deref().and_then(ErrorClass::parse);
    let (cause, action) = match class {
        Some(ErrorClass::Transient) | Some(ErrorClass::RateLimited) => (
            Cause::IntuitFailing,
            "check Intuit's status and this host's route to Intuit; the daemon keeps retrying, a refresh that succeeds saves it",
        ),
        _ => (
            Cause::RefreshError,
            "read the last error (qbo-console show) and fix its cause; then `qbo-console refresh` it",
        ),
    };
    Some(Finding {
        risk: Risk::RefreshFailing,
        cause,
        date: lapses,
        // The specifics first: a forecast line cut to its screen keeps the error.
        reason: format!(
            "{} refreshes failed in a row, last {}: {}; the refresh token lapses after 100 days unused",
            r.consecutive_failures,
            r.last_refresh_at.map(day).unwrap_or_else(|| "-".into()),
            r.last_error_detail.as_deref().unwrap_or("no detail")
        ),
        action: action.into(),
    })
}

/// Intuit's hard limit: five years from the original consent, whatever we do.
fn hard_limit(s: &Subject<'_>, _: &Context<'_>) -> Option<Finding> {
    let r = s.record;
    let at = r.hard_expires_at?;
    r.status.is_live().then(|| Finding {
        risk: Risk::HardLimit,
        cause: Cause::FiveYearLimit,
        date: at,
        reason: format!(
            "Intuit's 5-year limit from the original consent ends on {}",
            day(at)
        ),
        action: format!(
            "send the customer a reconnect link before {}: no refresh extends this limit",
            day(at)
        ),
    })
}

/// No successful sync (health check, verify, host app) for `no_sync_days`: listed once
/// that many days have passed since the last success (or since the connection was
/// created, if it never synced).
fn no_sync(s: &Subject<'_>, ctx: &Context<'_>) -> Option<Finding> {
    let r = s.record;
    if !r.status.is_live() {
        return None;
    }
    let since = s.facts.last_sync_ok_at.unwrap_or(r.created_at);
    let date = since + Duration::days(i64::from(ctx.no_sync_days));
    if date > ctx.now {
        return None;
    }
    let last = match (r.last_sync_status, r.last_sync_detail.as_deref()) {
        (Some(qbo_core::domain::SyncStatus::Failed), Some(d)) => {
            format!("; last sync failed: {}", d)
        }
        _ => String::new(),
    };
    let ever = match s.facts.last_sync_ok_at {
        Some(t) => format!("since {}", day(t)),
        None => "ever".into(),
    };
    Some(Finding {
        risk: Risk::NoSync,
        cause: Cause::NoSync,
        date,
        reason: format!("no successful sync {ever}{last}"),
        action: "run `qbo-console verify` on it and fix what it reports (the host app, Intuit or the customer)".into(),
    })
}

/// Whether a link can bring this connection back: it needs reconnecting, or it is a
/// company invited with `link --new` and not connected yet. A live connection's unused
/// link (sent ahead of the 5-year limit, say) is not a risk of its own: the risk that
/// made someone send it is listed already.
fn awaits_link(s: &Subject<'_>) -> bool {
    matches!(s.record.status, Status::NeedsReconnect | Status::Pending)
}

/// The tenant as a shell word, for an action the operator can paste.
fn shell_word(t: &str) -> String {
    if !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        t.to_string()
    } else {
        format!("'{}'", t.replace('\'', r"'\''"))
    }
}

/// How far the customer got with the link.
fn opened(s: &Subject<'_>) -> String {
    match s.facts.link_opened_at {
        Some(at) => format!("opened on {} but the consent was not completed", day(at)),
        None => "never opened".into(),
    }
}

/// A reconnect link was sent `link_unused_days` ago (or more) and is still open: the
/// customer has not used it. Dated when the link stops working, the last day this link
/// can save the connection. Only the connection's latest link counts; using it (the
/// callback completes it and the connection turns live), cancelling it or issuing a newer
/// one ends this line. A link past its expiry is `link_expired`, even before the sweep
/// has closed it.
fn link_unused(s: &Subject<'_>, ctx: &Context<'_>) -> Option<Finding> {
    let f = s.facts;
    if !awaits_link(s) || f.link_status.as_deref() != Some("open") {
        return None;
    }
    let (n, issued, expires) = (f.link_id?, f.link_created_at?, f.link_expires_at?);
    if expires <= ctx.now || issued + Duration::days(i64::from(ctx.link_unused_days)) > ctx.now {
        return None;
    }
    let tenant = shell_word(&s.record.tenant);
    Some(Finding {
        risk: Risk::LinkUnused,
        cause: Cause::LinkUnused,
        date: expires,
        reason: format!(
            "reconnect link {n} sent on {} is not used ({}); it stops working on {}",
            day(issued),
            opened(s),
            day(expires)
        ),
        action: format!(
            "the customer has not used the link sent on {}: call them, or cancel it \
             (`qbo-console link cancel {n}`) and send a new one (`qbo-console link {tenant}`)",
            day(issued)
        ),
    })
}

/// The connection's latest link expired unused (closed by the sweep, or open past its
/// expiry) and the connection still waits for a consent: nothing in flight can save it.
/// Dated when the link expired; a new link ends this line.
fn link_expired(s: &Subject<'_>, ctx: &Context<'_>) -> Option<Finding> {
    let f = s.facts;
    if !awaits_link(s) {
        return None;
    }
    let (n, issued, expires) = (f.link_id?, f.link_created_at?, f.link_expires_at?);
    let lapsed = match f.link_status.as_deref()? {
        "expired" => true,
        "open" => expires <= ctx.now,
        _ => false,
    };
    if !lapsed {
        return None;
    }
    Some(Finding {
        risk: Risk::LinkExpired,
        cause: Cause::LinkExpired,
        date: expires,
        reason: format!(
            "reconnect link {n} sent on {} expired unused on {} ({})",
            day(issued),
            day(expires),
            opened(s)
        ),
        action: format!(
            "call the customer and send a new link (`qbo-console link {}`)",
            shell_word(&s.record.tenant)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::dead_grant_words;

    #[test]
    fn a_dead_grants_line_keeps_intuits_words_not_the_headings() {
        assert_eq!(
            dead_grant_words(Some(
                "Intuit refused the refresh token (HTTP 400 invalid_grant: Token invalid); the customer must reconnect"
            )),
            "HTTP 400 invalid_grant: Token invalid"
        );
        assert_eq!(
            dead_grant_words(Some("revoked in QuickBooks")),
            "revoked in QuickBooks"
        );
        assert_eq!(dead_grant_words(None), "refused (invalid_grant)");
    }
}
