//! Refusals on the record without letting one caller grow the audit log without bound.
//! The first refusal of a caller (account, uid, role) for an action opens a one-minute
//! window and is recorded as its own `denied` event; further refusals in that window are
//! only counted, and one `denied` summary with their number and time span is recorded when
//! the window closes (swept by the daemon, or at that caller's next refusal) or at
//! shutdown. Every refusal stays provable: the first one by its event, the rest by the
//! count, at most two events per caller, action and minute. Windows follow the engine
//! clock, so tests can move them.
//!
//! The token API's refusals (a missing, unknown or revoked key, a realm the key may not
//! read) go through the same windows, keyed besides by where they come from: the
//! presenting address, the key's fingerprint (or "no key") and the kind of refusal, since
//! all its callers share the daemon's account (`refuse_from`).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use qbo_core::identity::Actor;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// How long refusals after a recorded one are counted instead of recorded.
pub fn window() -> Duration {
    Duration::seconds(60)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    uid: i64,
    account: String,
    role: String,
    action: Action,
    /// Where a token API refusal came from; none for the operators' socket, whose
    /// callers the account, uid and role tell apart.
    origin: Option<String>,
}

impl Key {
    fn of(caller: &Actor, action: Action, origin: Option<&str>) -> Key {
        let who = caller.stored();
        Key {
            uid: who.uid,
            account: who.account,
            role: who.role,
            action,
            origin: origin.map(str::to_string),
        }
    }
}

struct Window {
    opened: DateTime<Utc>,
    counted: Option<Summary>,
}

/// Refusals counted but not yet on the record.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The caller as of its latest counted refusal.
    actor: Actor,
    action: Action,
    count: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    /// Why they were refused, as of the latest.
    cause: String,
}

impl Summary {
    /// The `denied` event that puts these refusals on the record, stamped `at`.
    pub fn event(&self, at: DateTime<Utc>) -> AuditEvent {
        let caller = Actor {
            // One event for many requests: none of their ids stands for the rest.
            request_id: None,
            ..self.actor.clone()
        };
        let mut ev = AuditEvent::new(at, &caller, self.action, Outcome::Denied);
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        ev.reason = Some(format!(
            "{} further refusal{} of {} between {} and {}: {}",
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.action,
            stamp(self.first),
            stamp(self.last),
            self.cause
        ));
        ev
    }
}

/// What to do with one refusal.
pub enum Verdict {
    /// Record it as its own event, after the summary of the caller's window that closed.
    Record { closed: Option<Summary> },
    /// Counted in an open window; nothing to write now.
    Counted,
}

#[derive(Default)]
pub struct Refusals {
    windows: Mutex<HashMap<Key, Window>>,
    /// Summaries whose write failed, tried again at the next sweep.
    unwritten: Mutex<Vec<Summary>>,
}

/// The maps stay consistent whatever a panicking holder did: each change to them is a
/// single insert or remove.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why the operators' socket refused a caller.
pub fn role_cause(caller: &Actor, action: Action) -> String {
    match caller.role() {
        Some(role) => format!("role {role} lacks permission for {action}"),
        None => format!(
            "{} has no role, and no role's permission for {action}",
            caller.name()
        ),
    }
}

impl Refusals {
    /// A role refusal on the operators' socket.
    pub fn refuse(&self, caller: &Actor, action: Action, now: DateTime<Utc>) -> Verdict {
        self.refuse_keyed(
            Key::of(caller, action, None),
            caller,
            role_cause(caller, action),
            now,
        )
    }

    /// A refusal from `origin` (see the module's comment), for `cause`.
    pub fn refuse_from(
        &self,
        caller: &Actor,
        action: Action,
        origin: &str,
        cause: String,
        now: DateTime<Utc>,
    ) -> Verdict {
        self.refuse_keyed(Key::of(caller, action, Some(origin)), caller, cause, now)
    }

    fn refuse_keyed(&self, key: Key, caller: &Actor, cause: String, now: DateTime<Utc>) -> Verdict {
        let action = key.action;
        let mut windows = lock(&self.windows);
        match windows.get_mut(&key) {
            Some(w) if now < w.opened + window() => {
                match &mut w.counted {
                    Some(s) => {
                        s.count += 1;
                        s.last = now;
                        s.actor = caller.clone();
                        s.cause = cause;
                    }
                    None => {
                        w.counted = Some(Summary {
                            actor: caller.clone(),
                            action,
                            count: 1,
                            first: now,
                            last: now,
                            cause,
                        })
                    }
                }
                Verdict::Counted
            }
            Some(w) => {
                let closed = w.counted.take();
                w.opened = now;
                Verdict::Record { closed }
            }
            None => {
                windows.insert(
                    key,
                    Window {
                        opened: now,
                        counted: None,
                    },
                );
                Verdict::Record { closed: None }
            }
        }
    }

