//! Reconnect links, as operators handle them: `link` (issue one for a connection, or for a
//! company not connected yet), `links` (the open ones) and `link cancel`; and the sweep that
//! closes links whose time is up. The browser's side is in `consent`.

use super::{Permission, Result, Service, ServiceError};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use qbo_core::domain::{Environment, Status, MAX_NAME_CHARS};
use qbo_core::identity::{Actor, DaemonTask};
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::Invitation;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// A reconnect link as `links` lists it and `link cancel` answers: its number, whom it is
/// for, its state and times. The row's state binding and token hash stay in the store: no
/// interface needs them, so none is handed them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkView {
    pub id: i64,
    pub connection_id: i64,
    pub environment: Environment,
    /// The realm the customer must consent for; `None` for a new connection (`link --new`).
    pub expected_realm: Option<String>,
    pub tenant: String,
    /// open, completed, expired, cancelled or superseded.
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub created_by: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub opened_at: Option<chrono::DateTime<chrono::Utc>>,
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<Invitation> for LinkView {
    fn from(i: Invitation) -> Self {
        LinkView {
            id: i.id,
            connection_id: i.connection_id,
            environment: i.environment,
            expected_realm: i.expected_realm,
            tenant: i.tenant,
            status: i.status,
            created_at: i.created_at,
            created_by: i.created_by,
            expires_at: i.expires_at,
            opened_at: i.opened_at,
            closed_at: i.closed_at,
        }
    }
}

/// Longest a link may live: long enough for a customer's holiday, short enough that a
/// forgotten link does not stay a way in.
pub const MAX_LINK_LIFETIME: Duration = Duration::from_secs(90 * 86_400);

/// What `[public]` says about links, as the service needs it.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// `[public] base_url` without its trailing slash, or why there is none (the
    /// configuration's own words, kept as text because a settings value is cloned).
    base_url: std::result::Result<String, String>,
    pub link_expires: Duration,
    pub state_expires: Duration,
    /// `[environments.*] scopes`, space separated, for a pending row.
    pub scopes: std::collections::HashMap<Environment, String>,
}

impl LinkSettings {
    pub fn from_config(config: &qbo_core::config::Config) -> LinkSettings {
        LinkSettings {
            base_url: config.public.base(&config.source).map_err(|e| e.0),
            link_expires: config.public.link_expires,
            state_expires: config.public.state_expires,
            scopes: config
                .environments
                .iter()
                .map(|(env, e)| (*env, e.scopes.join(" ")))
                .collect(),
        }
    }
}

/// `link TARGET` or `link --new --tenant NAME --env ENV`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRequest {
    #[serde(default)]
    pub target: Option<String>,
    /// `--new`: the tenant name of a company that has no connection yet.
    #[serde(default)]
    pub new_tenant: Option<String>,
    #[serde(default)]
    pub environment: Option<Environment>,
    /// `--expires`, in seconds; `[public] link_expires` without it.
    #[serde(default)]
    pub expires_secs: Option<u64>,
}

/// What `link` prints with `--json`: exactly these three fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedLink {
    pub url: String,
    pub expires_at: DateTime<Utc>,
    pub connection_id: i64,
}

