//! The browser's side of a reconnect link, as the public listener asks for it: opening a
//! link (a fresh state, then Intuit), the OAuth callback, and Intuit's Reconnect and
//! Disconnect URLs. Each answer is an `Answer` the listener renders; none carries a code,
//! a token, a state or an internal id.
//!
//! The callback's guarantees, in the order they are checked:
//! 1. the state is one this daemon made (looked up by its hash, then compared in constant
//!    time), still live, and bound to the browser that opened the link (a cookie set when
//!    it was opened, its hash stored with the state);
//! 2. the state is consumed by one conditional UPDATE: of any number of identical
//!    callbacks, exactly one goes on, the rest are answered as duplicates;
//! 3. the realm guard: a consent for another company than the link's, or for a company
//!    already connected as another tenant, is refused before the code is exchanged;
//! 4. the one exchange, then the write (lifecycle::reconnect), then CompanyInfo.

use super::links::{customer_actor, hash, invitation_target, secret};
use super::Service;
use chrono::Duration as ChronoDuration;
use qbo_core::domain::{Environment, ErrorClass, RealmId, Status};
use qbo_core::identity::Actor;
use qbo_engine::lifecycle::ConsentOutcome;
use qbo_store::audit::AboutConnection;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::{ConnectionRecord, Invitation, StateMatch};

/// Who is on the other end, as the audit log records it.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    pub address: String,
    pub user_agent: String,
}

impl Browser {
    fn describe(&self) -> String {
        let ua = qbo_core::text::truncate_chars(&self.user_agent, 200);
        format!(
            "browser {} ({:?})",
            qbo_core::text::terminal_safe(&self.address),
            qbo_core::text::terminal_safe(&ua)
        )
    }
}

/// What the callback received (query parameters, any of them may be missing).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    #[serde(rename = "realmId")]
    pub realm_id: Option<String>,
    pub error: Option<String>,
}

/// What to answer the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 302 to Intuit, setting the browser binding cookie.
    ToIntuit { location: String, binding: String },
    /// The consent is stored; the company's name when CompanyInfo gave it.
    Connected { company: Option<String> },
    /// The customer declined at Intuit.
    ConsentDeclined,
    /// The link is unknown.
    UnknownLink,
    /// The link was used, cancelled or has expired.
    LinkClosed,
    /// The state was missing, unknown, expired or not this browser's.
    BadState,
    /// A repeated callback: the first one is being (or was) completed.
    Duplicate,
    /// Another company than the link's was chosen.
    RealmMismatch,
    /// The callback cannot be completed from what it carries: no valid `realmId`, no
    /// code, or a code Intuit refused (made up, too old, already used). A 4xx: it is the
    /// request, not the service, that failed.
    CodeRefused,
    /// Intuit did not exchange the code (unreachable, failing, or refusing our client).
    ExchangeFailed,
    /// Intuit's Disconnect URL: recorded.
    Disconnected,
}

/// What Intuit's Disconnect URL answers, and the connection to check in the background
/// (none for an unknown realm or one without tokens).
#[derive(Debug)]
pub struct Disconnect {
    pub answer: Answer,
    pub check: Option<i64>,
}

/// A realm as a stranger gave it, for the audit log: escaped and cut short.
fn describe_realm(realm: Option<&str>) -> String {
    match realm {
        Some(r) => format!(
            "{:?}",
            qbo_core::text::truncate_chars(&qbo_core::text::terminal_safe(r), 64)
        ),
        None => "(none)".into(),
    }
}

