//! What Intuit remembers: companies (realms), grants, codes, tokens and the
//! counters. Everything lives behind one `std::sync::Mutex` in `Shared`; every
//! method here is a short synchronous critical section.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use super::options::{FaultConfig, FaultKind, PreviousToken, Rotation, SimClient, SimOptions};
use super::realms::Realm;
use super::scopes::ScopeSet;
use super::stats::SimStats;
use super::tokens::{self, AccessKey, AccessSeed, AccessToken};

pub(crate) type GrantId = usize;

/// Lifetimes and rotation rules, changeable at run time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) rotation: Rotation,
    pub(crate) previous_token: PreviousToken,
    pub(crate) access_ttl: Duration,
    pub(crate) idle: Duration,
    pub(crate) hard: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantEnd {
    Revoked,
    Disconnected,
    CodeReplayed,
}

impl GrantEnd {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            GrantEnd::Revoked => "the grant was revoked",
            GrantEnd::Disconnected => "the company disconnected the app",
            GrantEnd::CodeReplayed => {
                "the grant was revoked because its authorization code was used twice"
            }
        }
    }
}

/// One consent: a client's access to (at most) one company.
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) realm_id: Option<String>,
    pub(crate) scopes: ScopeSet,
    pub(crate) consented_at: DateTime<Utc>,
    pub(crate) ended: Option<GrantEnd>,
    /// The newest refresh token; older ones are superseded.
    pub(crate) current_refresh: String,
}

pub(crate) struct RefreshRecord {
    pub(crate) grant: GrantId,
    pub(crate) issued_at: DateTime<Utc>,
    /// Start of the rolling idle window.
    pub(crate) last_used: DateTime<Utc>,
    pub(crate) superseded_at: Option<DateTime<Utc>>,
    /// The token that replaced this one, once it was.
    pub(crate) replaced_by: Option<String>,
    /// Whether a client has presented this token for a refresh: proof that it held it.
    pub(crate) presented: bool,
    /// Requests currently processing this token (see `token_latency`).
    pub(crate) in_flight: u32,
}

pub(crate) struct AccessRecord {
    pub(crate) grant: GrantId,
    pub(crate) expires_at: DateTime<Utc>,
}

pub(crate) struct CodeRecord {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: ScopeSet,
    pub(crate) realm_id: Option<String>,
    pub(crate) issued_at: DateTime<Utc>,
    /// The grant the first exchange produced.
    pub(crate) exchanged: Option<GrantId>,
}

/// Access tokens are remembered by seed (see `tokens`), the rest verbatim.
#[derive(Clone)]
pub(crate) enum Issued {
    Text(String),
    Access(AccessSeed),
}

/// A token response before it is rendered as JSON.
#[derive(Debug, Clone)]
pub(crate) struct TokenSet {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    pub(crate) expires_in: i64,
    pub(crate) refresh_expires_in: i64,
    pub(crate) hard_expires_in: i64,
    pub(crate) realm_id: Option<String>,
}

/// Why an access token was refused by the QBO API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessDenied {
    Unknown,
    Expired,
    Ended(GrantEnd),
}

pub(crate) enum RevokeOutcome {
    Ended,
    AlreadyEnded,
    Unknown,
    OtherClient,
}

pub(crate) struct State {
    pub(crate) clients: HashMap<String, SimClient>,
    pub(crate) policy: Policy,
    pub(crate) faults: FaultConfig,
    /// Faults for one company's requests, in place of `faults`: Intuit having trouble
    /// with some companies while serving the others normally.
    pub(crate) realm_faults: HashMap<String, FaultConfig>,
    pub(crate) token_latency: StdDuration,
    /// How long each companyinfo call is held before it is answered, and how many are
    /// being held now: what shows a client's concurrency.
    pub(crate) company_info_latency: StdDuration,
    pub(crate) company_info_in_flight: u64,
    /// Companies whose API refuses every access token (401, fault 3201) while the token
    /// endpoint still refreshes them: the reading of a customer disconnect in which
    /// Intuit's OAuth service lags behind the API (INTUIT.md, "Revocation").
    pub(crate) api_disconnected: std::collections::HashSet<String>,
    pub(crate) grants: Vec<Grant>,
    pub(crate) refresh: HashMap<String, RefreshRecord>,
    pub(crate) access: HashMap<AccessKey, AccessRecord>,
    pub(crate) codes: HashMap<String, CodeRecord>,
    pub(crate) realms: HashMap<String, Realm>,
    issued: Vec<Issued>,
    pub(crate) stats: SimStats,
    pub(crate) company_counter: u64,
}