    /// The record of a refusal could not be written: the caller's next refusal is recorded
    /// again rather than counted against an event that does not exist. (Refusals already
    /// counted meanwhile keep their window, and reach the record with its summary.)
    pub fn unrecorded(&self, caller: &Actor, action: Action, origin: Option<&str>) {
        let key = Key::of(caller, action, origin);
        let mut windows = lock(&self.windows);
        if windows.get(&key).is_some_and(|w| w.counted.is_none()) {
            windows.remove(&key);
        }
    }

    /// Takes the summaries due: those of windows closed by `now` (every window when `all`,
    /// at shutdown), and those whose write failed before.
    pub fn due(&self, now: DateTime<Utc>, all: bool) -> Vec<Summary> {
        let mut out = std::mem::take(&mut *lock(&self.unwritten));
        lock(&self.windows).retain(|_, w| {
            if all || now >= w.opened + window() {
                out.extend(w.counted.take());
                false
            } else {
                true
            }
        });
        out
    }

    /// Summaries that could not be written now, for the next sweep.
    pub fn unwritten(&self, summaries: Vec<Summary>) {
        lock(&self.unwritten).extend(summaries);
    }
}

impl super::Service {
    /// Puts a token API refusal on the record through the same windows as role refusals:
    /// `ev` (stamped now) is written when it is the first from `origin` this minute, with
    /// the summary of the window it closes; otherwise it is only counted, and reaches the
    /// record in the summary (`record_counted_refusals`, swept by the daemon and run at
    /// shutdown). Fail-closed like `authorize`: an error means nothing was recorded and
    /// the request must not be answered as refused-and-recorded.
    pub async fn record_counted_refusal(
        &self,
        ev: AuditEvent,
        caller: &Actor,
        origin: &str,
    ) -> anyhow::Result<()> {
        let cause = ev.reason.clone().unwrap_or_default();
        let verdict = self
            .refusals
            .refuse_from(caller, ev.action, origin, cause, ev.at);
        let Verdict::Record { closed } = verdict else {
            return Ok(());
        };
        let mut events: Vec<AuditEvent> = closed.iter().map(|s| s.event(ev.at)).collect();
        let action = ev.action;
        events.push(ev);
        if let Err(e) = self.record_refusals(&events).await {
            self.refusals.unrecorded(caller, action, Some(origin));
            self.refusals.unwritten(closed.into_iter().collect());
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qbo_core::identity::{Interface, Operator, Role};

    fn caller(account: &str) -> Actor {
        Actor {
            kind: qbo_core::identity::ActorKind::Operator(Operator {
                account: account.into(),
                uid: 4242,
                ssh_client: None,
                interface: Interface::Cli,
                role: Role::Unmapped,
            }),
            request_id: Some("r".into()),
        }
    }

    #[test]
    fn one_refusal_a_minute_is_recorded_and_the_rest_are_counted_into_its_summary() {
        let r = Refusals::default();
        let t0 = Utc::now();
        let mallory = caller("mallory");
        assert!(matches!(
            r.refuse(&mallory, Action::List, t0),
            Verdict::Record { closed: None }
        ));
        for i in 1..=9 {
            let t = t0 + Duration::seconds(i);
            assert!(matches!(
                r.refuse(&mallory, Action::List, t),
                Verdict::Counted
            ));
        }
        // Another action, another caller: windows of their own.
        assert!(matches!(
            r.refuse(&mallory, Action::Show, t0),
            Verdict::Record { closed: None }
        ));
        assert!(matches!(
            r.refuse(&caller("eve"), Action::List, t0),
            Verdict::Record { closed: None }
        ));
        assert!(r.due(t0 + Duration::seconds(59), false).is_empty());
        match r.refuse(&mallory, Action::List, t0 + window()) {
            Verdict::Record { closed: Some(s) } => {
                assert_eq!(
                    (s.count, s.first, s.last),
                    (9, t0 + Duration::seconds(1), t0 + Duration::seconds(9))
                );
                let ev = s.event(t0 + window());
                assert_eq!(ev.outcome, Outcome::Denied);
                assert_eq!(ev.request_id, None);
                assert!(ev
                    .reason
                    .unwrap()
                    .starts_with("9 further refusals of list between "));
            }
            _ => panic!("the refusal after the window is recorded, with the window's summary"),
        }
        // Windows with nothing counted close without a summary.
        assert!(r.due(t0 + window() * 3, false).is_empty());
    }

    #[test]
    fn shutdown_takes_the_summaries_of_open_windows() {
        let r = Refusals::default();
        let t0 = Utc::now();
        let mallory = caller("mallory");
        r.refuse(&mallory, Action::List, t0);
        r.refuse(&mallory, Action::List, t0);
        assert!(r.due(t0, false).is_empty());
        let due = r.due(t0, true);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count, 1);
        r.unwritten(due);
        assert_eq!(r.due(t0, false).len(), 1, "a failed write is tried again");
    }
}
