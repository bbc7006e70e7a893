//! `qbo-console serve`: the long-running process that alone holds the encryption key, the
//! Intuit client secrets and the database credentials. It runs the scheduler, the
//! operators' socket and the HTTP listener, relays changes between daemons sharing a
//! PostgreSQL database, and shuts down gracefully.

pub mod alerts;
pub mod api;
mod fd_limit;
mod http;
pub(crate) mod http_listener;
pub mod lock;
pub mod public;
pub mod roles;
mod socket;
pub mod tls;
pub mod webhooks;

use anyhow::Context;
use qbo_core::clock::Clock;
use qbo_core::config::{Config, Listener};
use qbo_core::identity::{Actor, DaemonTask};
use qbo_service::tasks::Scheduler;
use qbo_service::Service;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Daemon {
    pub service: Service,
    pub scheduler: Arc<Scheduler>,
    pub http_addr: SocketAddr,
    /// The public listener's address, when `[public] listen` is set.
    pub public_addr: Option<SocketAddr>,
    /// The token API's listener (`[api] listen`), `http://` or `https://`.
    pub api_url: String,
    api: Arc<crate::api::TokenApi>,
    stop: watch::Sender<bool>,
    scheduler_task: JoinHandle<()>,
    other_tasks: Vec<JoinHandle<()>>,
    grace: Duration,
    _lock: Option<lock::DaemonLock>,
}

