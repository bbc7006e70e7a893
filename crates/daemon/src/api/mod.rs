//! The token API: the host app asks the daemon for a connection's access token instead of
//! refreshing on its own (racing the daemon for the same rotating refresh token is the
//! most common way QuickBooks connections die). It runs on its own listener, `[api]
//! listen`, behind service API keys (`apikey create`).
//!
//! The hot path (a token with more than `[api] min_validity` left) touches no database: keys
//! found valid and the connections of a realm, their access tokens opened, are kept for
//! `keys::CACHE_FOR`, dropped at once when this process commits a change to them, and the
//! hand-out record is written only for the first hand-out of each value (see `handouts`).

pub mod handouts;
pub use qbo_service::service_keys as keys;
mod routes;

pub use qbo_core::config::{ApiConfig, WebhooksConfig};
pub use routes::{router, ROUTES};

use chrono::Duration as ChronoDuration;
use qbo_core::identity::Actor;
use qbo_service::Service;
use qbo_service::{Action, AuditEvent, Outcome};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A connection as the token API serves it (the service's `TokenHolder`).
pub use qbo_service::TokenHolder as Snapshot;

/// Who a hand-out's record names as its target.
fn target(s: &Snapshot) -> handouts::Target {
    handouts::Target {
        id: s.id,
        environment: s.environment.as_str(),
        realm_id: s.realm_id.clone(),
        tenant: s.tenant.clone(),
    }
}

type Realm = Arc<Vec<Arc<Snapshot>>>;

/// The token API's state, shared by its requests.
pub struct TokenApi {
    pub service: Service,
    min_validity: ChronoDuration,
    keys: keys::KeyCache,
    realms: Mutex<HashMap<String, (Instant, Realm)>>,
    ledger: handouts::Ledger,
}

/// Who presented a request, as far as its refusal is keyed: the peer's address and the
/// bearer key it presented (fingerprinted only when refused).
pub struct Presenter<'a> {
    pub peer: Option<std::net::IpAddr>,
    pub key: Option<&'a str>,
}

/// What a request for a token came to.
pub enum Fetched {
    Token(Arc<Snapshot>),
    /// The connection cannot give tokens (needs reconnect, revoked, …).
    Dead(Arc<Snapshot>),
    /// The token expired and a refresh could not replace it; the outcome says why.
    Unavailable(String),
}

impl TokenApi {
    pub fn new(service: Service, cfg: &ApiConfig) -> Arc<TokenApi> {
        Arc::new(TokenApi {
            service,
            min_validity: ChronoDuration::from_std(cfg.min_validity)
                .unwrap_or(ChronoDuration::minutes(5)),
            keys: keys::KeyCache::default(),
            realms: Mutex::default(),
            ledger: handouts::Ledger::default(),
        })
    }

    /// The actor a key's requests are recorded as: the host application `service:NAME`
    /// (`service:unknown` without a key the daemon knows), never an operator.
    pub fn actor(&self, key: Option<&keys::ServiceKey>) -> Actor {
        Actor::service(key.map(|k| k.name.as_str())).without_request()
    }

