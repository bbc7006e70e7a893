//! Intuit's webhooks, `POST /webhooks/intuit`: a self-contained router, mounted on the
//! token API's listener until the public listener exists (mounting it elsewhere is one
//! `merge`). A notification is checked (size, signature, format) and acknowledged at once,
//! well inside Intuit's 3 seconds; its events are then processed on a task, each event id
//! once, recording per realm the last data change seen. Every refusal is counted in
//! `/metrics` (`qbo_webhook_refusals_total{reason}`).

pub mod payload;
pub mod signature;

use crate::lifecycle::Engine;
use crate::metrics::{OutcomeLabel, ReasonLabel};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use zeroize::Zeroizing;

pub const PATH: &str = "/webhooks/intuit";

/// The largest body accepted: Intuit's notifications are a few kilobytes; 1 MiB or more
/// is refused before it is read further.
pub const MAX_BODY: usize = 1024 * 1024 - 1;

/// The routes, for the OpenAPI check (as `api::ROUTES`).
pub const ROUTES: &[(&str, &str, &[u16])] = &[("post", PATH, &[200, 400, 401, 413, 503])];

#[derive(Clone)]
pub struct WebhookState {
    pub engine: Arc<Engine>,
    /// `[webhooks] verifier_token`; without it every notification is refused.
    pub verifier_token: Option<Arc<Zeroizing<String>>>,
}

impl WebhookState {
    /// Reads the verifier token named by `[webhooks]` (a secret file is mode-checked).
    pub fn from_config(
        engine: Arc<Engine>,
        cfg: &crate::api::WebhooksConfig,
    ) -> Result<WebhookState, crate::config::ConfigError> {
        let verifier_token = match &cfg.verifier_token {
            Some(src) => Some(Arc::new(src.read("[webhooks] verifier_token")?)),
            None => None,
        };
        Ok(WebhookState {
            engine,
            verifier_token,
        })
    }
}

pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route(PATH, post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn refuse(s: &WebhookState, status: StatusCode, reason: &str, message: String) -> Response {
    s.engine
        .metrics
        .webhook_refusals
        .get_or_create(&ReasonLabel {
            reason: reason.to_string(),
        })
        .inc();
    tracing::info!(reason, "webhook refused");
    (status, Json(json!({ "error": reason, "message": message }))).into_response()
}

async fn receive(
    State(s): State<WebhookState>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                &s,
                StatusCode::PAYLOAD_TOO_LARGE,
                "oversized",
                format!("the body is larger than {MAX_BODY} bytes"),
            )
        }
        Err(e) => {
            return refuse(
                &s,
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("the body could not be read: {e}"),
            )
        }
    };
    let Some(token) = &s.verifier_token else {
        return refuse(
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "webhooks are not configured here; set [webhooks] verifier_token_file".into(),
        );
    };
    let Some(sig) = headers
        .get("intuit-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return refuse(
            &s,
            StatusCode::UNAUTHORIZED,
            "unsigned",
            "no intuit-signature header".into(),
        );
    };
    if !signature::verify(token.as_bytes(), &body, sig) {
        return refuse(
            &s,
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "intuit-signature does not match the body under the configured verifier token".into(),
        );
    }
    let now = s.engine.clock.now();
    let events = match payload::parse(&body, now) {
        Ok(e) => e,
        Err(why) => {
            return refuse(
                &s,
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("not an Intuit notification: {why}"),
            )
        }
    };
    // Acknowledged now; recorded after, so a slow database never makes Intuit wait.
    let engine = s.engine.clone();
    tokio::spawn(async move { process(&engine, events).await });
    (StatusCode::OK, Json(json!({ "accepted": true }))).into_response()
}

async fn process(engine: &Engine, events: Vec<payload::Event>) {
    for ev in events {
        let outcome = match handle(engine, &ev).await {
            Ok(true) => "processed",
            Ok(false) => "replayed",
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot record a webhook event");
                "failed"
            }
        };
        engine
            .metrics
            .webhook_events
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }
}

/// Records one event unless its id was seen before; true when it was new.
async fn handle(engine: &Engine, ev: &payload::Event) -> anyhow::Result<bool> {
    if !engine
        .store
        .first_webhook_event(&ev.id, engine.clock.now())
        .await?
    {
        return Ok(false);
    }
    engine
        .store
        .record_data_change(&ev.realm_id, None, ev.at, &ev.what)
        .await?;
    Ok(true)
}