impl State {
    pub(crate) fn new(opts: &SimOptions) -> State {
        State {
            clients: opts
                .clients
                .iter()
                .map(|c| (c.client_id.clone(), c.clone()))
                .collect(),
            policy: Policy {
                rotation: opts.rotation,
                previous_token: opts.previous_token,
                access_ttl: Duration::seconds(opts.access_token_ttl_secs),
                idle: Duration::seconds(opts.refresh_idle_secs),
                hard: Duration::seconds(opts.hard_limit_secs),
            },
            faults: opts.faults.clone(),
            realm_faults: HashMap::new(),
            token_latency: opts.token_latency,
            company_info_latency: StdDuration::ZERO,
            company_info_in_flight: 0,
            api_disconnected: Default::default(),
            grants: Vec::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            codes: HashMap::new(),
            realms: HashMap::new(),
            issued: Vec::new(),
            stats: SimStats::default(),
            company_counter: 0,
        }
    }

    /// Draws whether a request to `surface` about `realm` (when known) gets a fault, and which: the
    /// realm's own fault configuration if it has one, the global one otherwise.
    pub(crate) fn roll_fault(
        &mut self,
        realm: Option<&str>,
        surface: crate::options::Surface,
    ) -> Option<FaultKind> {
        use rand::seq::SliceRandom;
        use rand::Rng;
        let f = self.fault_config(realm);
        if f.rate.is_nan() || f.rate <= 0.0 || f.kinds.is_empty() || !f.covers(surface) {
            return None;
        }
        let mut rng = rand::thread_rng();
        if !rng.gen_bool(f.rate.clamp(0.0, 1.0)) {
            return None;
        }
        let kind = f.kinds.choose(&mut rng).copied();
        if kind.is_some() {
            self.stats.faults_injected += 1;
        }
        kind
    }

    /// The fault configuration that applies to a request about `realm`.
    pub(crate) fn fault_config(&self, realm: Option<&str>) -> &FaultConfig {
        realm
            .and_then(|r| self.realm_faults.get(r))
            .unwrap_or(&self.faults)
    }

    /// The company a token request is about, read from its form body (the refresh token's
    /// grant, or the code's company), when some company has faults of its own. Unparsable
    /// bodies are about no company; the endpoint refuses them later.
    pub(crate) fn realm_of_token_request(&self, body: &[u8]) -> Option<String> {
        if self.realm_faults.is_empty() {
            return None;
        }
        let form = super::http::parse_form(body).ok()?;
        if let Some(token) = form.get("refresh_token") {
            return self.realm_of_token(token, None);
        }
        let code = self.codes.get(form.get("code")?)?;
        code.realm_id.clone()
    }

    /// The company of the grant behind a refresh token or an access token (by its key).
    pub(crate) fn realm_of_token(&self, token: &str, key: Option<&AccessKey>) -> Option<String> {
        let grant = match self.refresh.get(token) {
            Some(r) => r.grant,
            None => self.access.get(key?)?.grant,
        };
        self.grants.get(grant)?.realm_id.clone()
    }

    /// Checks HTTP Basic credentials; `None` when the client is unknown or the
    /// secret is wrong.
    pub(crate) fn authenticate(&self, client_id: &str, secret: &str) -> Option<&SimClient> {
        self.clients
            .get(client_id)
            .filter(|c| c.client_secret == secret)
    }

    pub(crate) fn issue_code(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
        scopes: ScopeSet,
        realm_id: Option<String>,
        now: DateTime<Utc>,
    ) -> String {
        let code = loop {
            let c = tokens::new_code(now);
            if !self.codes.contains_key(&c) {
                break c;
            }
        };
        self.codes.insert(
            code.clone(),
            CodeRecord {
                client_id: client_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                scopes,
                realm_id,
                issued_at: now,
                exchanged: None,
            },
        );
        self.issued.push(Issued::Text(code.clone()));
        code
    }

