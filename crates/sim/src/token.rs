//! The token endpoint (`/oauth2/v1/tokens/bearer`) and the revocation
//! endpoint (`/v2/oauth2/tokens/revoke`) on the wire.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::conn::ConnHandle;
use super::exchange::InvalidGrant;
use super::faults::{self, Surface};
use super::http::{self, oauth_error};
use super::options::FaultKind;
use super::state::{RevokeOutcome, TokenSet};
use super::tokens;
use super::Shared;

const FORM: &str = "application/x-www-form-urlencoded";

#[derive(Serialize)]
struct TokenBody<'a> {
    token_type: &'static str,
    expires_in: i64,
    refresh_token: &'a str,
    x_refresh_token_expires_in: i64,
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_refresh_token_hard_expires_in: Option<i64>,
}

fn invalid_request(shared: &Shared, error: &str, description: &str) -> Response {
    shared.lock().stats.invalid_requests += 1;
    oauth_error(StatusCode::BAD_REQUEST, error, Some(description))
}

/// The client id behind valid Basic credentials; `None` (counted) otherwise.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let creds = http::basic_credentials(headers);
    let mut st = shared.lock();
    match creds {
        Some((id, secret)) if st.authenticate(&id, &secret).is_some() => Some(id),
        _ => {
            st.stats.invalid_clients += 1;
            None
        }
    }
}

fn invalid_client() -> Response {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", None)
}

/// `POST /oauth2/v1/tokens/bearer`
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (fault, realm) = {
        let mut st = shared.lock();
        st.stats.token_requests += 1;
        let realm = st.realm_of_token_request(&body);
        (st.roll_fault(realm.as_deref(), Surface::Token), realm)
    };
    match fault {
        None => process_token(&shared, &headers, &body).await,
        Some(FaultKind::LostResponse) => {
            let _lost = process_token(&shared, &headers, &body).await;
            faults::lose(&conn)
        }
        Some(kind) => faults::answer(&shared, &conn, kind, Surface::Token, realm.as_deref()).await,
    }
}

async fn process_token(shared: &Arc<Shared>, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(client_id) = authenticate(shared, headers) else {
        return invalid_client();
    };
    if !http::has_content_type(headers, FORM) {
        return invalid_request(
            shared,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let form = match http::parse_form(body) {
        Ok(f) => f,
        Err(e) => return invalid_request(shared, "invalid_request", &e.0),
    };
    let with_hard = http::header(headers, "x-include-refresh-token-hard-expires-in")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let result = match param("grant_type") {
        Some("authorization_code") => {
            let (Some(code), Some(redirect_uri)) = (param("code"), param("redirect_uri")) else {
                return invalid_request(
                    shared,
                    "invalid_request",
                    "code and redirect_uri are required",
                );
            };
            let access = tokens::new_access_token();
            let latency = shared.lock().token_latency;
            if !latency.is_zero() {
                shared.sleep(latency).await;
            }
            let now = shared.clock.now();
            let mut st = shared.lock();
            st.exchange_code(&client_id, code, redirect_uri, now, access)
        }
        Some("refresh_token") => {
            let Some(token) = param("refresh_token") else {
                return invalid_request(shared, "invalid_request", "refresh_token is required");
            };
            refresh(shared, &client_id, token).await
        }
        Some(_) => {
            return invalid_request(
                shared,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            )
        }
        None => return invalid_request(shared, "invalid_request", "grant_type is required"),
    };
    match result {
        Ok(set) => token_response(&set, with_hard),
        Err(InvalidGrant(why)) => {
            tracing::debug!(reason = why, "invalid_grant");
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", Some(why))
        }
    }
}

/// Marks the presented refresh token in flight for the artificial latency, so
/// overlapping uses of one token are seen; the decision is taken afterwards,
/// as a real server commits at the end of its transaction.
async fn refresh(
    shared: &Arc<Shared>,
    client_id: &str,
    token: &str,
) -> Result<TokenSet, InvalidGrant> {
    let access = tokens::new_access_token();
    let guard = {
        let mut st = shared.lock();
        let registered = st.begin_refresh(token);
        let latency = st.token_latency;
        if latency.is_zero() {
            let r = st.refresh(client_id, token, shared.clock.now(), access);
            if registered {
                st.end_refresh(token);
            }
            return r;
        }
        (
            InFlight {
                shared: shared.clone(),
                token: token.to_string(),
                armed: registered,
            },
            latency,
        )
    };
    let (mut in_flight, latency) = guard;
    shared.sleep(latency).await;
    let mut st = shared.lock();
    let r = st.refresh(client_id, token, shared.clock.now(), access);
    if in_flight.armed {
        st.end_refresh(token);
        in_flight.armed = false;
    }
    r
}

/// Unregisters an in-flight refresh if the request is dropped mid-way
/// (client gone, server shutting down).
struct InFlight {
    shared: Arc<Shared>,
    token: String,
    armed: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.armed {
            self.shared.lock().end_refresh(&self.token);
        }
    }
}

fn token_response(set: &TokenSet, with_hard: bool) -> Response {
    http::no_store(http::json(
        StatusCode::OK,
        &TokenBody {
            token_type: "bearer",
            expires_in: set.expires_in,
            refresh_token: &set.refresh_token,
            x_refresh_token_expires_in: set.refresh_expires_in,
            access_token: &set.access_token,
            x_refresh_token_hard_expires_in: with_hard.then_some(set.hard_expires_in),
        },
    ))
}

/// `POST /v2/oauth2/tokens/revoke`
pub(crate) async fn revoke(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (fault, realm) = {
        let mut st = shared.lock();
        let realm = if st.realm_faults.is_empty() {
            None
        } else {
            revoke_token(&headers, &body)
                .and_then(|t| st.realm_of_token(&t, Some(&tokens::access_key(&t))))
        };
        (st.roll_fault(realm.as_deref(), Surface::Revoke), realm)
    };
    match fault {
        None => process_revoke(&shared, &headers, &body),
        Some(FaultKind::LostResponse) => {
            let _lost = process_revoke(&shared, &headers, &body);
            faults::lose(&conn)
        }
        Some(kind) => faults::answer(&shared, &conn, kind, Surface::Revoke, realm.as_deref()).await,
    }
}

/// Reads `{"token": …}` or `token=…`, whichever the body is.
fn revoke_token(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let from_json = || {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("token")?.as_str().map(str::to_string))
    };
    let from_form = || http::parse_form(body).ok()?.remove("token");
    let token = if http::has_content_type(headers, "application/json") {
        from_json()
    } else if http::has_content_type(headers, FORM) {
        from_form()
    } else {
        from_json().or_else(from_form)
    };
    token.filter(|t| !t.is_empty())
}

fn process_revoke(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(client_id) = authenticate(shared, headers) else {
        return invalid_client();
    };
    let Some(token) = revoke_token(headers, body) else {
        return invalid_request(shared, "invalid_request", "token is required");
    };
    let key = tokens::access_key(&token);
    let mut st = shared.lock();
    match st.revoke(&client_id, &token, &key) {
        RevokeOutcome::OtherClient => {
            st.stats.invalid_requests += 1;
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                Some("the token was not issued to this client"),
            )
        }
        // Like Intuit (and RFC 7009), an unknown or already revoked token is
        // answered 200 too.
        RevokeOutcome::Ended | RevokeOutcome::AlreadyEnded | RevokeOutcome::Unknown => {
            st.stats.revocations += 1;
            StatusCode::OK.into_response()
        }
    }
}
