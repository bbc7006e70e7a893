//! Reconnect campaigns: `link --where FILTER --csv FILE` makes one reconnect link for each
//! connection a filter selects, as one act (one transaction, one `link campaign` event
//! beside each link's own `link issued`), and `links --campaign ID` follows them: how many
//! were opened, completed, expired. The CSV for the mail merge is the client's to write:
//! the links' secrets leave the daemon only in the answer, as a single link's does.

use super::{filter, Permission, Result, Service, ServiceError};
use crate::links::Invitee;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use qbo_core::domain::{Environment, Status};
use qbo_core::identity::Actor;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use serde::{Deserialize, Serialize};

/// The most links one campaign makes: every link is one transaction's row and its audit
/// event, and the answer carries them all. A larger group is split by narrowing the filter
/// (by environment, by days left), which also keeps each mail merge reviewable.
pub const MAX_CAMPAIGN: usize = 10_000;

/// `link --where FILTER --csv FILE [--expect N] [--expires D]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRequest {
    pub filter: String,
    /// The count the operator confirmed: if the filter selects another number, nothing is
    /// made.
    #[serde(default)]
    pub expect: Option<u64>,
    #[serde(default)]
    pub expires_secs: Option<u64>,
}

/// One link of a campaign, as the mail merge needs it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignLink {
    pub connection_id: i64,
    pub tenant: String,
    pub company: Option<String>,
    pub realm_id: Option<String>,
    pub environment: Environment,
    /// The link itself: a secret until the customer has it.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for CampaignLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CampaignLink")
            .field("connection_id", &self.connection_id)
            .field("tenant", &self.tenant)
            .field("environment", &self.environment)
            .field("url", &"<secret>")
            .finish()
    }
}

/// A connection the filter selected that was given no link, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub connection_id: i64,
    pub tenant: String,
    pub why: String,
}

/// What `link --where` answers: the campaign as it stands (all open), its links and the
/// selected connections left out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedCampaign {
    pub campaign: CampaignView,
    pub links: Vec<CampaignLink>,
    pub left_out: Vec<LeftOut>,
}

/// A campaign and how its links stand: what `links --campaign ID` and the console's
/// campaigns view show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignView {
    pub id: i64,
    pub filter: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: DateTime<Utc>,
    /// Links made.
    pub links: u64,
    /// Still open (neither used, cancelled nor expired).
    pub open: u64,
    /// Opened by a customer at least once, whatever became of them.
    pub opened: u64,
    pub completed: u64,
    pub expired: u64,
    pub cancelled: u64,
}

impl From<qbo_store::Campaign> for CampaignView {
    fn from(c: qbo_store::Campaign) -> Self {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        CampaignView {
            id: c.id,
            filter: c.filter,
            created_at: c.created_at,
            created_by: c.created_by,
            expires_at: c.expires_at,
            links: n(c.link_count),
            open: n(c.open),
            opened: n(c.opened),
            completed: n(c.completed),
            expired: n(c.expired),
            cancelled: n(c.cancelled),
        }
    }
}

/// Campaigns `links --campaigns` and the console list, newest first.
pub const CAMPAIGNS_SHOWN: i64 = 200;

/// Why a selected connection gets no link, if it gets none.
fn left_out_because(status: Status) -> Option<&'static str> {
    match status {
        Status::Revoking | Status::Revoked => {
            Some("its grant was revoked on purpose: invite the company afresh with `link --new`")
        }
        _ => None,
    }
}

