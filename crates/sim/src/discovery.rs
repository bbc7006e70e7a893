//! The OpenID discovery documents and the (empty) key set. They point at the
//! emulator's own base URL with Intuit's real paths.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::http;
use super::options::SimEnvironment;
use super::Shared;

pub(crate) const AUTHORIZE_PATH: &str = "/connect/oauth2";
pub(crate) const TOKEN_PATH: &str = "/oauth2/v1/tokens/bearer";
pub(crate) const REVOKE_PATH: &str = "/v2/oauth2/tokens/revoke";
pub(crate) const JWKS_PATH: &str = "/oauth2/v1/keys";
pub(crate) const USERINFO_PATH: &str = "/v1/openid_connect/userinfo";
pub(crate) const SANDBOX_USERINFO_PATH: &str = "/sandbox/v1/openid_connect/userinfo";
pub(crate) const PRODUCTION_DISCOVERY_PATH: &str = "/.well-known/openid_configuration";
pub(crate) const SANDBOX_DISCOVERY_PATH: &str = "/.well-known/openid_sandbox_configuration";

pub(crate) fn discovery_path(env: SimEnvironment) -> &'static str {
    match env {
        SimEnvironment::Sandbox => SANDBOX_DISCOVERY_PATH,
        SimEnvironment::Production => PRODUCTION_DISCOVERY_PATH,
    }
}

fn document(base: &str, env: SimEnvironment) -> serde_json::Value {
    let userinfo = match env {
        SimEnvironment::Sandbox => SANDBOX_USERINFO_PATH,
        SimEnvironment::Production => USERINFO_PATH,
    };
    json!({
        "issuer": format!("{base}/op/v1"),
        "authorization_endpoint": format!("{base}{AUTHORIZE_PATH}"),
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
        "userinfo_endpoint": format!("{base}{userinfo}"),
        "revocation_endpoint": format!("{base}{REVOKE_PATH}"),
        "jwks_uri": format!("{base}{JWKS_PATH}"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "claims_supported": [
            "aud", "exp", "iat", "iss", "realmid", "sub"
        ]
    })
}

pub(crate) async fn production(State(shared): State<Arc<Shared>>) -> Response {
    http::json(
        StatusCode::OK,
        &document(&shared.base_url, SimEnvironment::Production),
    )
}

pub(crate) async fn sandbox(State(shared): State<Arc<Shared>>) -> Response {
    http::json(
        StatusCode::OK,
        &document(&shared.base_url, SimEnvironment::Sandbox),
    )
}

/// The emulator never issues id tokens, so there is no key to publish.
pub(crate) async fn jwks() -> Response {
    http::json(StatusCode::OK, &json!({ "keys": [] }))
}
