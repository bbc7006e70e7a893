//! The record of which access token value went to which service. The first hand-out of a
//! value to a service is recorded before the service gets it; the hand-outs after it are
//! counted here, in memory, and recorded as one summary once the value is superseded (the
//! service is handed a newer one) or the daemon stops. Every hand-out is provable, and the
//! log grows with tokens issued, not with requests served.

use chrono::{DateTime, SecondsFormat, Utc};
use qbo_core::identity::Actor;
use qbo_service::{Action, AuditEvent, Outcome};
use std::collections::HashMap;
use std::sync::Mutex;

/// The connection a hand-out was about, as the audit log names it.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: i64,
    pub environment: &'static str,
    pub realm_id: String,
    pub tenant: String,
}

struct Tally {
    actor: Actor,
    target: Target,
    fingerprint: String,
    first: DateTime<Utc>,
    /// Hand-outs after the first.
    further: u64,
    further_first: Option<DateTime<Utc>>,
    last: DateTime<Utc>,
}

impl Tally {
    fn summary(&self, at: DateTime<Utc>) -> Option<AuditEvent> {
        let first = self.further_first?;
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let actor = Actor {
            request_id: None,
            ..self.actor.clone()
        };
        let mut ev = AuditEvent::new(at, &actor, Action::AccessTokenHandouts, Outcome::Ok)
            .target(
                self.target.id,
                self.target.environment,
                &self.target.realm_id,
                &self.target.tenant,
            )
            .fingerprint("access", self.fingerprint.clone());
        ev.reason = Some(format!(
            "{} further hand-out{} of this access token to {} between {} and {} (first hand-out at {})",
            self.further,
            if self.further == 1 { "" } else { "s" },
            self.actor.name(),
            stamp(first),
            stamp(self.last),
            stamp(self.first),
        ));
        Some(ev)
    }
}

/// What a hand-out needs written before the token leaves.
pub struct ToRecord {
    /// The summary of the value this one supersedes, if it was handed out more than once.
    pub superseded: Option<AuditEvent>,
    pub first: AuditEvent,
}

#[derive(Default)]
pub struct Ledger {
    /// By (key id, connection id): the value each service was last handed.
    tallies: Mutex<HashMap<(i64, i64), Tally>>,
}

impl Ledger {
    /// Counts a hand-out. Returns what must be recorded before the token is handed over
    /// when this is the first time this value goes to this service.
    pub fn hand_out(
        &self,
        key_id: i64,
        actor: &Actor,
        target: &Target,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Option<ToRecord> {
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let slot = (key_id, target.id);
        if let Some(t) = tallies.get_mut(&slot) {
            if t.fingerprint == fingerprint {
                t.further += 1;
                t.further_first.get_or_insert(now);
                t.last = t.last.max(now);
                return None;
            }
        }
        let superseded = tallies.remove(&slot).and_then(|t| t.summary(now));
        let mut first = AuditEvent::new(now, actor, Action::AccessTokenHandedOut, Outcome::Ok)
            .target(
                target.id,
                target.environment,
                &target.realm_id,
                &target.tenant,
            )
            .fingerprint("access", fingerprint.to_string());
        first.reason = Some(format!(
            "first hand-out of this access token to {}",
            actor.name()
        ));
        tallies.insert(
            slot,
            Tally {
                actor: actor.clone(),
                target: target.clone(),
                fingerprint: fingerprint.to_string(),
                first: now,
                further: 0,
                further_first: None,
                last: now,
            },
        );
        Some(ToRecord { superseded, first })
    }

    /// Forgets a first hand-out whose record could not be written, so the next request
    /// tries again (the token was not handed over).
    pub fn unrecorded(&self, key_id: i64, connection: i64, fingerprint: &str) {
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        if tallies
            .get(&(key_id, connection))
            .is_some_and(|t| t.fingerprint == fingerprint)
        {
            tallies.remove(&(key_id, connection));
        }
    }

    /// The summaries of every value handed out more than once, counts reset: at shutdown.
    pub fn drain(&self, now: DateTime<Utc>) -> Vec<AuditEvent> {
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for t in tallies.values_mut() {
            if let Some(ev) = t.summary(now) {
                out.push(ev);
            }
            t.further = 0;
            t.further_first = None;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            id: 7,
            environment: "sandbox",
            realm_id: "123".into(),
            tenant: "acme".into(),
        }
    }

    #[test]
    fn only_the_first_hand_out_of_a_value_is_recorded_and_the_rest_are_summarised_once() {
        let l = Ledger::default();
        let actor = Actor::service(Some("books-sync"));
        let now = Utc::now();
        let first = l.hand_out(1, &actor, &target(), "fp:a", now).unwrap();
        assert!(first.superseded.is_none());
        for _ in 0..99 {
            assert!(l.hand_out(1, &actor, &target(), "fp:a", now).is_none());
        }
        // Another service gets its own first record.
        assert!(l.hand_out(2, &actor, &target(), "fp:a", now).is_some());
        let next = l.hand_out(1, &actor, &target(), "fp:b", now).unwrap();
        let summary = next.superseded.expect("the superseded value is summarised");
        assert!(summary.reason.unwrap().starts_with("99 further hand-outs"));
        // A value handed out once has nothing to summarise.
        assert!(l.drain(now).is_empty());
        l.hand_out(1, &actor, &target(), "fp:b", now);
        assert_eq!(l.drain(now).len(), 1);
        assert!(l.drain(now).is_empty(), "drained counts start again");
    }
}
