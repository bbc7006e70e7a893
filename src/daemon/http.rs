//! The daemon's HTTP listener: `/healthz` and `/metrics` (loopback by default). The OAuth
//! callback, reconnect links, webhooks and the token API will live here too.

use super::scheduler::Scheduler;
use crate::domain::Environment;
use crate::lifecycle::{Engine, Status};
use crate::metrics::StatusLabels;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

#[derive(Clone)]
pub struct HttpState {
    pub engine: Arc<Engine>,
    pub scheduler: Arc<Scheduler>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: this listener serves /healthz and /metrics\n",
            )
        })
        .with_state(state)
}

/// Unhealthy when the database cannot be read, when a write was refused (a full disk
/// still answers reads, so a read alone would say ok) and no write has committed since, or
/// when rows stored past the audit chain's head block the audit log (`audit_log` says
/// which, and the verb that repairs it).
/// A failure older than `FAILURE_HOLD` is put to a probe write, so an idle daemon turns
/// healthy again once there is room.
async fn healthz(State(s): State<HttpState>) -> impl IntoResponse {
    let store = &s.engine.store;
    let health = store.write_health();
    let db = match store.count_by_status().await {
        Err(e) => Err(format!("{e:#}")),
        Ok(_) => {
            if health.due_for_probe() {
                // A failed probe records itself; its error is then the one reported.
                let _ = store.probe_write().await;
            }
            health.failing().map_or(Ok(()), Err)
        }
    };
    // Rows past the audit chain's head block every audited action and stop the scheduler:
    // not healthy, whatever the database says, and the answer names the repair.
    let audit_log = match store.audit_blocked().await {
        Ok(None) => Ok(()),
        Ok(Some(b)) => Err(b.to_string()),
        Err(e) => Err(format!("cannot read the audit chain's head: {e:#}")),
    };
    let paused: Vec<serde_json::Value> = s
        .scheduler
        .paused()
        .into_iter()
        .map(|(env, until, reason)| serde_json::json!({ "environment": env, "until": until, "reason": reason }))
        .collect();
    match (db, audit_log) {
        (Ok(_), Ok(())) => {
            let status = if paused.is_empty() { "ok" } else { "degraded" };
            (
                StatusCode::OK,
                axum::Json(
                    serde_json::json!({ "status": status, "database": "ok", "audit_log": "ok", "paused_environments": paused }),
                ),
            )
        }
        (db, audit_log) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "status": "unavailable",
                "database": db.err().unwrap_or_else(|| "ok".into()),
                "audit_log": audit_log.err().unwrap_or_else(|| "ok".into()),
            })),
        ),
    }
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    match refresh_gauges(&s.engine).await {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            s.engine.metrics.encode(),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("cannot read the database: {e:#}\n"),
        ),
    }
}

/// Sets the gauges that describe the database from fresh queries, so a scrape always
/// matches it.
async fn refresh_gauges(engine: &Engine) -> anyhow::Result<()> {
    let m = &engine.metrics;
    let counts = engine.store.count_by_status().await?;
    for env in Environment::ALL {
        for status in Status::ALL {
            let n = counts
                .iter()
                .find(|(e, s, _)| *e == env && *s == status)
                .map(|(_, _, n)| *n)
                .unwrap_or(0);
            m.connections
                .get_or_create(&StatusLabels {
                    environment: env.to_string(),
                    status: status.to_string(),
                })
                .set(n);
        }
    }
    let now = engine.clock.now();
    let lag = match engine.store.oldest_overdue(now).await? {
        Some(t) => (now - t).num_milliseconds().max(0) as f64 / 1000.0,
        None => 0.0,
    };
    m.scheduler_lag_seconds.set(lag);
    let lapse = engine
        .store
        .nearest_lapse()
        .await?
        .map(|t| (t - now).num_milliseconds() as f64 / 1000.0);
    m.nearest_lapse_seconds.set(lapse.unwrap_or(f64::NAN));
    Ok(())
}