    /// Records a consent given at `consented_at` and issues its token pair at `now` (the
    /// same moment, except for grants seeded with a history).
    pub(crate) fn create_grant(
        &mut self,
        client_id: &str,
        realm_id: Option<String>,
        scopes: ScopeSet,
        consented_at: DateTime<Utc>,
        now: DateTime<Utc>,
        access: AccessToken,
    ) -> (GrantId, TokenSet) {
        let id = self.grants.len();
        let refresh = self.new_refresh_record(id, now);
        if let Some(r) = realm_id.as_ref().and_then(|r| self.realms.get_mut(r)) {
            r.grants.push(id);
        }
        self.grants.push(Grant {
            client_id: client_id.to_string(),
            realm_id,
            scopes,
            consented_at,
            ended: None,
            current_refresh: refresh.clone(),
        });
        let set = self.token_set(id, refresh, access, now);
        (id, set)
    }

    pub(crate) fn new_refresh_record(&mut self, grant: GrantId, now: DateTime<Utc>) -> String {
        let token = loop {
            let t = tokens::new_refresh_token(now);
            if !self.refresh.contains_key(&t) {
                break t;
            }
        };
        self.refresh.insert(
            token.clone(),
            RefreshRecord {
                grant,
                issued_at: now,
                last_used: now,
                superseded_at: None,
                replaced_by: None,
                presented: false,
                in_flight: 0,
            },
        );
        self.issued.push(Issued::Text(token.clone()));
        token
    }

    /// Registers `access` for the grant and builds the response values for the
    /// refresh token `refresh` (whose idle window was just restarted).
    pub(crate) fn token_set(
        &mut self,
        grant: GrantId,
        refresh: String,
        access: AccessToken,
        now: DateTime<Utc>,
    ) -> TokenSet {
        let p = self.policy;
        self.access.insert(
            access.key,
            AccessRecord {
                grant,
                expires_at: now + p.access_ttl,
            },
        );
        self.issued.push(Issued::Access(access.seed));
        let (hard_left, realm_id) = match self.grants.get(grant) {
            Some(g) => (
                (g.consented_at + p.hard - now).num_seconds(),
                g.realm_id.clone(),
            ),
            None => (p.hard.num_seconds(), None),
        };
        TokenSet {
            access_token: access.text,
            refresh_token: refresh,
            expires_in: p.access_ttl.num_seconds(),
            refresh_expires_in: p.idle.num_seconds().min(hard_left),
            hard_expires_in: hard_left,
            realm_id,
        }
    }

    /// The grant behind a bearer token, if the QBO API would accept it.
    pub(crate) fn access_grant(
        &self,
        key: &AccessKey,
        now: DateTime<Utc>,
    ) -> Result<GrantId, AccessDenied> {
        let rec = self.access.get(key).ok_or(AccessDenied::Unknown)?;
        let grant = self.grants.get(rec.grant).ok_or(AccessDenied::Unknown)?;
        if let Some(end) = grant.ended {
            return Err(AccessDenied::Ended(end));
        }
        if now >= rec.expires_at {
            return Err(AccessDenied::Expired);
        }
        Ok(rec.grant)
    }

    pub(crate) fn revoke(
        &mut self,
        client_id: &str,
        token: &str,
        key: &AccessKey,
    ) -> RevokeOutcome {
        let grant = match self.refresh.get(token) {
            Some(r) => Some(r.grant),
            None => self.access.get(key).map(|a| a.grant),
        };
        let Some(g) = grant.and_then(|g| self.grants.get_mut(g)) else {
            return RevokeOutcome::Unknown;
        };
        if g.client_id != client_id {
            return RevokeOutcome::OtherClient;
        }
        if g.ended.is_some() {
            return RevokeOutcome::AlreadyEnded;
        }
        g.ended = Some(GrantEnd::Revoked);
        self.stats.revoked_grants += 1;
        RevokeOutcome::Ended
    }

    /// A copy of the issued list; expand it with `expand_issued` outside the lock.
    pub(crate) fn issued_snapshot(&self) -> Vec<Issued> {
        self.issued.clone()
    }
}

pub(crate) fn expand_issued(list: Vec<Issued>) -> Vec<String> {
    list.into_iter()
        .map(|i| match i {
            Issued::Text(s) => s,
            Issued::Access(seed) => tokens::access_text(&seed),
        })
        .collect()
}
