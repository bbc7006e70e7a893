//! Intuit's webhooks, `POST /webhooks/intuit`: a self-contained router, mounted on the
//! public listener when there is one, otherwise on the token API's listener. A notification
//! is checked (size, signature, format), then all its events are recorded in one
//! transaction, and only then answered 200: for each event its id (`webhook_events`), its
//! effect (the realm's last data change) and its audit record (`data change reported`)
//! commit together, so an acknowledged event survives any crash, and an id is never kept
//! without its effect. A redelivery of an id already recorded is acknowledged and changes
//! nothing. If the events cannot be recorded the answer is 503 and Intuit delivers them
//! again later. One transaction of a few statements per event stays well inside Intuit's 3
//! seconds. Every refusal is counted in `/metrics` (`qbo_webhook_refusals_total{reason}`).

pub mod payload;
pub mod signature;

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use qbo_service::Service;
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
    pub service: Service,
    /// `[webhooks] verifier_token`; without it every notification is refused.
    pub verifier_token: Option<Arc<Zeroizing<String>>>,
}

impl WebhookState {
    /// Reads the verifier token named by `[webhooks]` (a secret file is mode-checked).
    pub fn from_config(
        service: Service,
        cfg: &qbo_core::config::WebhooksConfig,
    ) -> Result<WebhookState, qbo_core::config::ConfigError> {
        let verifier_token = match &cfg.verifier_token {
            Some(src) => Some(Arc::new(src.read("[webhooks] verifier_token")?)),
            None => None,
        };
        Ok(WebhookState {
            service,
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
    s.service.count_webhook_refusal(reason);
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
    let now = s.service.now();
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
    match s.service.record_webhook_events(&events, now).await {
        Ok(new) => {
            for first in new {
                s.service
                    .count_webhook_event(if first { "processed" } else { "replayed" });
            }
            (StatusCode::OK, Json(json!({ "accepted": true }))).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %qbo_core::text::Safe(&format!("{e:#}")), "cannot record a webhook notification");
            for _ in &events {
                s.service.count_webhook_event("failed");
            }
            refuse(
                &s,
                StatusCode::SERVICE_UNAVAILABLE,
                "unrecorded",
                "the events could not be recorded; nothing was acknowledged, deliver them again later".into(),
            )
        }
    }
}