/// A fresh secret of 192 bits from the OS's CSPRNG, URL-safe.
pub(crate) fn secret() -> String {
    use base64::Engine;
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What is stored in place of a secret.
pub(crate) fn hash(secret: &str) -> String {
    qbo_core::vault::hex(&Sha256::digest(secret.as_bytes()))
}

/// The customer's browser on the public listener: the keyed fingerprint of the reconnect
/// link it came through (made from the link id's stored hash, so the same link gives the
/// same fingerprint at `link issued`, when opened and at the callback) and its address.
pub(crate) fn customer_actor(
    vault: &qbo_core::vault::Vault,
    token_hash: Option<&str>,
    address: &str,
) -> Actor {
    Actor::customer(token_hash.map(|h| link_fingerprint(vault, h)), address)
}

/// The fingerprint a reconnect link is known by in the log, from its stored hash.
pub(crate) fn link_fingerprint(vault: &qbo_core::vault::Vault, token_hash: &str) -> String {
    vault.fingerprint(token_hash)
}

impl LinkRequest {
    fn checked(&self) -> Result<(Duration, Option<(String, Environment)>)> {
        let lifetime = requested_lifetime(self.expires_secs)?;
        let new = match (&self.target, &self.new_tenant, self.environment) {
            (Some(_), None, None) => None,
            (None, Some(t), Some(env)) => {
                let t = t.trim();
                if t.is_empty()
                    || t.chars().count() > MAX_NAME_CHARS
                    || t.chars().any(qbo_core::text::is_unsafe)
                {
                    return Err(ServiceError::Input(format!(
                        "link --new --tenant {t:?}: a tenant name is 1 to {MAX_NAME_CHARS} printable characters"
                    )));
                }
                Some((t.to_string(), env))
            }
            _ => {
                return Err(ServiceError::Input(
                    "link needs a TARGET, or --new with --tenant NAME and --env ENV (not both)"
                        .into(),
                ))
            }
        };
        Ok((lifetime.unwrap_or_default(), new))
    }
}

/// `--expires` checked: `None` for the configured default, or the lifetime asked for.
pub(crate) fn requested_lifetime(expires_secs: Option<u64>) -> Result<Option<Duration>> {
    Ok(match expires_secs {
            None => None,
            Some(0) => {
                return Err(ServiceError::Input(
                    "link --expires 0 would make a link that is already expired; give a duration such as 7d".into(),
                ))
            }
            Some(s) if Duration::from_secs(s) > MAX_LINK_LIFETIME => {
                return Err(ServiceError::Input(format!(
                    "link --expires {} is longer than the 90 days a link may live; give at most 90d",
                    qbo_core::present::duration(Duration::from_secs(s))
                )))
            }
            Some(s) => Some(Duration::from_secs(s)),
        })
}

impl Service {
    /// A link's lifetime: the one asked for, or `[public] link_expires`.
    pub(crate) fn link_lifetime(&self, expires_secs: Option<u64>) -> Result<Duration> {
        Ok(requested_lifetime(expires_secs)?.unwrap_or(self.links.link_expires))
    }

    pub(crate) fn base_url(&self) -> Result<&str> {
        self.links
            .base_url
            .as_deref()
            .map_err(|m| ServiceError::Input(m.clone()))
    }

    /// Issues a link: for an existing connection (bound to its environment and realm), or
    /// with `--new` for a company not connected yet (a `pending` row is created for it).
    pub async fn link_issue(&self, caller: &Actor, req: &LinkRequest) -> Result<IssuedLink> {
        let (lifetime, new) = req.checked()?;
        self.authorize(caller, Permission::ReconnectLink, Action::LinkIssued)
            .await?;
        let base = self.base_url()?.to_string();
        let lifetime = if lifetime.is_zero() {
            self.links.link_expires
        } else {
            lifetime
        };
        let now = self.engine.clock.now();
        let expires_at = now + ChronoDuration::from_std(lifetime).map_err(anyhow::Error::from)?;
        let mut tx;
        let (rec_id, env, realm, tenant, created) = match new {
            None => {
                let target = req.target.as_deref().unwrap_or_default();
                let rec = self.resolve(target).await?;
                if matches!(rec.status, Status::Revoking | Status::Revoked) {
                    return Err(ServiceError::Input(format!(
                        "{} ({}:{}) is {}: its grant was revoked on purpose; invite the company afresh with `link --new --tenant NAME --env {}`",
                        rec.tenant, rec.environment, rec.realm_id, rec.status, rec.environment
                    )));
                }
                self.engine
                    .client(rec.environment)
                    .map_err(|e| ServiceError::Input(e.0))?;
                tx = self.store().begin().await?;
                let realm = (!rec.realm_id.is_unknown()).then(|| rec.realm_id.to_string());
                (rec.id, rec.environment, realm, rec.tenant, false)
            }
            Some((tenant, env)) => {
                self.engine
                    .client(env)
                    .map_err(|e| ServiceError::Input(e.0))?;
                let same = self.store().find_connections(&tenant).await?;
                if let Some(r) = same.iter().find(|r| r.environment == env) {
                    return Err(ServiceError::Input(format!(
                        "tenant {tenant:?} already has a {env} connection ({}, {}); issue its link with `link {tenant}`",
                        r.id, r.status
                    )));
                }
                tx = self.store().begin().await?;
                let scopes = self.links.scopes.get(&env).cloned().unwrap_or_default();
                let id = tx
                    .insert_pending_connection(&tenant, env, &scopes, now)
                    .await?;
                (id, env, None, tenant, true)
            }
        };
        let (token, mut ev) = self
            .issue_in(
                &mut tx,
                caller,
                &Invitee {
                    connection_id: rec_id,
                    environment: env,
                    realm: realm.as_deref(),
                    tenant: &tenant,
                },
                now,
                expires_at,
                None,
            )
            .await?;
        if created {
            if let Some(r) = ev.reason.as_mut() {
                r.push_str("; a pending connection was created for a company not connected yet");
            }
        }
        self.engine.commit_audited(tx, &[ev]).await?;
        Ok(IssuedLink {
            url: format!("{base}/connect/{token}"),
            expires_at,
            connection_id: rec_id,
        })
    }

    /// Inserts one open link for `who` in `tx` and returns its secret and its `link issued`
    /// event (to be committed with the transaction). The secret leaves only in the answer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn issue_in(
        &self,
        tx: &mut qbo_store::Tx,
        caller: &Actor,
        who: &Invitee<'_>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        campaign: Option<i64>,
    ) -> Result<(String, AuditEvent)> {
        let token = secret();
        let inv_id = tx
            .insert_invitation(
                &hash(&token),
                who.connection_id,
                who.environment,
                who.realm,
                who.tenant,
                &caller.name(),
                now,
                expires_at,
                campaign,
            )
            .await?;
        // The link's fingerprint ties this event to the customer's acts through it.
        let mut ev = AuditEvent::new(now, caller, Action::LinkIssued, Outcome::Ok)
            .target(
                who.connection_id,
                who.environment.as_str(),
                who.realm.unwrap_or(""),
                who.tenant,
            )
            .fingerprint("link", link_fingerprint(&self.engine.vault, &hash(&token)));
        ev.reason = Some(format!(
            "link {inv_id} issued{}, valid until {}",
            campaign
                .map(|c| format!(" in campaign {c}"))
                .unwrap_or_default(),
            expires_at.to_rfc3339(),
        ));
        Ok((token, ev))
    }

    /// The open links (after closing those whose time is up), recorded as a read.
    pub async fn links_open(&self, caller: &Actor) -> Result<Vec<LinkView>> {
        self.authorize(caller, Permission::ReconnectLink, Action::LinkList)
            .await?;
        self.expire_links().await?;
        let open = self.store().open_invitations().await?;
        let shown = format!("listed {} open reconnect links", open.len());
        self.record_view(caller, Action::LinkList, None, shown)
            .await?;
        Ok(open.into_iter().map(LinkView::from).collect())
    }

    /// Starts `links` of any length: authorized, expired links closed, and the read on the
    /// record before the first link leaves.
    pub async fn links_begin(&self, caller: &Actor) -> Result<LinksCursor> {
        self.authorize(caller, Permission::ReconnectLink, Action::LinkList)
            .await?;
        self.expire_links().await?;
        self.record_view(
            caller,
            Action::LinkList,
            None,
            "listing open reconnect links page by page".into(),
        )
        .await?;
        Ok(LinksCursor::default())
    }

    /// The next frame of `links`: a page of open links in their order, then the end with
    /// the count, then `None`.
    pub async fn links_next_frame(&self, c: &mut LinksCursor) -> Result<Option<LinkFrame>> {
        if c.ended {
            return Ok(None);
        }
        let page = self
            .store()
            .open_invitations_after(c.after, LINKS_PAGE)
            .await?;
        let Some(last) = page.last() else {
            c.ended = true;
            return Ok(Some(LinkFrame::End { count: c.sent }));
        };
        c.after = last.id;
        c.sent += page.len() as u64;
        Ok(Some(LinkFrame::Links {
            links: page.into_iter().map(LinkView::from).collect(),
        }))
    }

    /// Cancels an open link by its number (as `links` shows it).
    pub async fn link_cancel(&self, caller: &Actor, id: &str) -> Result<LinkView> {
        let n: i64 = id.trim().trim_start_matches('#').parse().map_err(|_| {
            ServiceError::Input(format!(
                "link cancel {id:?}: expected the link's number as `links` shows it"
            ))
        })?;
        self.authorize(caller, Permission::ReconnectLink, Action::LinkCancelled)
            .await?;
        let Some(inv) = self.store().invitation(n).await? else {
            return Err(ServiceError::NotFound(format!(
                "no link {n}; `qbo-console links` lists the open ones"
            )));
        };
        if inv.status != "open" {
            return Err(ServiceError::Input(format!(
                "link {n} is already {}; only an open link can be cancelled",
                inv.status
            )));
        }
        let now = self.engine.clock.now();
        let mut tx = self.store().begin().await?;
        if !tx.close_invitation(n, "cancelled", now).await? {
            tx.rollback().await?;
            return Err(ServiceError::Input(format!(
                "link {n} was closed meanwhile; `qbo-console links` lists the open ones"
            )));
        }
        let mut ev = AuditEvent::new(now, caller, Action::LinkCancelled, Outcome::Ok);
        ev = invitation_target(ev, &inv);
        ev.reason = Some(format!(
            "link {n} cancelled; it no longer opens and a consent already under way through it is refused"
        ));
        self.engine.commit_audited(tx, &[ev]).await?;
        Ok(LinkView {
            status: "cancelled".into(),
            closed_at: Some(now),
            ..LinkView::from(inv)
        })
    }

    /// Closes every open link whose time is up, recording `link expired` for each. Run by
    /// the daemon now and then, and before links are listed or opened.
    pub async fn expire_links(&self) -> anyhow::Result<usize> {
        let now = self.engine.clock.now();
        let actor = Actor::daemon(DaemonTask::LinkExpiry);
        let mut n = 0;
        // A page per transaction: a campaign's 10,000 links lapsing together would otherwise
        // hold the database's write lock (and a console's opening behind it) for one write
        // of 10,000 rows and events.
        loop {
            let lapsed = self.store().lapsed_invitations(now, EXPIRE_PAGE).await?;
            if lapsed.is_empty() {
                return Ok(n);
            }
            let mut tx = self.store().begin().await?;
            let mut events = Vec::new();
            for inv in &lapsed {
                if tx.close_invitation(inv.id, "expired", now).await? {
                    let mut ev = invitation_target(
                        AuditEvent::new(now, &actor, Action::LinkExpired, Outcome::Ok),
                        inv,
                    );
                    ev.reason = Some(format!(
                        "link {} expired unused at {}",
                        inv.id,
                        inv.expires_at.to_rfc3339()
                    ));
                    events.push(ev);
                    n += 1;
                }
            }
            self.engine.commit_audited(tx, &events).await?;
            if (lapsed.len() as i64) < EXPIRE_PAGE {
                return Ok(n);
            }
        }
    }
}

/// Names the invitation's connection in an event.
pub(crate) fn invitation_target(ev: AuditEvent, inv: &Invitation) -> AuditEvent {
    ev.target(
        inv.connection_id,
        inv.environment.as_str(),
        inv.expected_realm.as_deref().unwrap_or(""),
        &inv.tenant,
    )
}

/// Whom a link is for.
pub(crate) struct Invitee<'a> {
    pub connection_id: i64,
    pub environment: Environment,
    /// `None` for a company not connected yet.
    pub realm: Option<&'a str>,
    pub tenant: &'a str,
}

/// Open links read per page by `links`.
const LINKS_PAGE: i64 = 1000;
/// Lapsed links closed per transaction by `expire_links`.
const EXPIRE_PAGE: i64 = 500;

/// Where a streamed `links` is.
#[derive(Default)]
pub struct LinksCursor {
    after: i64,
    ended: bool,
    pub sent: u64,
}

/// One frame of a streamed `links`: open links, then the end with how many were sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LinkFrame {
    Links { links: Vec<LinkView> },
    End { count: u64 },
}