    /// The connections to `realm`, from the cache or freshly read.
    pub async fn realm(&self, realm: &str, fresh: bool) -> anyhow::Result<Realm> {
        if !fresh {
            let realms = self.realms.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, r)) = realms.get(realm) {
                if at.elapsed() < keys::CACHE_FOR {
                    return Ok(r.clone());
                }
            }
        }
        let out = self
            .service
            .token_holders(realm)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect();
        let r: Realm = Arc::new(out);
        let mut realms = self.realms.lock().unwrap_or_else(|p| p.into_inner());
        realms.retain(|_, (at, _)| at.elapsed() < keys::CACHE_FOR);
        realms.insert(realm.to_string(), (Instant::now(), r.clone()));
        Ok(r)
    }

    /// Drops what this process changed from the cache (called for each committed change).
    fn forget(&self, connection: Option<i64>) {
        let mut realms = self.realms.lock().unwrap_or_else(|p| p.into_inner());
        match connection {
            Some(id) => realms.retain(|_, (_, r)| r.iter().all(|s| s.id != id)),
            None => self.keys.clear(),
        }
    }

    /// A token with at least `[api] min_validity` left, refreshed first if needed through
    /// the engine's single flight.
    pub async fn fetch(
        &self,
        key: &keys::ServiceKey,
        conn: Arc<Snapshot>,
    ) -> anyhow::Result<Fetched> {
        if !conn.status.is_live() {
            return Ok(Fetched::Dead(conn));
        }
        let now = self.service.now();
        let fresh_until = now + self.min_validity;
        if conn.token.is_some() && conn.access_expires_at.is_some_and(|t| t >= fresh_until) {
            return Ok(Fetched::Token(conn));
        }
        let actor = Actor {
            request_id: Some(qbo_core::identity::new_request_id()),
            ..self.actor(Some(key))
        };
        let outcome = self
            .service
            .refresh_unless_fresh(conn.id, &actor, fresh_until)
            .await?;
        let realm = self.realm(&conn.realm_id, true).await?;
        let Some(now_conn) = realm.iter().find(|s| s.id == conn.id).cloned() else {
            return Ok(Fetched::Unavailable(
                "the connection was deleted while its token was refreshed".into(),
            ));
        };
        if !now_conn.status.is_live() {
            return Ok(Fetched::Dead(now_conn));
        }
        let now = self.service.now();
        match (&now_conn.token, now_conn.access_expires_at) {
            // Still valid, if for less than min_validity when Intuit could not be reached:
            // better than nothing, and the scheduler keeps trying.
            (Some(_), Some(t)) if t > now => Ok(Fetched::Token(now_conn)),
            _ => Ok(Fetched::Unavailable(qbo_service::describe_refresh(
                &outcome,
            ))),
        }
    }

    /// Records the first hand-out of a value to a service (and the summary of the value it
    /// supersedes) before the token leaves; later hand-outs are only counted.
    pub async fn record_hand_out(
        &self,
        key: &keys::ServiceKey,
        conn: &Snapshot,
        fingerprint: &str,
    ) -> anyhow::Result<()> {
        let now = self.service.now();
        let actor = self.actor(Some(key));
        let Some(rec) = self
            .ledger
            .hand_out(key.id, &actor, &target(conn), fingerprint, now)
        else {
            return Ok(());
        };
        let events: Vec<AuditEvent> = rec.superseded.into_iter().chain([rec.first]).collect();
        let written = self.service.record_reads(&events).await;
        if written.is_err() {
            self.ledger.unrecorded(key.id, conn.id, fingerprint);
        }
        written
    }

    /// Records a refusal (a missing, unknown or revoked key, or a connection the key may
    /// not read) of a request from `from`, as `kind` (missing, unknown, revoked or not
    /// found). A flood of bad keys must not grow the log without bound: the first refusal
    /// a minute per address, key fingerprint (or "no key"; any unknown key) and kind is
    /// recorded, the rest counted into one summary event (`service::refusals`, the same
    /// windows as the operators' role refusals, swept by the daemon and at shutdown).
    pub async fn record_refusal(
        &self,
        key: Option<&keys::ServiceKey>,
        key_name: Option<String>,
        conn: Option<&Snapshot>,
        reason: String,
        from: &Presenter<'_>,
        kind: &str,
    ) -> anyhow::Result<()> {
        let actor = match key_name {
            Some(name) => Actor::service(Some(&name)).without_request(),
            None => self.actor(key),
        };
        let presented = match from.key {
            Some(k) => format!("key {}", self.service.fingerprint(k)),
            None => "no key".to_string(),
        };
        let address = from
            .peer
            .map_or_else(|| "an unknown address".to_string(), |ip| ip.to_string());
        let mut ev = AuditEvent::new(
            self.service.now(),
            &actor,
            Action::AccessTokenRefused,
            Outcome::Denied,
        );
        if let Some(c) = conn {
            ev = ev.target(c.id, c.environment.as_str(), &c.realm_id, &c.tenant);
        }
        ev.reason = Some(format!("{reason} (from {address}, {presented})"));
        // An unknown key's fingerprint tells nothing (anyone can make up keys): keyed by
        // it, a flood of made-up keys would open a window per key. Keys that exist, and
        // "no key", are told apart by what they present.
        let origin = match kind {
            "unknown" => format!("{address} unknown keys"),
            _ => format!("{address} {presented} {kind}"),
        };
        self.service
            .record_counted_refusal(ev, &actor, &origin)
            .await
    }

    /// Records the summaries of every value handed out more than once: at shutdown, so
    /// no count is lost.
    pub async fn flush(&self) -> anyhow::Result<usize> {
        let events = self.ledger.drain(self.service.now());
        if events.is_empty() {
            return Ok(0);
        }
        self.service.record_reads(&events).await?;
        Ok(events.len())
    }

    /// Keeps the caches in step with what this process (or, on PostgreSQL, any daemon)
    /// commits, until `stop`.
    pub async fn follow_changes(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut changes = self.service.subscribe_changes();
        loop {
            tokio::select! {
                c = changes.recv() => match c {
                    Ok(c) => self.forget(c.connection_id),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        self.realms.lock().unwrap_or_else(|p| p.into_inner()).clear();
                        self.keys.clear();
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = stop.changed() => break,
            }
        }
    }
}

/// A running token API listener.
pub struct ApiServer {
    pub api: Arc<TokenApi>,
    pub addr: std::net::SocketAddr,
    pub tls: bool,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ApiServer {
    /// Binds `[api] listen` and serves the token API and `extra` (the webhooks until the
    /// public listener exists). A non-loopback address without TLS is refused: keys and
    /// tokens would cross the network in cleartext.
    pub async fn start(
        service: Service,
        config: &qbo_core::config::Config,
        extra: axum::Router,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<ApiServer> {
        use anyhow::Context;
        let cfg = &config.api;
        let addr: std::net::SocketAddr = cfg.listen.parse().context("[api] listen")?;
        if !addr.ip().is_loopback() && !cfg.tls() {
            return Err(qbo_core::config::ConfigError(format!(
                "[api] listen {addr} is not a loopback address and no TLS is configured: service keys and access tokens would cross the network in cleartext; set [api] tls_cert_file and tls_key_file, or listen on 127.0.0.1"
            ))
            .into());
        }
        let tls = match (&cfg.tls_cert_file, &cfg.tls_key_file) {
            (Some(c), Some(k)) => Some(crate::tls::acceptor(c, k)?),
            _ => None,
        };
        let tcp = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} ([api] listen): is another daemon using it?")
        })?;
        let addr = tcp.local_addr()?;
        let api = TokenApi::new(service, cfg);
        let app = router(api.clone()).merge(extra);
        let mut tasks = vec![tokio::spawn(api.clone().follow_changes(stop.clone()))];
        // The peer's address keys the refusals of bad keys (see `record_refusal`).
        tasks.push(tokio::spawn(crate::http_listener::serve_with(
            tcp,
            app,
            crate::http_listener::Limits::new(
                config.listener_limits(qbo_core::config::Listener::Api),
                routes::bodies,
            ),
            stop,
            crate::http_listener::Extras {
                tls,
                connect_info: true,
                finish: None,
            },
        )));
        Ok(ApiServer {
            api,
            addr,
            tls: cfg.tls(),
            tasks,
        })
    }

    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }
}