impl Service {
    /// Makes a campaign: a link for every connection `req.filter` selects now (those whose
    /// grant was revoked on purpose left out and named), committed as one transaction with
    /// one `link issued` per link and one `link campaign`, then answered.
    pub async fn link_campaign(
        &self,
        caller: &Actor,
        req: &CampaignRequest,
    ) -> Result<IssuedCampaign> {
        let text = req.filter.trim();
        if text.is_empty() {
            return Err(ServiceError::Input(
                "link --where needs a filter (an empty one selects every connection); \
                 `status:needs_reconnect` selects those waiting for their customer"
                    .into(),
            ));
        }
        let parsed = filter::Filter::parse(text)
            .map_err(|e| ServiceError::Input(format!("link --where: {e}")))?;
        let lifetime = self.link_lifetime(req.expires_secs)?;
        self.authorize(caller, Permission::ReconnectLink, Action::LinkCampaign)
            .await?;
        let base = self.base_url()?.to_string();
        let ids = self.matching_ids(&parsed).await?;
        if let Some(n) = req.expect.filter(|n| *n != ids.len() as u64) {
            return Err(ServiceError::Input(format!(
                "the filter {text:?} now selects {} connections, not the {n} confirmed; \
                 no link was made: look again and confirm the new count",
                ids.len()
            )));
        }
        if ids.is_empty() {
            return Err(ServiceError::Input(format!(
                "the filter {text:?} selects no connection; no campaign was made \
                 (`qbo-console list --where {text:?}` shows what it selects)"
            )));
        }
        if ids.len() > MAX_CAMPAIGN {
            return Err(ServiceError::Input(format!(
                "the filter {text:?} selects {} connections; a campaign makes at most {MAX_CAMPAIGN} \
                 links: narrow it (for example with env:production or days<30) and make several",
                ids.len()
            )));
        }
        let (chosen, left): (Vec<_>, Vec<_>) = self
            .records_in_order(&ids)
            .await?
            .into_iter()
            .partition(|r| left_out_because(r.status).is_none());
        let left_out: Vec<LeftOut> = left
            .iter()
            .map(|r| LeftOut {
                connection_id: r.id,
                tenant: r.tenant.clone(),
                why: left_out_because(r.status).unwrap_or_default().into(),
            })
            .collect();
        if chosen.is_empty() {
            return Err(ServiceError::Input(format!(
                "every connection the filter {text:?} selects ({}) was revoked on purpose; \
                 no campaign was made",
                left_out.len()
            )));
        }
        for env in Environment::ALL {
            if chosen.iter().any(|r| r.environment == env) {
                self.engine
                    .client(env)
                    .map_err(|e| ServiceError::Input(e.0))?;
            }
        }
        let now = self.engine.clock.now();
        let expires_at = now + ChronoDuration::from_std(lifetime).map_err(anyhow::Error::from)?;
        let mut tx = self.store().begin().await?;
        let id = tx
            .insert_campaign(text, &caller.name(), now, expires_at, chosen.len() as i64)
            .await?;
        let mut events = Vec::with_capacity(chosen.len() + 1);
        let mut links = Vec::with_capacity(chosen.len());
        for r in &chosen {
            let realm = (!r.realm_id.is_unknown()).then(|| r.realm_id.to_string());
            let (token, ev) = self
                .issue_in(
                    &mut tx,
                    caller,
                    &Invitee {
                        connection_id: r.id,
                        environment: r.environment,
                        realm: realm.as_deref(),
                        tenant: &r.tenant,
                    },
                    now,
                    expires_at,
                    Some(id),
                )
                .await?;
            events.push(ev);
            links.push(CampaignLink {
                connection_id: r.id,
                tenant: r.tenant.clone(),
                company: r.company_name.clone(),
                realm_id: realm,
                environment: r.environment,
                url: format!("{base}/connect/{token}"),
                expires_at,
            });
        }
        let mut ev = AuditEvent::new(now, caller, Action::LinkCampaign, Outcome::Ok);
        ev.reason = Some(format!(
            "campaign {id}: {} links for the filter {text:?}, valid until {}{}",
            links.len(),
            expires_at.to_rfc3339(),
            left_out_summary(&left_out),
        ));
        events.push(ev);
        self.engine.commit_audited(tx, &events).await?;
        let campaign = CampaignView {
            id,
            filter: text.to_string(),
            created_at: now,
            created_by: caller.name(),
            expires_at,
            links: links.len() as u64,
            open: links.len() as u64,
            opened: 0,
            completed: 0,
            expired: 0,
            cancelled: 0,
        };
        Ok(IssuedCampaign {
            campaign,
            links,
            left_out,
        })
    }

    /// One campaign and how its links stand (after closing links whose time is up).
    pub async fn campaign(&self, caller: &Actor, id: i64) -> Result<CampaignView> {
        self.authorize(caller, Permission::ReconnectLink, Action::LinkList)
            .await?;
        self.expire_links().await?;
        let Some(c) = self.store().campaign(id).await? else {
            return Err(ServiceError::NotFound(format!(
                "no campaign {id}; `qbo-console links --campaigns` lists them"
            )));
        };
        let c = CampaignView::from(c);
        let shown = format!(
            "shown campaign {id}: {} links, {} opened, {} completed, {} expired",
            c.links, c.opened, c.completed, c.expired
        );
        self.record_view(caller, Action::LinkList, None, shown)
            .await?;
        Ok(c)
    }

    /// The newest campaigns, newest first, with how their links stand.
    pub async fn campaigns(&self, caller: &Actor) -> Result<Vec<CampaignView>> {
        self.authorize(caller, Permission::ReconnectLink, Action::LinkList)
            .await?;
        self.expire_links().await?;
        let all = self.store().campaigns(CAMPAIGNS_SHOWN).await?;
        let shown = format!("listed {} reconnect campaigns", all.len());
        self.record_view(caller, Action::LinkList, None, shown)
            .await?;
        Ok(all.into_iter().map(CampaignView::from).collect())
    }
}

/// The left-out connections in an event's reason: the count and the first few names.
fn left_out_summary(left: &[LeftOut]) -> String {
    if left.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = left.iter().take(5).map(|l| l.tenant.as_str()).collect();
    format!(
        "; {} selected but left out, revoked on purpose ({}{})",
        left.len(),
        names.join(", "),
        if left.len() > names.len() {
            ", …"
        } else {
            ""
        }
    )
}

/// Parses a campaign's number as `links --campaign` takes it (`7` or `#7`).
pub fn campaign_number(text: &str) -> Result<i64> {
    crate::number_in(text).ok_or_else(|| {
        ServiceError::Input(format!(
            "--campaign {text:?}: expected a campaign's number, as `link --where` printed it"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_campaign_link_never_shows_its_url_in_debug() {
        let l = CampaignLink {
            connection_id: 1,
            tenant: "t".into(),
            company: None,
            realm_id: None,
            environment: Environment::Sandbox,
            url: "https://x/connect/SECRET".into(),
            expires_at: Utc::now(),
        };
        assert!(!format!("{l:?}").contains("SECRET"));
    }

    #[test]
    fn left_out_connections_are_counted_and_a_few_named() {
        let l: Vec<LeftOut> = (0..7)
            .map(|i| LeftOut {
                connection_id: i,
                tenant: format!("t{i}"),
                why: "x".into(),
            })
            .collect();
        let s = left_out_summary(&l);
        assert!(s.contains("7 selected but left out"), "{s}");
        assert!(s.contains("t0, t1, t2, t3, t4, …"), "{s}");
        assert_eq!(left_out_summary(&[]), "");
    }

    #[test]
    fn campaign_numbers_are_parsed_or_refused_by_name() {
        assert_eq!(campaign_number("#7").unwrap(), 7);
        assert_eq!(campaign_number(" 12 ").unwrap(), 12);
        assert!(campaign_number("x")
            .unwrap_err()
            .to_string()
            .contains("--campaign"));
        assert!(campaign_number("0").is_err());
    }
}