/// Compares two strings in time that depends only on their lengths.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Service {
    async fn record_public(&self, ev: AuditEvent) -> anyhow::Result<()> {
        let tx = self.store().begin().await?;
        self.engine.commit_audited(tx, &[ev]).await?;
        Ok(())
    }

    fn public_event(&self, actor: &Actor, action: Action, outcome: Outcome) -> AuditEvent {
        AuditEvent::new(self.engine.clock.now(), actor, action, outcome)
    }

    /// The customer's browser, known by the link it came through when that is known.
    fn customer(&self, inv: Option<&Invitation>, browser: &Browser) -> Actor {
        customer_actor(
            &self.engine.vault,
            inv.map(|i| i.token_hash.as_str()),
            &browser.address,
        )
    }

    /// `GET /connect/{id}`: checks the link, gives it a fresh state bound to this browser,
    /// and sends the browser to Intuit.
    pub async fn link_open(&self, token: &str, browser: &Browser) -> anyhow::Result<Answer> {
        // Known by the link it presented, known to this daemon or not.
        let actor = customer_actor(&self.engine.vault, Some(&hash(token)), &browser.address);
        self.expire_links().await?;
        let inv = match self.store().invitation_by_token(&hash(token)).await? {
            Some(inv) => inv,
            None => {
                let mut ev = self.public_event(&actor, Action::LinkOpened, Outcome::Denied);
                ev.reason = Some(format!(
                    "an unknown reconnect link was opened by {}",
                    browser.describe()
                ));
                self.record_public(ev).await?;
                return Ok(Answer::UnknownLink);
            }
        };
        if inv.status != "open" {
            let mut ev = invitation_target(
                self.public_event(&actor, Action::LinkOpened, Outcome::Denied),
                &inv,
            );
            ev.reason = Some(format!(
                "link {} is {} and was opened again by {}",
                inv.id,
                inv.status,
                browser.describe()
            ));
            self.record_public(ev).await?;
            return Ok(Answer::LinkClosed);
        }
        self.send_to_intuit(&inv, &actor, browser, "opened").await
    }

    /// A fresh state for `inv`, recorded, and the redirect to Intuit's consent.
    async fn send_to_intuit(
        &self,
        inv: &Invitation,
        actor: &Actor,
        browser: &Browser,
        how: &str,
    ) -> anyhow::Result<Answer> {
        let client = self
            .engine
            .client(inv.environment)
            .map_err(anyhow::Error::msg)?
            .clone();
        let now = self.engine.clock.now();
        let state = secret();
        let binding = secret();
        let state_expires = now + ChronoDuration::from_std(self.links.state_expires)?;
        let mut tx = self.store().begin().await?;
        if !tx
            .set_state(inv.id, &hash(&state), &hash(&binding), state_expires, now)
            .await?
        {
            tx.rollback().await?;
            return Ok(Answer::LinkClosed);
        }
        let mut ev = invitation_target(
            self.public_event(actor, Action::LinkOpened, Outcome::Ok),
            inv,
        );
        ev.reason = Some(format!(
            "link {} {how} by {}; sent to Intuit's consent with a state valid until {}",
            inv.id,
            browser.describe(),
            state_expires.to_rfc3339()
        ));
        self.engine.commit_audited(tx, &[ev]).await?;
        Ok(Answer::ToIntuit {
            location: client.authorization_url(&state),
            binding,
        })
    }

    /// The OAuth callback.
    pub async fn consent_callback(
        &self,
        q: &CallbackQuery,
        binding: Option<&str>,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let reject = |inv: Option<&Invitation>, why: String| {
            let actor = self.customer(inv, browser);
            let mut ev = self.public_event(&actor, Action::StateRejected, Outcome::Denied);
            if let Some(inv) = inv {
                ev = invitation_target(ev, inv);
            }
            ev.reason = Some(format!(
                "{why}; nothing was exchanged ({})",
                browser.describe()
            ));
            ev
        };
        let Some(state) = q.state.as_deref().filter(|s| !s.is_empty()) else {
            self.record_public(reject(None, "a callback came without a state".into()))
                .await?;
            return Ok(Answer::BadState);
        };
        let state_hash = hash(state);
        let inv = match self.store().invitation_by_state(&state_hash).await? {
            None => {
                self.record_public(reject(
                    None,
                    "a callback carried a state this daemon did not make, or one replaced by a later opening".into(),
                ))
                .await?;
                return Ok(Answer::BadState);
            }
            Some(StateMatch::Used(inv)) => {
                let actor = self.customer(Some(&inv), browser);
                let mut ev = invitation_target(
                    self.public_event(&actor, Action::DuplicateCallback, Outcome::Denied),
                    &inv,
                );
                ev.reason = Some(format!(
                    "the callback of link {} arrived again; its code was not exchanged again",
                    inv.id
                ));
                self.record_public(ev).await?;
                return Ok(Answer::Duplicate);
            }
            Some(StateMatch::Live(inv)) => inv,
        };
        let actor = self.customer(Some(&inv), browser);
        let bound = match (binding, inv.state_binding_hash.as_deref()) {
            (Some(b), Some(stored)) => same(&hash(b), stored),
            _ => false,
        };
        if !bound {
            self.record_public(reject(
                Some(&inv),
                format!(
                    "the state of link {} came back from a browser that did not open it (no or another link's binding cookie)",
                    inv.id
                ),
            ))
            .await?;
            return Ok(Answer::BadState);
        }
        let now = self.engine.clock.now();
        let mut tx = self.store().begin().await?;
        if !tx.claim_state(inv.id, &state_hash).await? {
            // Another callback with this state got here first.
            tx.rollback().await?;
            let mut ev = invitation_target(
                self.public_event(&actor, Action::DuplicateCallback, Outcome::Denied),
                &inv,
            );
            ev.reason = Some(format!(
                "the callback of link {} arrived again while the first was being completed; its code was not exchanged again",
                inv.id
            ));
            self.record_public(ev).await?;
            return Ok(Answer::Duplicate);
        }
        self.engine.commit_audited(tx, &[]).await?;
        if inv.state_expires_at.is_none_or(|t| t <= now) {
            self.record_public(reject(
                Some(&inv),
                format!("the state of link {} had expired", inv.id),
            ))
            .await?;
            return Ok(Answer::BadState);
        }
        if inv.expires_at <= now {
            self.expire_links().await?;
            return Ok(Answer::LinkClosed);
        }
        if let Some(err) = q.error.as_deref() {
            let mut ev = invitation_target(
                self.public_event(&actor, Action::ConsentDenied, Outcome::Denied),
                &inv,
            );
            ev.reason = Some(format!(
                "Intuit answered error {:?} for link {}; the link stays open for another try",
                qbo_core::text::truncate_chars(&qbo_core::text::terminal_safe(err), 64),
                inv.id
            ));
            self.record_public(ev).await?;
            return Ok(Answer::ConsentDeclined);
        }
        let Some(rec) = self.store().get_connection(inv.connection_id).await? else {
            return Ok(Answer::LinkClosed);
        };
        let realm = match q.realm_id.as_deref().map(RealmId::parse) {
            Some(Ok(r)) => r,
            _ => {
                let mut ev = invitation_target(
                    self.public_event(&actor, Action::ExchangeFailed, Outcome::Failed),
                    &inv,
                );
                ev.reason = Some(format!(
                    "the callback of link {} carried no valid realmId; the code was not exchanged (is the accounting scope configured?)",
                    inv.id
                ));
                self.record_public(ev).await?;
                return Ok(Answer::CodeRefused);
            }
        };
        if let Some(why) = self.realm_guard(&inv, &rec, &realm).await? {
            let mut ev = invitation_target(
                self.public_event(&actor, Action::RealmMismatch, Outcome::Denied),
                &inv,
            );
            ev.reason = Some(why);
            self.record_public(ev).await?;
            return Ok(Answer::RealmMismatch);
        }
        let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
            let mut ev = invitation_target(
                self.public_event(&actor, Action::ExchangeFailed, Outcome::Failed),
                &inv,
            );
            ev.reason = Some(format!(
                "the callback of link {} carried neither a code nor an error",
                inv.id
            ));
            self.record_public(ev).await?;
            return Ok(Answer::CodeRefused);
        };
        Ok(
            match self
                .engine
                .complete_consent(&inv, &rec, &realm, code, &actor)
                .await?
            {
                ConsentOutcome::Connected { company_name } => Answer::Connected {
                    company: company_name,
                },
                ConsentOutcome::ExchangeFailed {
                    class: ErrorClass::InvalidGrant,
                } => Answer::CodeRefused,
                ConsentOutcome::ExchangeFailed { .. } => Answer::ExchangeFailed,
            },
        )
    }

    /// Why a consent for `realm` must not be stored on `rec`, if it must not.
    async fn realm_guard(
        &self,
        inv: &Invitation,
        rec: &ConnectionRecord,
        realm: &RealmId,
    ) -> anyhow::Result<Option<String>> {
        let expected = inv
            .expected_realm
            .clone()
            .or_else(|| (!rec.realm_id.is_unknown()).then(|| rec.realm_id.to_string()));
        if let Some(expected) = expected {
            if expected != realm.as_str() {
                return Ok(Some(format!(
                    "link {} is for company {expected} but the consent came back for company {realm}: the code was not exchanged and the tenant's tokens and realm are untouched",
                    inv.id
                )));
            }
            return Ok(None);
        }
        let taken = self
            .store()
            .find_connections(realm.as_str())
            .await?
            .into_iter()
            .find(|r| r.environment == inv.environment && r.id != rec.id);
        Ok(taken.map(|other| {
            format!(
                "link {} invited a new company, but company {realm} is already connected as tenant {:?} (connection {}): the code was not exchanged",
                inv.id, other.tenant, other.id
            )
        }))
    }

    /// The one environment Intuit's Reconnect URL serves: production when it is configured
    /// (the environment customers use), else sandbox. Chosen from the configuration alone:
    /// chosen by the realm, the client id in the redirect would tell a stranger which realms
    /// are connected here as sandbox companies. Sandbox companies reconnect through `link`.
    fn reconnect_environment(&self) -> Environment {
        if self.engine.client(Environment::Production).is_ok() {
            Environment::Production
        } else {
            Environment::Sandbox
        }
    }

    /// Intuit's Reconnect URL. Whatever the realm, the browser is sent to Intuit's consent
    /// with a fresh state and binding cookie, after the same work (one lookup, one
    /// transaction with one audit event), so the answer tells a stranger nothing. For a
    /// connection of the realm in the served environment, the state belongs to a link made
    /// on the spot (consent at Intuit and the realm guard keep this safe: only the
    /// company's own administrator can consent, and only for that company). For any other
    /// realm the state is stored nowhere, so its callback is refused, and a `link issued`
    /// denied event records the request. Either way one request writes at most one link
    /// row and one event, and the public listener's per-address budget bounds requests.
    pub async fn intuit_reconnect(
        &self,
        realm: Option<&str>,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let env = self.reconnect_environment();
        let client = self.engine.client(env).map_err(anyhow::Error::msg)?.clone();
        let target = self
            .connection_by_realm(realm)
            .await?
            .filter(|r| r.environment == env)
            .filter(|r| !matches!(r.status, Status::Revoking | Status::Revoked));
        let now = self.engine.clock.now();
        let state = secret();
        let binding = secret();
        let state_expires = now + ChronoDuration::from_std(self.links.state_expires)?;
        // The link made for the browser, whatever the realm (the work is the same).
        let token_hash = hash(&secret());
        let mut tx = self.store().begin().await?;
        let ev = match target {
            Some(rec) => {
                // The browser Intuit sent here, known by the link made for it.
                let actor = customer_actor(&self.engine.vault, Some(&token_hash), &browser.address);
                let id = tx
                    .insert_invitation(
                        &token_hash,
                        rec.id,
                        rec.environment,
                        Some(rec.realm_id.as_str()),
                        &rec.tenant,
                        &actor.name(),
                        now,
                        state_expires,
                        None,
                    )
                    .await?;
                if !tx
                    .set_state(id, &hash(&state), &hash(&binding), state_expires, now)
                    .await?
                {
                    anyhow::bail!("the link {id} just made for Intuit's Reconnect URL is not open");
                }
                let mut ev = self
                    .public_event(&actor, Action::LinkIssued, Outcome::Ok)
                    .about(&rec)
                    .fingerprint(
                        "link",
                        super::links::link_fingerprint(&self.engine.vault, &token_hash),
                    );
                ev.reason = Some(format!(
                    "link {id} made for Intuit's Reconnect URL and opened by {}; sent to Intuit's consent with a state valid until {}",
                    browser.describe(),
                    state_expires.to_rfc3339()
                ));
                ev
            }
            None => {
                // No link was made: the browser is known by its address alone.
                let actor = customer_actor(&self.engine.vault, None, &browser.address);
                let mut ev = self.public_event(&actor, Action::LinkIssued, Outcome::Denied);
                ev.reason = Some(format!(
                    "Intuit's Reconnect URL named realm {}, which is not connected here in {env}; {} was sent to Intuit's consent with a state stored nowhere, so nothing can come of it",
                    describe_realm(realm),
                    browser.describe()
                ));
                ev
            }
        };
        self.engine.commit_audited(tx, &[ev]).await?;
        Ok(Answer::ToIntuit {
            location: client.authorization_url(&state),
            binding,
        })
    }

    /// Intuit's Disconnect URL. Anyone can open it, so it proves nothing and spends
    /// nothing: the answer is the same page for every realm, after the same work (one
    /// lookup, one transaction with one `customer disconnected` event: ok naming the
    /// connection, or denied naming none). Nothing is refreshed. What the URL asks of us,
    /// checking the connection, is left to the caller to run in the background
    /// (`check_after_disconnect`), with the stored access token only.
    pub async fn intuit_disconnect(
        &self,
        realm: Option<&str>,
        browser: &Browser,
    ) -> anyhow::Result<Disconnect> {
        // Intuit's own URL: its act, whoever opened it (the browser is in the reason).
        let actor = Actor::intuit();
        let rec = self.connection_by_realm(realm).await?;
        let (ev, check) = match &rec {
            Some(rec) => {
                let mut ev = self
                    .public_event(&actor, Action::CustomerDisconnected, Outcome::Ok)
                    .about(rec);
                ev.reason = Some(format!(
                    "Intuit's Disconnect URL was opened for this company by {} (anyone can open it: nothing was refreshed); a check with the stored access token follows while it is valid, else the next scheduled refresh tells",
                    browser.describe()
                ));
                (ev, rec.status.has_tokens().then_some(rec.id))
            }
            None => {
                let mut ev =
                    self.public_event(&actor, Action::CustomerDisconnected, Outcome::Denied);
                ev.reason = Some(format!(
                    "Intuit's Disconnect URL named realm {}, which is not connected here ({})",
                    describe_realm(realm),
                    browser.describe()
                ));
                (ev, None)
            }
        };
        self.record_public(ev).await?;
        Ok(Disconnect {
            answer: Answer::Disconnected,
            check,
        })
    }

    /// The background check after Intuit's Disconnect URL: CompanyInfo with the stored
    /// access token while it is valid (recorded as `verify`), never a refresh; nothing when
    /// there is no valid token.
    pub async fn check_after_disconnect(&self, id: i64) -> anyhow::Result<()> {
        self.engine
            .verify_without_refresh(id, &Actor::intuit())
            .await
            .map(|_| ())
    }

    async fn connection_by_realm(
        &self,
        realm: Option<&str>,
    ) -> anyhow::Result<Option<ConnectionRecord>> {
        let Some(Ok(realm)) = realm.map(RealmId::parse) else {
            return Ok(None);
        };
        let mut found = self.store().find_connections(realm.as_str()).await?;
        found.retain(|r| r.realm_id == realm);
        // A realm known in both environments: production is the one customers use.
        found.sort_by_key(|r| r.environment != Environment::Production);
        Ok(found.into_iter().next())
    }
}
