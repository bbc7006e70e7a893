//! The `/_sim/` control API: the same controls as `SimHandle`, as JSON over
//! HTTP for tests and demos that run the emulator out of process.

use crate::SimError;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::http;
use super::options::{FaultConfig, FaultKind, PreviousToken, Rotation, Surface};
use super::{GrantSeed, Shared};

/// Most grants one control request may seed.
const MAX_SEED_COUNT: usize = 100_000;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/stats/reset", post(reset_stats))
        .route("/_sim/clock", get(clock))
        .route("/_sim/clock/advance", post(advance))
        .route("/_sim/faults", post(faults).get(get_faults))
        .route("/_sim/rotation", post(rotation))
        .route("/_sim/latency", post(latency))
        .route("/_sim/grants", post(grants))
        .route("/_sim/realms/{realm}/disconnect", post(disconnect))
        .route(
            "/_sim/realms/{realm}/faults",
            post(realm_faults)
                .get(get_realm_faults)
                .delete(clear_realm_faults),
        )
        .route("/_sim/issued_tokens", get(issued_tokens))
}

fn bad(message: impl std::fmt::Display) -> Response {
    http::json(
        StatusCode::BAD_REQUEST,
        &json!({ "error": message.to_string() }),
    )
}

fn ok() -> Response {
    http::json(StatusCode::OK, &json!({ "ok": true }))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, SimError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| SimError(format!("request body: {e}")))
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let s = shared.lock().stats.clone();
    http::json(StatusCode::OK, &s)
}

async fn reset_stats(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().stats = Default::default();
    ok()
}

fn clock_body(shared: &Shared) -> Response {
    http::json(
        StatusCode::OK,
        &json!({
            "now": shared.clock.now().to_rfc3339(),
            "offset_seconds": shared.clock.offset().num_seconds(),
        }),
    )
}

async fn clock(State(shared): State<Arc<Shared>>) -> Response {
    clock_body(&shared)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: i64,
}

async fn advance(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let a: Advance = match parse(&body) {
        Ok(a) => a,
        Err(e) => return bad(e),
    };
    if a.seconds < 0 {
        return bad("seconds must not be negative: the sim clock only moves forward");
    }
    shared.clock.advance(chrono::Duration::seconds(a.seconds));
    clock_body(&shared)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    rate: f64,
    #[serde(default)]
    kinds: Option<Vec<FaultKind>>,
    #[serde(default)]
    timeout_hold_ms: Option<u64>,
    /// The endpoints faulted (`token`, `revoke`, `company_info`); left out: all of them.
    #[serde(default)]
    endpoints: Option<Vec<Surface>>,
}

fn faults_body(f: &FaultConfig) -> Response {
    let kinds: Vec<&str> = f.kinds.iter().map(|k| k.name()).collect();
    let endpoints: Vec<&str> = if f.surfaces.is_empty() {
        Surface::ALL.iter().map(|s| s.name()).collect()
    } else {
        f.surfaces.iter().map(|s| s.name()).collect()
    };
    http::json(
        StatusCode::OK,
        &json!({
            "rate": f.rate,
            "kinds": kinds,
            "timeout_hold_ms": f.timeout_hold.as_millis() as u64,
            "endpoints": endpoints,
        }),
    )
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    let f = shared.lock().faults.clone();
    faults_body(&f)
}

impl Faults {
    /// The configuration asked for; an omitted hold keeps `hold`.
    fn config(self, hold: Duration) -> Result<FaultConfig, SimError> {
        let config = FaultConfig {
            rate: self.rate,
            // Leaving out the kinds means "all of them".
            kinds: self.kinds.unwrap_or_else(|| FaultKind::ALL.to_vec()),
            timeout_hold: self
                .timeout_hold_ms
                .map(Duration::from_millis)
                .unwrap_or(hold),
            surfaces: self.endpoints.unwrap_or_default(),
        };
        config.validate()?;
        Ok(config)
    }
}