impl Daemon {
    pub async fn start(config: &Config, clock: Clock) -> anyhow::Result<Daemon> {
        // The file the store opens, read by the store's own reading of the URL, so the lock
        // is always beside the database it guards (percent-decoding included).
        let _lock = match qbo_service::sqlite_file(&config.database()?.url)
            .map_err(|e| qbo_core::config::ConfigError(e.to_string()))?
        {
            Some(db) => Some(lock::DaemonLock::acquire(&db)?),
            None => None,
        };
        fd_limit::check(config);
        let service = Service::open(config, clock).await?;
        let (stop, stop_rx) = watch::channel(false);
        let mut other_tasks = Vec::new();

        // On PostgreSQL every daemon's commits reach this one's live views (watch, caches).
        if let Some(relay) = service.relay_database_changes(stop_rx.clone()).await? {
            other_tasks.push(relay);
        }

        // The consoles' roster is read now, while the daemon starts, not at the first
        // console's first window: at a million connections that takes seconds.
        // A stop abandons the reading: nothing depends on it but the consoles.
        let roster = service.clone();
        let mut stop_r = stop_rx.clone();
        other_tasks.push(tokio::spawn(async move {
            let t = std::time::Instant::now();
            let warmed = tokio::select! {
                r = roster.warm_roster() => r,
                _ = stop_r.changed() => return,
            };
            match warmed {
                Ok(()) => tracing::info!(
                    seconds = t.elapsed().as_secs_f64(),
                    "consoles' roster ready"
                ),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot read the connections for the consoles' roster yet; the first console's window reads them"),
            }
        }));

        // Refusals counted rather than recorded reach the audit log once their window
        // closes, even if their caller never comes back.
        let sweeper = service.clone();
        let mut stop_s = stop_rx.clone();
        other_tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        if let Err(e) = sweeper.record_counted_refusals(false).await {
                            tracing::warn!(error = %format!("{e:#}"), "cannot record the summary of counted refusals; will retry");
                        }
                    }
                    _ = stop_s.changed() => break,
                }
            }
        }));

        // SQLite's write-ahead log emptied every few seconds (see `qbo_store::wal`): under
        // constant reads and writes it would otherwise grow without end.
        let wal_store = service.clone();
        let mut stop_w = stop_rx.clone();
        other_tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(10));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => match wal_store.checkpoint_wal().await {
                        Ok(None) => break,
                        Ok(Some(false)) => tracing::debug!("a reader held the write-ahead log; emptying it at the next try"),
                        Ok(Some(true)) => {}
                        Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot checkpoint the SQLite write-ahead log; will retry"),
                    },
                    _ = stop_w.changed() => break,
                }
            }
        }));

        // [retention] audit_days: archive what is due at start and then once a day. Without
        // it nothing is ever removed from the log.
        if config.retention.audit_days.is_some() {
            let archiver = service.clone();
            let mut stop_a = stop_rx.clone();
            let actor = Actor::daemon(DaemonTask::Retention);
            other_tasks.push(tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(24 * 3600));
                loop {
                    tokio::select! {
                        _ = every.tick() => match archiver.archive_due_events(&actor).await {
                            Ok(r) if r.archived > 0 => tracing::info!(archived = r.archived, through_seq = ?r.through_seq, file = ?r.file, "archived old audit events"),
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "cannot archive old audit events; nothing was removed, will retry tomorrow or run `qbo-console audit archive`"),
                        },
                        _ = stop_a.changed() => break,
                    }
                }
            }));
        }

        let actor = Actor::daemon(DaemonTask::Scheduler);
        let scheduler = service.scheduler(config.scheduler.clone(), actor);
        let scheduler_task = tokio::spawn(scheduler.clone().run(stop_rx.clone()));

        // Health checks, the forecast and alerts (issue 16).
        let checker = service.health_checker(
            config.health.clone(),
            Actor::daemon(DaemonTask::HealthCheck),
            &scheduler,
        );
        other_tasks.push(tokio::spawn(checker.run(stop_rx.clone())));
        let alerter = Arc::new(crate::alerts::Alerter::new(
            service.clone(),
            &config.alerts,
            Actor::daemon(DaemonTask::Alerts),
        )?);
        other_tasks.push(tokio::spawn(alerter.run(stop_rx.clone())));

        let sock =
            socket::bind(&config.daemon.socket, config.daemon.socket_group.as_deref()).await?;
        other_tasks.push(tokio::spawn(socket::serve(
            sock,
            config.daemon.socket.clone(),
            service.clone(),
            roles::RoleMap::new(&config.roles),
            socket::Limits {
                request_timeout: config.daemon.request_timeout,
                idle_timeout: config.daemon.idle_timeout,
                max_connections: config.daemon.max_socket_connections,
            },
            stop_rx.clone(),
        )));

        let addr: SocketAddr = config
            .daemon
            .http_listen
            .parse()
            .context("[daemon] http_listen")?;
        let tcp = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} ([daemon] http_listen): is another daemon using it?")
        })?;
        let http_addr = tcp.local_addr()?;
        let app = http::router(http::HttpState {
            service: service.clone(),
            scheduler: scheduler.clone(),
        });
        other_tasks.push(tokio::spawn(http_listener::serve(
            tcp,
            app,
            http_listener::Limits::new(
                config.listener_limits(Listener::Metrics),
                http_listener::no_bodies,
            ),
            stop_rx.clone(),
        )));

        // Intuit's webhooks come from the internet: they are served on the public listener,
        // or on the token API's when no public listener is configured.
        let webhooks = crate::webhooks::router(crate::webhooks::WebhookState::from_config(
            service.clone(),
            &config.webhooks,
        )?);
        let (public_extra, api_extra) = if config.public.listen.is_some() {
            (webhooks, axum::Router::new())
        } else {
            (axum::Router::new(), webhooks)
        };
        let public_addr =
            start_public(config, &service, &stop_rx, &mut other_tasks, public_extra).await?;
        let mut api =
            crate::api::ApiServer::start(service.clone(), config, api_extra, stop_rx.clone())
                .await?;
        other_tasks.append(&mut api.tasks);
        let api_url = api.url();

        Ok(Daemon {
            service,
            scheduler,
            http_addr,
            public_addr,
            api_url,
            api: api.api.clone(),
            stop,
            scheduler_task,
            other_tasks,
            grace: config.daemon.shutdown_grace,
            _lock,
        })
    }

    /// Stops taking work, lets in-flight refreshes finish within the grace period, and
    /// abandons the rest. An abandoned refresh is safe: its transaction never committed,
    /// so the previous token stays stored and its lease expires.
    ///
    /// The listeners finish the requests in hand within the same grace (at least 2 s) and
    /// only then are counted refusals recorded, so none counted by a last request is lost.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + self.grace;
        match tokio::time::timeout_at(deadline, self.scheduler_task).await {
            Ok(_) => tracing::info!("scheduler stopped"),
            Err(_) => tracing::warn!(
                "in-flight refreshes did not finish within the shutdown grace; abandoned"
            ),
        }
        let deadline = deadline.max(tokio::time::Instant::now() + Duration::from_secs(2));
        for mut t in self.other_tasks {
            if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                tracing::warn!(
                    "requests in hand did not finish within the shutdown grace; abandoned"
                );
                // A listener's connections are tasks of its own set: aborting it ends them.
                t.abort();
            }
        }
        // After the listeners: no hand-out can be counted once its summary is written.
        if let Err(e) = self.api.flush().await {
            tracing::warn!(error = %format!("{e:#}"), "cannot record the summaries of token hand-outs at shutdown");
        }
        if let Err(e) = self.service.record_counted_refusals(true).await {
            tracing::warn!(error = %format!("{e:#}"), "cannot record the summary of counted refusals at shutdown");
        }
        self.service.close().await;
    }
}

