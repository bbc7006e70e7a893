//! `qbo-console serve`: the long-running process that alone holds the encryption key, the
//! Intuit client secrets and the database credentials. It runs the scheduler, the
//! operators' socket and the HTTP listener, relays changes between daemons sharing a
//! PostgreSQL database, and shuts down gracefully.

mod fd_limit;
mod http;
mod http_listener;
mod lock;
pub mod roles;
pub mod scheduler;
mod socket;

use crate::clock::Clock;
use crate::config::Config;
use crate::identity::{Actor, Interface, Role};
use crate::service::Service;
use crate::store::{Change, Store, NOTIFY_CHANNEL};
use anyhow::Context;
use scheduler::Scheduler;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Daemon {
    pub service: Service,
    pub scheduler: Arc<Scheduler>,
    pub http_addr: SocketAddr,
    stop: watch::Sender<bool>,
    scheduler_task: JoinHandle<()>,
    other_tasks: Vec<JoinHandle<()>>,
    grace: Duration,
    _lock: Option<lock::DaemonLock>,
}

impl Daemon {
    pub async fn start(config: &Config, clock: Clock) -> anyhow::Result<Daemon> {
        let _lock = match lock::sqlite_path(&config.database()?.url) {
            Some(db) => Some(lock::DaemonLock::acquire(&db)?),
            None => None,
        };
        fd_limit::check(config);
        let service = Service::open(config, clock).await?;
        let engine = service.engine().clone();
        let (stop, stop_rx) = watch::channel(false);
        let mut other_tasks = Vec::new();

        if let Store::Postgres(pg) = &engine.store {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pg.pool)
                .await
                .context("cannot LISTEN on PostgreSQL")?;
            listener
                .listen(NOTIFY_CHANNEL)
                .await
                .context("cannot LISTEN on PostgreSQL")?;
            engine.set_relayed(true);
            let relay = engine.clone();
            let mut stop_l = stop_rx.clone();
            other_tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        n = listener.recv() => match n {
                            Ok(n) => match serde_json::from_str::<Change>(n.payload()) {
                                Ok(c) => relay.relay(c),
                                Err(e) => tracing::warn!(error = %e, "unreadable change notification"),
                            },
                            Err(e) => {
                                tracing::warn!(error = %e, "PostgreSQL LISTEN connection lost; reconnecting");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        },
                        _ = stop_l.changed() => break,
                    }
                }
                relay.set_relayed(false);
            }));
        }

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

        // [retention] audit_days: archive what is due at start and then once a day. Without
        // it nothing is ever removed from the log.
        if config.retention.audit_days.is_some() {
            let archiver = service.clone();
            let mut stop_a = stop_rx.clone();
            let actor = Actor::current_process(Interface::Scheduler, Role::Admin);
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

        let actor = Actor::current_process(Interface::Scheduler, Role::Admin);
        let scheduler = Arc::new(Scheduler::new(
            engine.clone(),
            config.scheduler.clone(),
            actor,
        ));
        let scheduler_task = tokio::spawn(scheduler.clone().run(stop_rx.clone()));

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
            engine: engine.clone(),
            scheduler: scheduler.clone(),
        });
        other_tasks.push(tokio::spawn(http_listener::serve(
            tcp,
            app,
            http_listener::Limits {
                header_timeout: config.daemon.request_timeout,
                max_connections: config.daemon.max_http_connections,
            },
            stop_rx.clone(),
        )));

        Ok(Daemon {
            service,
            scheduler,
            http_addr,
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
        if let Err(e) = self.service.record_counted_refusals(true).await {
            tracing::warn!(error = %format!("{e:#}"), "cannot record the summary of counted refusals at shutdown");
        }
        self.service.engine().store.close().await;
    }
}

/// Runs until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let daemon = Daemon::start(&config, Clock::System).await?;
    eprintln!(
        "qbo-console serving: operators' socket {}, http://{} (/healthz, /metrics), database {}",
        config.daemon.socket.display(),
        daemon.http_addr,
        crate::config::redact_url(&config.database()?.url)
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