async fn faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let f: Faults = match parse(&body) {
        Ok(f) => f,
        Err(e) => return bad(e),
    };
    let mut st = shared.lock();
    match f.config(st.faults.timeout_hold) {
        Ok(config) => st.faults = config,
        Err(e) => return bad(e),
    }
    faults_body(&st.faults)
}

fn unknown_realm(realm: &str) -> Response {
    http::json(
        StatusCode::NOT_FOUND,
        &json!({ "error": format!("realm {realm} is not known") }),
    )
}

/// One company's own faults, in place of the global ones.
async fn realm_faults(
    State(shared): State<Arc<Shared>>,
    Path(realm): Path<String>,
    body: Bytes,
) -> Response {
    let f: Faults = match parse(&body) {
        Ok(f) => f,
        Err(e) => return bad(e),
    };
    let mut st = shared.lock();
    if !st.realms.contains_key(&realm) {
        return unknown_realm(&realm);
    }
    let config = match f.config(st.fault_config(Some(&realm)).timeout_hold) {
        Ok(c) => c,
        Err(e) => return bad(e),
    };
    let body = faults_body(&config);
    st.realm_faults.insert(realm, config);
    body
}

async fn get_realm_faults(
    State(shared): State<Arc<Shared>>,
    Path(realm): Path<String>,
) -> Response {
    let st = shared.lock();
    if !st.realms.contains_key(&realm) {
        return unknown_realm(&realm);
    }
    faults_body(st.fault_config(Some(&realm)))
}

async fn clear_realm_faults(
    State(shared): State<Arc<Shared>>,
    Path(realm): Path<String>,
) -> Response {
    shared.lock().realm_faults.remove(&realm);
    ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotationBody {
    rotation: Option<Rotation>,
    previous_token: Option<PreviousToken>,
}

async fn rotation(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let r: RotationBody = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let mut st = shared.lock();
    if let Some(rot) = r.rotation {
        st.policy.rotation = rot;
    }
    if let Some(p) = r.previous_token {
        st.policy.previous_token = p;
    }
    http::json(
        StatusCode::OK,
        &json!({ "rotation": st.policy.rotation, "previous_token": st.policy.previous_token }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Latency {
    ms: u64,
}

async fn latency(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let l: Latency = match parse(&body) {
        Ok(l) => l,
        Err(e) => return bad(e),
    };
    shared.lock().token_latency = Duration::from_millis(l.ms);
    ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedBody {
    client_id: String,
    realm_id: Option<String>,
    company_name: Option<String>,
    count: Option<usize>,
    /// RFC 3339 times: a grant with a history (see `GrantSeed`).
    consented_at: Option<chrono::DateTime<chrono::Utc>>,
    issued_at: Option<chrono::DateTime<chrono::Utc>>,
}

async fn grants(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let s: SeedBody = match parse(&body) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let count = s.count.unwrap_or(1);
    if count == 0 || count > MAX_SEED_COUNT {
        return bad(format!("count must be between 1 and {MAX_SEED_COUNT}"));
    }
    let seed = GrantSeed {
        realm_id: s.realm_id,
        company_name: s.company_name,
        consented_at: s.consented_at,
        issued_at: s.issued_at,
    };
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        match shared.seed_grant(&s.client_id, &seed) {
            Ok(g) => out.push(g),
            Err(e) => return bad(e),
        }
    }
    http::json(StatusCode::OK, &out)
}

async fn disconnect(State(shared): State<Arc<Shared>>, Path(realm): Path<String>) -> Response {
    let mut st = shared.lock();
    if !st.realms.contains_key(&realm) {
        return unknown_realm(&realm);
    }
    let ended = st.disconnect(&realm);
    http::json(
        StatusCode::OK,
        &json!({ "realm_id": realm, "grants_ended": ended }),
    )
}

async fn issued_tokens(State(shared): State<Arc<Shared>>) -> Response {
    let tokens = shared.issued_tokens();
    http::json(StatusCode::OK, &tokens)
}