/// The public listener (`[public] listen`), and the sweep that closes reconnect links
/// whose time is up. Returns where it listens.
async fn start_public(
    config: &Config,
    service: &Service,
    stop_rx: &watch::Receiver<bool>,
    tasks: &mut Vec<JoinHandle<()>>,
    extra: axum::Router,
) -> anyhow::Result<Option<SocketAddr>> {
    // Links expire whether or not this daemon serves browsers (another may).
    let sweeper = service.clone();
    let mut stop = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = every.tick() => {
                    if let Err(e) = sweeper.expire_links().await {
                        tracing::warn!(error = %format!("{e:#}"), "cannot close expired reconnect links; will retry");
                    }
                }
                _ = stop.changed() => break,
            }
        }
    }));
    let Some(listen) = &config.public.listen else {
        return Ok(None);
    };
    // Checked at config load; read again here to bind.
    let addr: SocketAddr = listen.parse().context("[public] listen")?;
    let tls = crate::public::tls_acceptor(config)?;
    let tcp = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} ([public] listen): is another process using it?")
    })?;
    let bound = tcp.local_addr()?;
    // The webhooks go behind the same guard as the browsers' routes.
    let app = crate::public::router(
        crate::public::PublicState {
            service: service.clone(),
            settings: Arc::new(crate::public::Settings::from_config(config)),
        },
        extra,
    );
    let limits = http_listener::Limits::new(
        config.listener_limits(Listener::Public),
        crate::public::bodies,
    );
    let limits = if config.public.trust_forwarded_for {
        limits.behind_a_proxy()
    } else {
        limits
    };
    tasks.push(tokio::spawn(http_listener::serve_with(
        tcp,
        app,
        limits,
        stop_rx.clone(),
        http_listener::Extras {
            tls,
            connect_info: true,
            finish: Some(crate::public::harden),
        },
    )));
    Ok(Some(bound))
}

/// Runs until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let daemon = Daemon::start(&config, Clock::System).await?;
    let public = match daemon.public_addr {
        Some(a) => format!(
            ", public listener {}://{a} (links at {})",
            if config.public.tls_cert_file.is_some() {
                "https"
            } else {
                "http"
            },
            config.public.base_url.as_deref().unwrap_or("")
        ),
        None => String::new(),
    };
    eprintln!(
        "qbo-console serving: operators' socket {}, http://{} (/healthz, /metrics){public}, token API {}, database {}",
        config.daemon.socket.display(),
        daemon.http_addr,
        daemon.api_url,
        qbo_core::text::redact_url(&config.database()?.url)
    );
    tracing::info!(socket = %config.daemon.socket.display(), http = %daemon.http_addr, "daemon started");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("qbo-console: shutting down");
    daemon.shutdown().await;
    Ok(())
}
